//! RBAC as Grafana spells it: actions (`users:create`), scopes (`global.users:id:7`) and
//! wildcard scopes (`global.users:*` covers every user id; `settings:auth.saml:*` covers
//! every key of that section).
//!
//! Actions are a type, [`Action`]: the permission checks, the role catalog and the role API
//! share one list, so a check cannot name an action that no role can grant (meilisearch's
//! `Action` in `meilisearch-types/src/keys.rs`). Canonical names are the seed's
//! (`users.password:update`, `users.authtoken:list`, `users.logout`, ...); the newer names
//! Grafana renamed them to are accepted as aliases everywhere a permission is read.

use std::collections::HashSet;
use std::fmt;

/// Declares [`Action`], [`Action::ALL`] and [`Action::as_str`] from one list, so the three
/// cannot drift.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// Every action tollgate checks or a role may grant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($(#[$doc])* $variant,)+
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)+];

            /// The canonical (seed) spelling: what a denial names and the catalog lists.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)+
                }
            }
        }
    };
}

actions! {
    SettingsRead => "settings:read",
    SettingsWrite => "settings:write",
    ServerStatsRead => "server.stats:read",
    ServerUsageStatsReportRead => "server.usagestats.report:read",
    /// tollgate's own: take a backup of every record (`POST /api/admin/backup`).
    ServerBackupCreate => "server.backup:create",
    /// tollgate's own: read the audit log (`GET /api/admin/audit`).
    AuditRead => "audit:read",
    UsersRead => "users:read",
    UsersCreate => "users:create",
    UsersWrite => "users:write",
    UsersDelete => "users:delete",
    UsersEnable => "users:enable",
    UsersDisable => "users:disable",
    UsersPasswordUpdate => "users.password:update",
    /// Grafana's `ActionUsersPermissionsRead` (scope `users:id:<id>`), which guards reading
    /// another user's permissions.
    UsersPermissionsRead => "users.permissions:read",
    UsersPermissionsUpdate => "users.permissions:update",
    UsersAuthTokenList => "users.authtoken:list",
    UsersAuthTokenUpdate => "users.authtoken:update",
    UsersLogout => "users.logout",
    UsersQuotasList => "users.quotas:list",
    UsersQuotasUpdate => "users.quotas:update",
    ProvisioningReload => "provisioning:reload",
    LdapConfigReload => "ldap.config:reload",
    LdapUserRead => "ldap.user:read",
    LdapUserSync => "ldap.user:sync",
    LdapStatusRead => "ldap.status:read",
    LicensingRead => "licensing:read",
    LicensingWrite => "licensing:write",
    LicensingDelete => "licensing:delete",
    LicensingReportsRead => "licensing.reports:read",
    RolesRead => "roles:read",
    RolesWrite => "roles:write",
    RolesDelete => "roles:delete",
    UsersRolesRead => "users.roles:read",
    UsersRolesAdd => "users.roles:add",
    UsersRolesRemove => "users.roles:remove",
    /// `GET /api/access-control/status`, on `services:accesscontrol`.
    StatusAccessControl => "status:accesscontrol",
    ServiceAccountsRead => "serviceaccounts:read",
    ServiceAccountsCreate => "serviceaccounts:create",
    ServiceAccountsWrite => "serviceaccounts:write",
    ServiceAccountsDelete => "serviceaccounts:delete",
    ApiKeysRead => "apikeys:read",
    ApiKeysCreate => "apikeys:create",
    ApiKeysDelete => "apikeys:delete",
    DatasourcesRead => "datasources:read",
    DatasourcesCreate => "datasources:create",
    DatasourcesWrite => "datasources:write",
    DatasourcesDelete => "datasources:delete",
    /// Grafana's `ActionDatasourcesIDRead`: look up a datasource's id by its name
    /// (`GET /api/datasources/id/:name`), on `datasources:name:<name>`.
    DatasourcesIdRead => "datasources.id:read",
    EncryptionAdmin => "encryption:admin",
    AlertNotificationsRead => "alert.notifications:read",
    AlertRulesRead => "alert.rules:read",
    AlertRulesWrite => "alert.rules:write",
    DashboardsRead => "dashboards:read",
    FoldersRead => "folders:read",
    PluginsRead => "plugins:read",
    OrgsRead => "orgs:read",
    OrgsCreate => "orgs:create",
    OrgsWrite => "orgs:write",
    OrgsDelete => "orgs:delete",
    OrgsQuotasRead => "orgs.quotas:read",
    OrgsQuotasWrite => "orgs.quotas:write",
    OrgUsersRead => "org.users:read",
    OrgUsersAdd => "org.users:add",
    /// Grafana's `org.users:write` (older `org.users.role:update`): change a member's role.
    OrgUsersWrite => "org.users:write",
    OrgUsersRemove => "org.users:remove",
}

/// The scope Grafana grants role management on (`roles:write`, `users.roles:add`, ...):
/// "only roles whose permissions the holder has". Held on it, an action is delegation; a
/// role may carry it, like any permission, only if the caller holds it there too.
pub const DELEGATE_SCOPE: &str = "permissions:type:delegate";

/// `(alias, action)`: newer or older spellings of the seed's names.
pub const ACTION_ALIASES: &[(&str, Action)] = &[
    ("users.password:write", Action::UsersPasswordUpdate),
    ("users.permissions:write", Action::UsersPermissionsUpdate),
    // Grafana's RBAC action migrator renamed `users.permissions:list` to `:read`.
    ("users.permissions:list", Action::UsersPermissionsRead),
    ("users.authtoken:read", Action::UsersAuthTokenList),
    ("users.authtoken:write", Action::UsersAuthTokenUpdate),
    ("users:logout", Action::UsersLogout),
    ("users.quotas:read", Action::UsersQuotasList),
    ("users.quotas:write", Action::UsersQuotasUpdate),
    ("licensing:update", Action::LicensingWrite),
    ("server:stats:read", Action::ServerStatsRead),
    ("org.users.role:update", Action::OrgUsersWrite),
];

impl Action {
    /// The action a canonical name or an alias names; `None` for anything else (exact,
    /// case-sensitive, as Grafana compares actions).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == raw)
            .or_else(|| {
                ACTION_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == raw)
                    .map(|(_, action)| *action)
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical spelling of an action string (aliases resolved; unknown actions as given).
pub fn canonical_action(action: &str) -> &str {
    match Action::parse(action) {
        Some(a) => a.as_str(),
        None => action,
    }
}

/// True when a granted scope covers the required one. `*` covers everything; a scope ending
/// in `*` covers every scope with that prefix; otherwise scopes must be equal.
pub fn scope_covers(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) => required.starts_with(prefix),
        None => false,
    }
}

/// [`scope_covers`] for a required scope given in parts (`["settings:", section, ":",
/// key]`), without joining them: a filter over hundreds of settings builds no string each.
fn scope_covers_parts(granted: &str, required: &[&str]) -> bool {
    let len: usize = required.iter().map(|p| p.len()).sum();
    if granted == "*" || (granted.len() == len && starts_with_parts(granted, required)) {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) => starts_with_parts(prefix, required),
        None => false,
    }
}

/// Whether the concatenation of `parts` starts with `prefix`.
fn starts_with_parts(prefix: &str, parts: &[&str]) -> bool {
    let mut rest = prefix.as_bytes();
    for part in parts.iter().map(|p| p.as_bytes()) {
        if rest.len() <= part.len() {
            return part.starts_with(rest);
        }
        if !rest.starts_with(part) {
            return false;
        }
        rest = &rest[part.len()..];
    }
    rest.is_empty()
}

/// One permission: an action and the scope it applies to (empty for unscoped actions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub action: Action,
    pub scope: String,
}

impl Permission {
    pub fn new(action: Action, scope: &str) -> Self {
        Self {
            action,
            scope: scope.to_string(),
        }
    }

    /// A permission as stored or sent (`action` may be an alias); `None` for an unknown
    /// action.
    pub fn parse(action: &str, scope: &str) -> Option<Self> {
        Action::parse(action).map(|a| Self::new(a, scope))
    }
}

/// The evaluator: what a principal may do.
#[derive(Debug, Clone, Default)]
pub struct PermissionSet {
    everything: bool,
    by_action: super::FastMap<Action, Vec<String>>,
}

impl PermissionSet {
    /// Holds every permission (in-process system work only).
    pub fn all() -> Self {
        Self {
            everything: true,
            by_action: Default::default(),
        }
    }

    pub fn from_permissions<'a>(perms: impl IntoIterator<Item = &'a Permission>) -> Self {
        let mut set = Self::default();
        set.extend(perms);
        set
    }

    pub fn extend<'a>(&mut self, perms: impl IntoIterator<Item = &'a Permission>) {
        for p in perms {
            let scopes = self.by_action.entry(p.action).or_default();
            if !scopes.contains(&p.scope) {
                scopes.push(p.scope.clone());
            }
        }
    }

    /// May the holder do `action` on `scope`? An empty `scope` asks "on anything at all",
    /// as Grafana's unscoped checks do.
    pub fn has(&self, action: Action, scope: &str) -> bool {
        self.has_parts(action, &[scope])
    }

    /// The scopes granted for `action` (none for a holder of everything, who needs none).
    pub fn scopes(&self, action: Action) -> &[String] {
        self.by_action.get(&action).map_or(&[], Vec::as_slice)
    }

    /// [`PermissionSet::has`] for a scope given in parts, joined by nothing
    /// (`["settings:", section, ":", key]`): no string is built per check. An empty scope
    /// (every part empty) asks "on anything at all".
    pub fn has_parts(&self, action: Action, scope: &[&str]) -> bool {
        if self.everything {
            return true;
        }
        let Some(scopes) = self.by_action.get(&action) else {
            return false;
        };
        scope.iter().all(|p| p.is_empty())
            || scopes
                .iter()
                .any(|g| g.is_empty() || scope_covers_parts(g, scope))
    }

    /// Every permission held, sorted (for explanations).
    pub fn to_vec(&self) -> Vec<Permission> {
        let mut out: Vec<Permission> = self
            .by_action
            .iter()
            .flat_map(|(a, scopes)| scopes.iter().map(move |s| Permission::new(*a, s)))
            .collect();
        out.sort_by(|a, b| (a.action.as_str(), &a.scope).cmp(&(b.action.as_str(), &b.scope)));
        out
    }

    pub fn is_everything(&self) -> bool {
        self.everything
    }

    pub fn actions(&self) -> HashSet<Action> {
        self.by_action.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_covers_parts_agrees_with_scope_covers() {
        let parts: [&[&str]; 5] = [
            &["settings:", "auth.saml", ":", "enabled"],
            &["settings:", "auth", ":", "x"],
            &["settings:", "", ":", ""],
            &["users:id:", "7"],
            &[],
        ];
        let granted = [
            "",
            "*",
            "settings:*",
            "settings:auth.saml:*",
            "settings:auth.saml:enabled",
            "settings:auth.saml:enabled*",
            "settings:auth.saml:enable",
            "settings:auth.saml:enabledx",
            "settings:auth*",
            "settings:auth:x",
            "settings:auth:",
            "settings::",
            "settings:",
            "settings",
            "setting*",
            "users:*",
            "users:id:7",
            "users:id:70",
            "users:id:*",
            "teams:*",
            "settings:auth.saml",
            "settings:auth.saml:",
        ];
        for required in parts {
            let joined = required.concat();
            for g in granted {
                assert_eq!(
                    scope_covers_parts(g, required),
                    scope_covers(g, &joined),
                    "{g:?} on {joined:?}"
                );
                let set =
                    PermissionSet::from_permissions(&[Permission::new(Action::SettingsRead, g)]);
                for action in [Action::SettingsRead, Action::SettingsWrite] {
                    assert_eq!(set.has_parts(action, required), set.has(action, &joined));
                }
            }
        }
        let all = PermissionSet::all();
        assert!(all.has_parts(Action::SettingsRead, &["settings:", "a", ":", "b"]));
        assert!(all.scopes(Action::SettingsRead).is_empty());
    }

    #[test]
    fn wildcards_cover_prefixes() {
        assert!(scope_covers("global.users:*", "global.users:id:7"));
        assert!(scope_covers("settings:*", "settings:auth.saml:enabled"));
        assert!(scope_covers(
            "settings:auth.saml:*",
            "settings:auth.saml:enabled"
        ));
        assert!(!scope_covers(
            "settings:auth.saml:*",
            "settings:auth.ldap:enabled"
        ));
        assert!(!scope_covers(
            "settings:auth.saml:enabled",
            "settings:auth.saml:single_logout"
        ));
        assert!(!scope_covers("global.users:id:7", "global.users:id:70"));
    }

    #[test]
    fn aliases_are_the_same_action() {
        let alias = Permission::parse("users.password:write", "global.users:*");
        assert_eq!(
            alias,
            Some(Permission::new(
                Action::UsersPasswordUpdate,
                "global.users:*"
            ))
        );
        let set = PermissionSet::from_permissions(alias.as_ref());
        assert!(set.has(Action::UsersPasswordUpdate, "global.users:id:3"));
        assert!(!set.has(Action::UsersDelete, "global.users:id:3"));
    }

    #[test]
    fn every_action_round_trips_and_aliases_name_other_spellings() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a), "{a}");
        }
        for (alias, action) in ACTION_ALIASES {
            assert_eq!(Action::parse(alias), Some(*action), "{alias}");
            assert!(
                Action::ALL.iter().all(|a| a.as_str() != *alias),
                "{alias} is an alias and a canonical name"
            );
        }
        assert_eq!(
            Action::parse("users.permissions:list"),
            Some(Action::UsersPermissionsRead)
        );
        assert_eq!(Action::parse("users:fly"), None);
        assert_eq!(Action::parse("Users:read"), None);
        assert_eq!(Action::parse(" users:read"), None);
        assert_eq!(canonical_action("users:logout"), "users.logout");
        assert_eq!(canonical_action("dreams:read"), "dreams:read");
    }

    #[test]
    fn unscoped_requests_need_any_grant() {
        let set = PermissionSet::from_permissions(&[Permission::new(
            Action::SettingsRead,
            "settings:auth.saml:enabled",
        )]);
        assert!(set.has(Action::SettingsRead, ""));
        assert!(!set.has(Action::SettingsRead, "settings:*"));
        assert!(set.has(Action::SettingsRead, "settings:auth.saml:enabled"));
    }
}
