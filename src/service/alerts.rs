//! Legacy alert rules (derived from provisioned dashboards): listing and pausing.

use std::sync::Arc;

use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{OrgRole, Principal};
use crate::error::AppError;
use crate::store::{AlertRecord, AlertStore};

pub struct AlertService {
    store: Arc<dyn AlertStore>,
    clock: Arc<dyn Clock>,
}

/// `GET /api/alerts` filters.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub query: String,
    pub states: Vec<String>,
    pub dashboard_id: Option<u64>,
    pub panel_id: Option<u64>,
    pub limit: usize,
}

impl AlertService {
    pub fn new(store: Arc<dyn AlertStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// `GET /api/alerts` (the caller's org).
    pub async fn alerts(
        &self,
        p: &Principal,
        q: &AlertQuery,
    ) -> Result<Vec<AlertRecord>, AppError> {
        p.require(Action::AlertRulesRead, "")?;
        let needle = q.query.to_lowercase();
        let mut v: Vec<AlertRecord> = self
            .store
            .alerts(p.org_id)
            .await?
            .into_iter()
            .filter(|a| q.states.is_empty() || q.states.iter().any(|s| s == "all" || *s == a.state))
            .filter(|a| q.dashboard_id.is_none_or(|id| id == a.dashboard_id))
            .filter(|a| q.panel_id.is_none_or(|id| id == a.panel_id))
            .filter(|a| a.name.to_lowercase().contains(&needle))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if q.limit > 0 {
            v.truncate(q.limit);
        }
        Ok(v)
    }

    /// `POST /api/alerts/:id/pause`: an org Editor or above.
    pub async fn pause_alert(&self, p: &Principal, id: u64, paused: bool) -> Result<(), AppError> {
        if p.org_role < OrgRole::Editor && !p.is_grafana_admin {
            return Err(AppError::PermissionDenied);
        }
        p.require(Action::AlertRulesWrite, "")?;
        let n = self
            .store
            .set_alerts_paused(Some(p.org_id), Some(&[id]), paused, self.clock.now())
            .await?;
        if n == 0 {
            return Err(AppError::not_found("Could not find alert"));
        }
        Ok(())
    }

    /// `POST /api/admin/pause-all-alerts`: Grafana Admins, every org; the alerts affected.
    pub async fn pause_all(&self, p: &Principal, paused: bool) -> Result<u64, AppError> {
        p.require_grafana_admin()?;
        Ok(self
            .store
            .set_alerts_paused(None, None, paused, self.clock.now())
            .await?)
    }
}
