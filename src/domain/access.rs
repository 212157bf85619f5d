//! RBAC as Grafana spells it: actions (`users:create`), scopes (`global.users:id:7`) and
//! wildcard scopes (`global.users:*` covers every user id; `settings:auth.saml:*` covers
//! every key of that section).
//!
//! Canonical action names are the seed's (`users.password:update`, `users.authtoken:list`,
//! `users.logout`, ...); the newer names Grafana renamed them to are accepted as aliases
//! everywhere a permission is read.

use std::collections::{HashMap, HashSet};

/// `(alias, canonical)`: newer or code spellings mapped to the seed's names.
pub const ACTION_ALIASES: &[(&str, &str)] = &[
    ("users.password:write", "users.password:update"),
    ("users.permissions:write", "users.permissions:update"),
    ("users.authtoken:read", "users.authtoken:list"),
    ("users.authtoken:write", "users.authtoken:update"),
    ("users:logout", "users.logout"),
    ("users.quotas:read", "users.quotas:list"),
    ("users.quotas:write", "users.quotas:update"),
    ("licensing:update", "licensing:write"),
    ("server:stats:read", "server.stats:read"),
];

/// Every action tollgate checks somewhere (canonical names).
pub const KNOWN_ACTIONS: &[&str] = &[
    "settings:read",
    "settings:write",
    "server.stats:read",
    "server.usagestats.report:read",
    "users:read",
    "users:create",
    "users:write",
    "users:delete",
    "users:enable",
    "users:disable",
    "users.password:update",
    "users.permissions:update",
    "users.authtoken:list",
    "users.authtoken:update",
    "users.logout",
    "users.quotas:list",
    "users.quotas:update",
    "provisioning:reload",
    "ldap.config:reload",
    "ldap.user:read",
    "ldap.user:sync",
    "ldap.status:read",
    "licensing:read",
    "licensing:write",
    "licensing:delete",
    "licensing.reports:read",
    "roles:read",
    "roles:write",
    "roles:delete",
    "users.roles:read",
    "users.roles:add",
    "users.roles:remove",
    "serviceaccounts:read",
    "serviceaccounts:create",
    "serviceaccounts:write",
    "serviceaccounts:delete",
    "apikeys:read",
    "apikeys:create",
    "apikeys:delete",
    "datasources:read",
    "datasources:create",
    "datasources:write",
    "datasources:delete",
    "encryption:admin",
    "alert.notifications:read",
    "alert.rules:read",
    "alert.rules:write",
    "dashboards:read",
    "folders:read",
    "plugins:read",
];

/// The canonical spelling of an action (aliases resolved).
pub fn canonical_action(action: &str) -> &str {
    ACTION_ALIASES
        .iter()
        .find(|(alias, _)| *alias == action)
        .map(|(_, canonical)| *canonical)
        .unwrap_or(action)
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

/// One permission: an action and the scope it applies to (empty for unscoped actions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub action: String,
    pub scope: String,
}

impl Permission {
    pub fn new(action: &str, scope: &str) -> Self {
        Self {
            action: canonical_action(action).to_string(),
            scope: scope.to_string(),
        }
    }
}

/// The evaluator: what a principal may do.
#[derive(Debug, Clone, Default)]
pub struct PermissionSet {
    everything: bool,
    by_action: HashMap<String, Vec<String>>,
}

impl PermissionSet {
    /// Holds every permission (in-process system work only).
    pub fn all() -> Self {
        Self {
            everything: true,
            by_action: HashMap::new(),
        }
    }

    pub fn from_permissions<'a>(perms: impl IntoIterator<Item = &'a Permission>) -> Self {
        let mut set = Self::default();
        set.extend(perms);
        set
    }

    pub fn extend<'a>(&mut self, perms: impl IntoIterator<Item = &'a Permission>) {
        for p in perms {
            let scopes = self
                .by_action
                .entry(canonical_action(&p.action).to_string())
                .or_default();
            if !scopes.contains(&p.scope) {
                scopes.push(p.scope.clone());
            }
        }
    }

    /// May the holder do `action` on `scope`? An empty `scope` asks "on anything at all",
    /// as Grafana's unscoped checks do.
    pub fn has(&self, action: &str, scope: &str) -> bool {
        if self.everything {
            return true;
        }
        let Some(scopes) = self.by_action.get(canonical_action(action)) else {
            return false;
        };
        scope.is_empty()
            || scopes
                .iter()
                .any(|g| g.is_empty() || scope_covers(g, scope))
    }

    /// Every permission held, sorted (for explanations).
    pub fn to_vec(&self) -> Vec<Permission> {
        let mut out: Vec<Permission> = self
            .by_action
            .iter()
            .flat_map(|(a, scopes)| scopes.iter().map(move |s| Permission::new(a, s)))
            .collect();
        out.sort_by(|a, b| (&a.action, &a.scope).cmp(&(&b.action, &b.scope)));
        out
    }

    pub fn is_everything(&self) -> bool {
        self.everything
    }

    pub fn actions(&self) -> HashSet<&str> {
        self.by_action.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let set = PermissionSet::from_permissions(&[Permission::new(
            "users.password:write",
            "global.users:*",
        )]);
        assert!(set.has("users.password:update", "global.users:id:3"));
        assert!(set.has("users.password:write", "global.users:id:3"));
        assert!(!set.has("users:delete", "global.users:id:3"));
    }

    #[test]
    fn unscoped_requests_need_any_grant() {
        let set = PermissionSet::from_permissions(&[Permission::new(
            "settings:read",
            "settings:auth.saml:enabled",
        )]);
        assert!(set.has("settings:read", ""));
        assert!(!set.has("settings:read", "settings:*"));
        assert!(set.has("settings:read", "settings:auth.saml:enabled"));
    }
}
