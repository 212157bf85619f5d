//! The audit log in this backend (not yet stored: every method reports it).

use async_trait::async_trait;

use super::SledStore;
use crate::store::audit::{AuditChain, AuditEntry, AuditEvent, AuditQuery, AuditStore};
use crate::store::{StoreError, StoreResult};

fn missing<T>() -> StoreResult<T> {
    Err(StoreError::Io(
        "the audit log is not stored by this backend yet".into(),
    ))
}

#[async_trait]
impl AuditStore for SledStore {
    async fn append_audit(&self, _entry: AuditEntry) -> StoreResult<AuditEvent> {
        missing()
    }

    async fn audit_events(&self, _query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        missing()
    }

    async fn audit_chain(&self) -> StoreResult<AuditChain> {
        missing()
    }

    async fn audit_page(&self, _after: u64, _limit: usize) -> StoreResult<Vec<AuditEvent>> {
        missing()
    }

    async fn prune_audit(
        &self,
        _before_at: Option<i64>,
        _max_events: u64,
        _entry: AuditEntry,
    ) -> StoreResult<u64> {
        missing()
    }
}
