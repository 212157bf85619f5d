//! Grafana's quotas: the `[quota]` keys, the scope and target each limits, and the service
//! whose creations it guards (`quota("<service>")` in Grafana's routes).

/// Where a limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    /// The whole server.
    Global,
    /// One org (its members, data sources, API keys, ...).
    Org,
    /// One user (the orgs it belongs to).
    User,
}

/// One limit of `[quota]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDef {
    /// The `[quota]` key.
    pub key: &'static str,
    pub scope: QuotaScope,
    /// The target's name on the wire (`target` in Grafana's `QuotaDTO` and routes).
    pub target: &'static str,
    /// The service whose creations the limit guards (`"<service> Quota reached"`).
    pub service: &'static str,
    /// Grafana's `defaults.ini` value.
    pub default: i64,
}

const fn def(
    key: &'static str,
    scope: QuotaScope,
    target: &'static str,
    service: &'static str,
    default: i64,
) -> QuotaDef {
    QuotaDef {
        key,
        scope,
        target,
        service,
        default,
    }
}

/// Every limit, in Grafana's order. `org_user` is two limits: members of one org (org
/// scope, key `org_user`) and orgs of one user (user scope, key `user_org`), both guarding
/// the org service, as Grafana's org service registers them.
pub const QUOTAS: &[QuotaDef] = &[
    def("org_user", QuotaScope::Org, "org_user", "org", 10),
    def(
        "org_data_source",
        QuotaScope::Org,
        "data_source",
        "data_source",
        10,
    ),
    def(
        "org_dashboard",
        QuotaScope::Org,
        "dashboard",
        "dashboard",
        100,
    ),
    def("org_api_key", QuotaScope::Org, "api_key", "api_key", 10),
    def(
        "org_alert_rule",
        QuotaScope::Org,
        "alert_rule",
        "alert_rule",
        100,
    ),
    def("user_org", QuotaScope::User, "org_user", "org", 10),
    def("global_user", QuotaScope::Global, "user", "user", -1),
    def("global_org", QuotaScope::Global, "org", "org", -1),
    def(
        "global_dashboard",
        QuotaScope::Global,
        "dashboard",
        "dashboard",
        -1,
    ),
    def(
        "global_data_source",
        QuotaScope::Global,
        "data_source",
        "data_source",
        -1,
    ),
    def(
        "global_api_key",
        QuotaScope::Global,
        "api_key",
        "api_key",
        -1,
    ),
    def(
        "global_session",
        QuotaScope::Global,
        "session",
        "session",
        -1,
    ),
    def(
        "global_alert_rule",
        QuotaScope::Global,
        "alert_rule",
        "alert_rule",
        -1,
    ),
    def("global_file", QuotaScope::Global, "file", "file", -1),
    def(
        "global_correlations",
        QuotaScope::Global,
        "correlations",
        "correlations",
        -1,
    ),
];

/// The limit of `target` in `scope`, if such a limit exists.
pub fn quota_def(scope: QuotaScope, target: &str) -> Option<&'static QuotaDef> {
    QUOTAS
        .iter()
        .find(|d| d.scope == scope && d.target == target)
}

/// Whether `used` reaches `limit`: a negative limit is unlimited, 0 is always reached.
pub fn quota_reached(limit: i64, used: u64) -> bool {
    limit >= 0 && used >= limit as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_unique_per_scope() {
        for (i, a) in QUOTAS.iter().enumerate() {
            for b in &QUOTAS[i + 1..] {
                assert!(a.key != b.key, "{}", a.key);
                assert!(a.scope != b.scope || a.target != b.target, "{}", a.key);
            }
        }
    }

    #[test]
    fn limits_follow_grafana() {
        assert!(!quota_reached(-1, u64::MAX));
        assert!(quota_reached(0, 0));
        assert!(!quota_reached(2, 1));
        assert!(quota_reached(2, 2));
        assert_eq!(
            quota_def(QuotaScope::User, "org_user").map(|d| d.key),
            Some("user_org")
        );
        assert_eq!(
            quota_def(QuotaScope::Org, "org_user").map(|d| d.key),
            Some("org_user")
        );
        assert!(quota_def(QuotaScope::User, "dashboard").is_none());
    }
}
