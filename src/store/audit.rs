//! The audit event that rides along with a request's change.
//!
//! The API layer opens a [`scope`] around each request with what it knows before the
//! handler runs (actor, client, route, RBAC action, target, field names); auth and the
//! sign-in service fill in the actor as they learn it. A backend's mutating method asks
//! [`pending`] for the entry and, when there is one, appends it to the audit chain **inside
//! the transaction of the change**, then calls [`mark_written`] once the transaction
//! committed: the change and its event commit together or not at all. A request records
//! one event, with its first change; later writes of the same request are parts of it.
//!
//! Outside a scope (start-up, CLI tools, best-effort writes such as last-seen times) or for
//! a request that is not a change (GET), [`pending`] is `None` and nothing is recorded.
//! Sign-in failures and denials change nothing, so the API layer appends them on their own
//! ([`AuditStore::append_audit`]).

use async_trait::async_trait;

pub use crate::domain::audit::{
    current, mark_written, pending, scope, update, written, AuditActor, AuditChain, AuditEntry,
    AuditEvent,
};

use super::StoreResult;

/// What to list: every filter that is set must match; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor_user_id: Option<u64>,
    /// Exact login (or its `hmac-sha256:` form).
    pub actor_login: Option<String>,
    /// Exact action, or a prefix when it ends with `*` (`users:*`).
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// `Some(true)`: status below 400; `Some(false)`: 400 and above.
    pub success: Option<bool>,
    pub status: Option<u16>,
    /// Milliseconds since the epoch, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only events with `seq` below this (the cursor of the previous page).
    pub before_seq: Option<u64>,
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `e` passes every filter but the cursor and the limit (backends that filter
    /// in Rust use it; SQL backends say the same in `WHERE`).
    pub fn matches(&self, e: &AuditEvent) -> bool {
        let x = &e.entry;
        self.actor_user_id
            .is_none_or(|u| x.actor.user_id == Some(u))
            && self
                .actor_login
                .as_deref()
                .is_none_or(|l| x.actor.login == l)
            && self
                .action
                .as_deref()
                .is_none_or(|a| match a.strip_suffix('*') {
                    Some(prefix) => x.action.starts_with(prefix),
                    None => x.action == a,
                })
            && self
                .target_kind
                .as_deref()
                .is_none_or(|k| x.target_kind == k)
            && self.target_id.as_deref().is_none_or(|t| x.target_id == t)
            && self.success.is_none_or(|ok| (x.status < 400) == ok)
            && self.status.is_none_or(|s| x.status == s)
            && self.from.is_none_or(|f| x.at >= f)
            && self.to.is_none_or(|t| x.at <= t)
            && self.before_seq.is_none_or(|b| e.seq < b)
    }
}

/// The audit log's storage. Appends made with a change happen inside that change's
/// transaction (see the module documentation); these methods are the rest.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event that goes with no change (a denial, a failed sign-in, a reload that
    /// wrote nothing): chained after the head, durable on return.
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<AuditEvent>;
    /// Events matching the query, newest first, at most `limit`.
    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
    /// The chain's anchor and head.
    async fn audit_chain(&self) -> StoreResult<AuditChain>;
    /// Stored events with `seq > after`, in storage order (sled: key order; SQL: by seq),
    /// at most `limit`: what verification walks.
    async fn audit_page(&self, after: u64, limit: usize) -> StoreResult<Vec<AuditEvent>>;
    /// Removes the events older than `before_at` (ms) and those beyond the newest
    /// `max_events` (0: no cap), moves the anchor to the oldest kept event, and appends
    /// `entry` (the pruning's own event; the backend sets its `target_id` to the count
    /// removed) in the same transaction. Returns how many were removed; removes and appends nothing when none
    /// qualify.
    async fn prune_audit(
        &self,
        before_at: Option<i64>,
        max_events: u64,
        entry: AuditEntry,
    ) -> StoreResult<u64>;
}
