//! Dashboards, folders and search: the reads of the dashboard API, and the one write path
//! (a provisioning round's batch). Every read is scoped to the caller's org.

use std::sync::Arc;

use crate::domain::Action;
use crate::domain::{OrgId, Principal};
use crate::error::AppError;
use crate::store::{DashboardBatch, DashboardRecord, DashboardStore, FolderRecord};

pub struct DashboardService {
    store: Arc<dyn DashboardStore>,
}

/// `GET /api/search` filters.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub query: String,
    pub tags: Vec<String>,
    /// "dash-db", "dash-folder" or "" for both.
    pub kind: String,
    pub folder_ids: Vec<u64>,
    /// Only these dashboards (and folders), by id or by uid (Grafana's `dashboardIds`,
    /// `dashboardUIDs`); empty: no such filter.
    pub dashboard_ids: Vec<u64>,
    pub dashboard_uids: Vec<String>,
    pub limit: usize,
}

impl SearchQuery {
    /// Whether the id and uid filters let an object through.
    fn names(&self, id: u64, uid: &str) -> bool {
        (self.dashboard_ids.is_empty() || self.dashboard_ids.contains(&id))
            && (self.dashboard_uids.is_empty() || self.dashboard_uids.iter().any(|u| u == uid))
    }
}

pub enum SearchHit {
    Folder(FolderRecord),
    Dashboard(Box<DashboardRecord>, Option<FolderRecord>),
}

impl SearchHit {
    pub fn title(&self) -> &str {
        match self {
            Self::Folder(f) => &f.title,
            Self::Dashboard(d, _) => &d.title,
        }
    }
}

impl DashboardService {
    pub fn new(store: Arc<dyn DashboardStore>) -> Self {
        Self { store }
    }

    /// `GET /api/dashboards/uid/:uid`, with its folder.
    pub async fn dashboard(
        &self,
        p: &Principal,
        uid: &str,
    ) -> Result<(DashboardRecord, Option<FolderRecord>), AppError> {
        p.require(Action::DashboardsRead, &format!("dashboards:uid:{uid}"))?;
        let d = self
            .store
            .dashboard(p.org_id, uid)
            .await?
            .ok_or_else(|| AppError::not_found("Dashboard not found"))?;
        let folder = if d.folder_uid.is_empty() {
            None
        } else {
            self.store
                .folders(p.org_id)
                .await?
                .into_iter()
                .find(|f| f.uid == d.folder_uid)
        };
        Ok((d, folder))
    }

    /// `GET /api/folders`.
    pub async fn folders(&self, p: &Principal) -> Result<Vec<FolderRecord>, AppError> {
        p.require(Action::FoldersRead, "")?;
        let mut v = self.store.folders(p.org_id).await?;
        v.sort_by_key(|f| f.title.to_lowercase());
        Ok(v)
    }

    /// `GET /api/search`: folders and dashboards matching every given filter.
    pub async fn search(&self, p: &Principal, q: &SearchQuery) -> Result<Vec<SearchHit>, AppError> {
        p.require(Action::DashboardsRead, "")?;
        let folders = self.store.folders(p.org_id).await?;
        let needle = q.query.to_lowercase();
        let mut hits = Vec::new();
        let want = |t: &str| q.kind.is_empty() || q.kind == t;
        if want("dash-folder") && q.tags.is_empty() && q.folder_ids.is_empty() {
            for f in &folders {
                if f.title.to_lowercase().contains(&needle) && q.names(f.id, &f.uid) {
                    hits.push(SearchHit::Folder(f.clone()));
                }
            }
        }
        if want("dash-db") {
            for d in self.store.dashboards(p.org_id).await? {
                if !d.title.to_lowercase().contains(&needle) || !q.names(d.id, &d.uid) {
                    continue;
                }
                if !q.tags.iter().all(|t| d.tags.contains(t)) {
                    continue;
                }
                let folder = folders.iter().find(|f| f.uid == d.folder_uid).cloned();
                let folder_id = folder.as_ref().map_or(0, |f| f.id);
                if !q.folder_ids.is_empty() && !q.folder_ids.contains(&folder_id) {
                    continue;
                }
                hits.push(SearchHit::Dashboard(Box::new(d), folder));
            }
        }
        hits.sort_by_key(|h| h.title().to_lowercase());
        hits.truncate(q.limit.clamp(1, 5000));
        Ok(hits)
    }

    /// Provisioning: what a provider stored before (every org).
    pub async fn provider_dashboards(
        &self,
        provider: &str,
    ) -> Result<Vec<DashboardRecord>, AppError> {
        Ok(self.store.provider_dashboards(provider).await?)
    }

    /// Provisioning: an org's folders.
    pub async fn org_folders(&self, org: OrgId) -> Result<Vec<FolderRecord>, AppError> {
        Ok(self.store.folders(org).await?)
    }

    /// Provisioning: one round's changes, in one store unit.
    pub async fn apply(&self, batch: &DashboardBatch) -> Result<(), AppError> {
        Ok(self.store.apply_dashboards(batch).await?)
    }
}
