//! Grafana's quotas: `[quota]` limits, per-org and per-user limits stored through the API,
//! what is used of each, and the check Grafana's `quota("<service>")` middleware makes
//! before a creation. Limits are read, not reserved: two creations racing at the limit may
//! both pass, as in Grafana.

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::quota::{quota_def, quota_reached, QuotaDef, QuotaScope, QUOTAS};
use crate::domain::time::Clock;
use crate::domain::{Action, AuthKind, OrgId, Principal};
use crate::error::AppError;
use crate::service::users::resolve_checked;
use crate::store::{Counts, QuotaOwner, QuotaRecord, Store, StoreError, StoreResult};

pub const DISABLED: &str = "Quotas not enabled";
pub const INVALID_TARGET: &str = "Invalid quota target";
const LOOKUP_FAILED: &str = "Failed to get quota";

/// One target of an org or a user: its limit and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUsage {
    pub owner: QuotaOwner,
    pub target: &'static str,
    pub limit: i64,
    pub used: u64,
}

pub struct QuotaService {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

fn scope_of(owner: QuotaOwner) -> QuotaScope {
    match owner {
        QuotaOwner::Org(_) => QuotaScope::Org,
        QuotaOwner::User(_) => QuotaScope::User,
    }
}

impl QuotaService {
    pub fn new(settings: Arc<Settings>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            settings,
            store,
            clock,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.quota.enabled
    }

    fn require_enabled(&self) -> Result<(), AppError> {
        if self.enabled() {
            Ok(())
        } else {
            Err(AppError::Errutil {
                status: 403,
                message_id: "quota.disabled",
                message: DISABLED.into(),
            })
        }
    }

    /// Grafana's `quota("<service>")` middleware: every limit guarding `service` is tested
    /// against the caller (the server, its current org, itself); a reached one refuses the
    /// creation with 403 "<service> Quota reached". Nothing is checked while disabled.
    pub async fn check(&self, p: &Principal, service: &'static str) -> Result<(), AppError> {
        // Start-up work, the CLI and provisioning are not limited (Grafana's quotas are
        // route middleware).
        if !self.enabled() || p.kind == AuthKind::System {
            return Ok(());
        }
        let mut counts = None;
        for def in QUOTAS.iter().filter(|d| d.service == service) {
            let owner = match def.scope {
                QuotaScope::Global => None,
                QuotaScope::Org => Some(QuotaOwner::Org(p.org_id)),
                QuotaScope::User => match p.user_id {
                    Some(u) => Some(QuotaOwner::User(u)),
                    None => continue,
                },
            };
            let limit = match owner {
                None => self.settings.quota.limit(def.key),
                Some(o) => self
                    .stored_limit(o, def)
                    .await
                    .map_err(AppError::store(LOOKUP_FAILED))?,
            };
            if limit < 0 {
                continue;
            }
            let used = self
                .used(def, owner, &mut counts)
                .await
                .map_err(AppError::store(LOOKUP_FAILED))?;
            if quota_reached(limit, used) {
                return Err(AppError::Forbidden(format!("{service} Quota reached")));
            }
        }
        Ok(())
    }

    async fn stored_limit(&self, owner: QuotaOwner, def: &QuotaDef) -> StoreResult<i64> {
        Ok(self.limit_of(&self.store.quotas(owner).await?, def))
    }

    /// The limit of `def`: the owner's stored one, else `[quota]`'s.
    fn limit_of(&self, stored: &[QuotaRecord], def: &QuotaDef) -> i64 {
        stored
            .iter()
            .find(|q| q.target == def.target)
            .map_or_else(|| self.settings.quota.limit(def.key), |q| q.limit)
    }

    /// How much of `def` is used by `owner` (`None`: the whole server).
    async fn used(
        &self,
        def: &QuotaDef,
        owner: Option<QuotaOwner>,
        counts: &mut Option<Counts>,
    ) -> StoreResult<u64> {
        let s = &self.store;
        let n = |v: usize| v as u64;
        Ok(match (owner, def.target) {
            (Some(QuotaOwner::Org(o)), "org_user") => s.org_member_count(o).await?,
            (Some(QuotaOwner::Org(o)), "data_source") => n(s.datasources(o).await?.len()),
            (Some(QuotaOwner::Org(o)), "dashboard") => n(s.dashboards(o).await?.len()),
            (Some(QuotaOwner::Org(o)), "api_key") => n(s.api_keys(o, None).await?.len()),
            (Some(QuotaOwner::Org(o)), "alert_rule") => n(s.alerts(o).await?.len()),
            (Some(QuotaOwner::User(u)), "org_user") => {
                s.user(u).await?.map_or(0, |u| n(u.memberships.len()))
            }
            (None, "session") => s.active_session_count().await?,
            (None, target) => {
                let c = match counts {
                    Some(c) => *c,
                    None => *counts.insert(s.counts().await?),
                };
                match target {
                    "user" => c.users,
                    "org" => c.orgs,
                    "dashboard" => c.dashboards,
                    "data_source" => c.datasources,
                    "api_key" => c.api_keys,
                    "alert_rule" => c.alerts,
                    _ => 0,
                }
            }
            _ => 0,
        })
    }

    /// Every target of an org or a user with its limit (stored, else `[quota]`) and use.
    /// The caller has checked permissions and that the owner exists.
    pub async fn list(&self, owner: QuotaOwner) -> Result<Vec<QuotaUsage>, AppError> {
        self.require_enabled()?;
        let stored = self
            .store
            .quotas(owner)
            .await
            .map_err(AppError::store(LOOKUP_FAILED))?;
        let mut counts = None;
        let mut out = Vec::new();
        for def in QUOTAS.iter().filter(|d| d.scope == scope_of(owner)) {
            let limit = self.limit_of(&stored, def);
            let used = self
                .used(def, Some(owner), &mut counts)
                .await
                .map_err(AppError::store(LOOKUP_FAILED))?;
            out.push(QuotaUsage {
                owner,
                target: def.target,
                limit,
                used,
            });
        }
        Ok(out)
    }

    /// Stores the limit of one target of an org or a user. `NotFound` (the caller's
    /// message) when the owner does not exist.
    pub async fn set(
        &self,
        owner: QuotaOwner,
        target: &str,
        limit: i64,
        missing: &str,
        failed: &str,
    ) -> Result<(), AppError> {
        self.require_enabled()?;
        let def = quota_def(scope_of(owner), target)
            .ok_or_else(|| AppError::not_found(INVALID_TARGET))?;
        let (org_id, user_id) = match owner {
            QuotaOwner::Org(o) => (o.0, 0),
            QuotaOwner::User(u) => (0, u.0),
        };
        let record = QuotaRecord {
            org_id,
            user_id,
            target: def.target.to_string(),
            limit,
            updated: self.clock.now(),
        };
        match self.store.set_quota(&record).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(AppError::not_found(missing)),
            Err(e) => Err(AppError::store(failed)(e)),
        }
    }

    /// `GET /api/admin/users/:id/quotas` (`:id` a numeric id or a uid).
    pub async fn user_quotas(
        &self,
        p: &Principal,
        id_or_uid: &str,
    ) -> Result<Vec<QuotaUsage>, AppError> {
        let user =
            resolve_checked(self.store.as_ref(), p, id_or_uid, Action::UsersQuotasList).await?;
        self.list(QuotaOwner::User(user.user_id())).await
    }

    /// `PUT /api/admin/users/:id/quotas/:quota_target`.
    pub async fn set_user_quota(
        &self,
        p: &Principal,
        id_or_uid: &str,
        target: &str,
        limit: i64,
    ) -> Result<(), AppError> {
        let user =
            resolve_checked(self.store.as_ref(), p, id_or_uid, Action::UsersQuotasUpdate).await?;
        self.set(
            QuotaOwner::User(user.user_id()),
            target,
            limit,
            "User not found",
            "Failed to update org quotas",
        )
        .await
    }

    /// `GET /api/user/quotas`: the caller's own limits (Grafana before its handler started
    /// reading an `:id` the route does not have).
    pub async fn own_quotas(&self, p: &Principal) -> Result<Vec<QuotaUsage>, AppError> {
        let Some(user) = p.user_id else {
            return Err(AppError::not_found("User not found"));
        };
        self.list(QuotaOwner::User(user)).await
    }

    /// `GET /api/orgs/:orgId/quotas` after the org service's permission check.
    pub async fn org_quotas(&self, org: OrgId) -> Result<Vec<QuotaUsage>, AppError> {
        self.require_enabled()?;
        match self.store.org(org).await {
            Ok(Some(_)) => self.list(QuotaOwner::Org(org)).await,
            Ok(None) => Err(AppError::not_found(super::orgs::ORG_NOT_FOUND)),
            Err(e) => Err(AppError::store(LOOKUP_FAILED)(e)),
        }
    }
}
