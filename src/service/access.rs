//! The role catalog: fixed roles (Grafana's `fixed:*`), the basic roles (`basic:viewer`,
//! ..., `basic:grafana_admin`) and which roles each basic role holds. Everything here is
//! data: custom roles and assignments add rows, not code.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::domain::{Action, OrgRole, Permission, PermissionSet, DELEGATE_SCOPE};

/// A role: a named set of permissions.
#[derive(Debug, Clone)]
pub struct Role {
    pub uid: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub group: String,
    pub version: u64,
    pub global: bool,
    pub permissions: Vec<Permission>,
}

fn role(name: &str, display: &str, group: &str, perms: &[(Action, &str)]) -> Role {
    Role {
        uid: name.replace(':', "_"),
        name: name.to_string(),
        display_name: display.to_string(),
        description: String::new(),
        group: group.to_string(),
        version: 1,
        global: true,
        permissions: perms.iter().map(|(a, s)| Permission::new(*a, s)).collect(),
    }
}

const USERS_ALL: &str = "global.users:*";
/// Org-user actions are scoped by `users:id:<id>` (no `global.` prefix).
const ORG_USERS_ALL: &str = "users:*";

/// Grafana's fixed roles that matter for the admin and licensing APIs.
pub fn fixed_roles() -> Vec<Role> {
    vec![
        role(
            "fixed:settings:reader",
            "Settings reader",
            "Settings",
            &[(Action::SettingsRead, "settings:*")],
        ),
        role(
            "fixed:settings:writer",
            "Settings writer",
            "Settings",
            &[
                (Action::SettingsRead, "settings:*"),
                (Action::SettingsWrite, "settings:*"),
            ],
        ),
        role(
            "fixed:stats:reader",
            "Statistics reader",
            "Statistics",
            &[(Action::ServerStatsRead, "")],
        ),
        role(
            "fixed:backup:creator",
            "Backup creator",
            "Backup",
            &[(Action::ServerBackupCreate, "")],
        ),
        role(
            "fixed:audit:reader",
            "Audit log reader",
            "Audit",
            &[(Action::AuditRead, "")],
        ),
        role(
            "fixed:usagestats:reader",
            "Usage report reader",
            "Statistics",
            &[(Action::ServerUsageStatsReportRead, "")],
        ),
        role(
            "fixed:users:reader",
            "User reader",
            "User administration (server)",
            &[
                (Action::UsersRead, USERS_ALL),
                (Action::UsersAuthTokenList, USERS_ALL),
                (Action::UsersQuotasList, USERS_ALL),
            ],
        ),
        role(
            "fixed:users:writer",
            "User writer",
            "User administration (server)",
            &[
                (Action::UsersRead, USERS_ALL),
                (Action::UsersAuthTokenList, USERS_ALL),
                (Action::UsersQuotasList, USERS_ALL),
                (Action::UsersPasswordUpdate, USERS_ALL),
                (Action::UsersCreate, ""),
                (Action::UsersWrite, USERS_ALL),
                (Action::UsersDelete, USERS_ALL),
                (Action::UsersEnable, USERS_ALL),
                (Action::UsersDisable, USERS_ALL),
                (Action::UsersPermissionsUpdate, USERS_ALL),
                (Action::UsersLogout, USERS_ALL),
                (Action::UsersAuthTokenUpdate, USERS_ALL),
                (Action::UsersQuotasUpdate, USERS_ALL),
            ],
        ),
        role(
            "fixed:ldap:reader",
            "LDAP reader",
            "LDAP",
            &[(Action::LdapUserRead, ""), (Action::LdapStatusRead, "")],
        ),
        role(
            "fixed:ldap:writer",
            "LDAP writer",
            "LDAP",
            &[
                (Action::LdapUserRead, ""),
                (Action::LdapStatusRead, ""),
                (Action::LdapUserSync, ""),
                (Action::LdapConfigReload, ""),
            ],
        ),
        role(
            "fixed:provisioning:writer",
            "Provisioning writer",
            "Provisioning",
            &[(Action::ProvisioningReload, "provisioners:*")],
        ),
        role(
            "fixed:licensing:reader",
            "Licensing reader",
            "Licensing",
            &[
                (Action::LicensingRead, ""),
                (Action::LicensingReportsRead, ""),
            ],
        ),
        role(
            "fixed:licensing:writer",
            "Licensing writer",
            "Licensing",
            &[
                (Action::LicensingRead, ""),
                (Action::LicensingReportsRead, ""),
                (Action::LicensingWrite, ""),
                (Action::LicensingDelete, ""),
            ],
        ),
        role(
            "fixed:roles:writer",
            "Role writer",
            "Access control",
            &[
                (Action::RolesRead, "roles:*"),
                (Action::RolesWrite, "roles:*"),
                (Action::RolesDelete, "roles:*"),
                (Action::UsersRolesRead, USERS_ALL),
                (Action::UsersRolesAdd, USERS_ALL),
                (Action::UsersRolesRemove, USERS_ALL),
                // Grafana's grants: role management on the delegate scope (the holder hands
                // out only what it holds), role reads on `users:`. The `roles:*` and
                // `global.users:*` grants above are tollgate's older spelling, kept so that
                // roles written against them keep working.
                (Action::RolesWrite, DELEGATE_SCOPE),
                (Action::RolesDelete, DELEGATE_SCOPE),
                (Action::UsersRolesAdd, DELEGATE_SCOPE),
                (Action::UsersRolesRemove, DELEGATE_SCOPE),
                (Action::UsersRolesRead, "users:*"),
                // Grafana's fixed:roles:reader (in every roles writer) holds it, on its own
                // scope kind: `users:`, not `global.users:`.
                (Action::UsersPermissionsRead, "users:*"),
                // Which fixed role grants Grafana's `status:accesscontrol` is not documented;
                // the role managers are the ones who ask whether RBAC is on.
                (Action::StatusAccessControl, "services:accesscontrol"),
            ],
        ),
        role(
            "fixed:serviceaccounts:writer",
            "Service account writer",
            "Service accounts",
            &[
                (Action::ServiceAccountsRead, "serviceaccounts:*"),
                (Action::ServiceAccountsCreate, ""),
                (Action::ServiceAccountsWrite, "serviceaccounts:*"),
                (Action::ServiceAccountsDelete, "serviceaccounts:*"),
            ],
        ),
        role(
            "fixed:apikeys:writer",
            "API key writer",
            "API keys",
            &[
                (Action::ApiKeysRead, "apikeys:*"),
                (Action::ApiKeysCreate, ""),
                (Action::ApiKeysDelete, "apikeys:*"),
            ],
        ),
        role(
            "fixed:datasources:reader",
            "Data source reader",
            "Data sources",
            &[(Action::DatasourcesRead, "datasources:*")],
        ),
        role(
            "fixed:datasources:writer",
            "Data source writer",
            "Data sources",
            &[
                (Action::DatasourcesRead, "datasources:*"),
                (Action::DatasourcesCreate, ""),
                (Action::DatasourcesWrite, "datasources:*"),
                (Action::DatasourcesDelete, "datasources:*"),
            ],
        ),
        role(
            "fixed:datasources.id:reader",
            "Data source ID reader",
            "Infrequently used",
            &[(Action::DatasourcesIdRead, "datasources:*")],
        ),
        role(
            "fixed:alerting:reader",
            "Alerting reader",
            "Alerting",
            &[
                (Action::AlertRulesRead, "*"),
                (Action::AlertNotificationsRead, "*"),
                (Action::DashboardsRead, "*"),
                (Action::FoldersRead, "*"),
                (Action::PluginsRead, "*"),
            ],
        ),
        role(
            "fixed:organization:reader",
            "Organization reader",
            "Organizations",
            &[(Action::OrgsRead, ""), (Action::OrgsQuotasRead, "")],
        ),
        role(
            "fixed:organization:writer",
            "Organization writer",
            "Organizations",
            &[
                (Action::OrgsRead, ""),
                (Action::OrgsQuotasRead, ""),
                (Action::OrgsWrite, ""),
            ],
        ),
        role(
            "fixed:organization:maintainer",
            "Organization maintainer",
            "Organizations",
            &[
                (Action::OrgsRead, ""),
                (Action::OrgsQuotasRead, ""),
                (Action::OrgsWrite, ""),
                (Action::OrgsCreate, ""),
                (Action::OrgsDelete, ""),
                (Action::OrgsQuotasWrite, ""),
            ],
        ),
        role(
            "fixed:org.users:reader",
            "Organization user reader",
            "User administration (organizational)",
            &[(Action::OrgUsersRead, ORG_USERS_ALL)],
        ),
        role(
            "fixed:org.users:writer",
            "Organization user writer",
            "User administration (organizational)",
            &[
                (Action::OrgUsersRead, ORG_USERS_ALL),
                (Action::OrgUsersAdd, ORG_USERS_ALL),
                (Action::OrgUsersWrite, ORG_USERS_ALL),
                (Action::OrgUsersRemove, ORG_USERS_ALL),
            ],
        ),
        role(
            "fixed:alerting:writer",
            "Alerting writer",
            "Alerting",
            &[(Action::AlertRulesWrite, "*")],
        ),
    ]
}

/// The basic roles and the fixed roles each holds by default.
pub fn default_grants() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("basic:none", vec![]),
        // Grafana grants `fixed:datasources.id:reader` to Viewer; basic roles here do not
        // inherit from each other, so Editor and Admin name it too.
        (
            "basic:viewer",
            vec![
                "fixed:alerting:reader",
                "fixed:datasources.id:reader",
                "fixed:organization:reader",
            ],
        ),
        (
            "basic:editor",
            vec![
                "fixed:datasources.id:reader",
                "fixed:datasources:reader",
                "fixed:alerting:reader",
                "fixed:alerting:writer",
                "fixed:organization:reader",
            ],
        ),
        (
            "basic:admin",
            vec![
                "fixed:datasources.id:reader",
                "fixed:datasources:writer",
                "fixed:alerting:reader",
                "fixed:alerting:writer",
                "fixed:apikeys:writer",
                "fixed:serviceaccounts:writer",
                "fixed:organization:writer",
                "fixed:org.users:writer",
            ],
        ),
        (
            "basic:grafana_admin",
            vec![
                "fixed:settings:writer",
                "fixed:stats:reader",
                "fixed:backup:creator",
                "fixed:audit:reader",
                "fixed:usagestats:reader",
                "fixed:users:writer",
                "fixed:ldap:writer",
                "fixed:provisioning:writer",
                "fixed:licensing:writer",
                "fixed:roles:writer",
                "fixed:organization:maintainer",
                "fixed:org.users:writer",
            ],
        ),
    ]
}

pub fn basic_role_for(role: OrgRole) -> &'static str {
    match role {
        OrgRole::None => "basic:none",
        OrgRole::Viewer => "basic:viewer",
        OrgRole::Editor => "basic:editor",
        OrgRole::Admin => "basic:admin",
    }
}

struct Snapshot {
    roles: HashMap<String, Role>,
    grants: HashMap<String, Vec<String>>,
    /// Permissions of custom roles assigned to single users (through the API or
    /// provisioning), by user id.
    user_grants: HashMap<u64, Vec<Permission>>,
    /// The set of each (org role, Grafana Admin) pair, resolved when the snapshot is made
    /// (see [`Snapshot::basic`]): a request's lookup is an index, not a map and its lock.
    basic: [Arc<PermissionSet>; BASIC_SETS],
    /// (user, org role, grafana admin) -> resolved set, for users with grants of their own;
    /// filled on first use (emptied when it reaches [`RESOLVED_USERS`]).
    resolved_users: RwLock<crate::domain::FastMap<(u64, OrgRole, bool), Arc<PermissionSet>>>,
}

impl Snapshot {
    fn new(
        roles: HashMap<String, Role>,
        grants: HashMap<String, Vec<String>>,
        user_grants: HashMap<u64, Vec<Permission>>,
    ) -> Self {
        let basic = std::array::from_fn(|i| {
            let role = u8::try_from(i / 2)
                .ok()
                .and_then(OrgRole::from_byte)
                .unwrap_or(OrgRole::None);
            Arc::new(Self::resolve(&roles, &grants, role, i % 2 == 1))
        });
        Self {
            roles,
            grants,
            user_grants,
            basic,
            resolved_users: RwLock::new(Default::default()),
        }
    }

    /// The permissions the basic roles of (`org_role`, `grafana_admin`) grant.
    fn resolve(
        roles: &HashMap<String, Role>,
        grants: &HashMap<String, Vec<String>>,
        org_role: OrgRole,
        grafana_admin: bool,
    ) -> PermissionSet {
        let mut set = PermissionSet::default();
        let mut basics = vec![basic_role_for(org_role)];
        if grafana_admin {
            basics.push("basic:grafana_admin");
        }
        for basic in basics {
            for uid in grants.get(basic).into_iter().flatten() {
                if let Some(role) = roles.get(uid) {
                    set.extend(&role.permissions);
                }
            }
        }
        set
    }

    fn basic(&self, org_role: OrgRole, grafana_admin: bool) -> &Arc<PermissionSet> {
        &self.basic[usize::from(org_role.to_byte()) * 2 + usize::from(grafana_admin)]
    }
}

/// One set per org role, with and without Grafana Admin.
const BASIC_SETS: usize = 8;

/// Users' resolved sets remembered at once.
const RESOLVED_USERS: usize = 10_000;

/// The catalog the evaluator reads. Cheap to query: the permission set of each
/// (org role, Grafana Admin) pair, and of each user with grants of their own, is resolved
/// once and shared. Every change of the custom roles installs a new snapshot whole, so a
/// set resolved from an older one is never handed out after the change.
pub struct RoleCatalog {
    current: RwLock<Arc<Snapshot>>,
}

/// The basic role a provisioning file names (`Viewer`, `Editor`, `Admin`, `Grafana Admin`,
/// `None`), as the catalog's grant key.
pub fn basic_role_key(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "none" => Some("basic:none"),
        "viewer" => Some("basic:viewer"),
        "editor" => Some("basic:editor"),
        "admin" => Some("basic:admin"),
        "grafana admin" | "grafanaadmin" | "server admin" => Some("basic:grafana_admin"),
        _ => None,
    }
}

/// A custom role for the catalog and whom it goes to.
#[derive(Debug, Clone)]
pub struct CustomRole {
    pub role: Role,
    /// Catalog grant keys (`basic:viewer`, ...).
    pub basic_roles: Vec<&'static str>,
    pub users: Vec<u64>,
}

impl Default for RoleCatalog {
    fn default() -> Self {
        Self::new()
    }
}

impl RoleCatalog {
    pub fn new() -> Self {
        let roles = fixed_roles()
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let grants = default_grants()
            .into_iter()
            .map(|(b, rs)| (b.to_string(), rs.into_iter().map(String::from).collect()))
            .collect();
        Self {
            current: RwLock::new(Arc::new(Snapshot::new(roles, grants, HashMap::new()))),
        }
    }

    /// Replaces the custom roles (provisioned or created through the API): the fixed roles
    /// and default grants stay, the custom ones are swapped in at once.
    pub fn install_custom(&self, custom: &[CustomRole]) {
        let mut roles: HashMap<String, Role> = fixed_roles()
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let mut grants: HashMap<String, Vec<String>> = default_grants()
            .into_iter()
            .map(|(b, rs)| (b.to_string(), rs.into_iter().map(String::from).collect()))
            .collect();
        let mut users: HashMap<u64, Vec<Permission>> = HashMap::new();
        for c in custom {
            roles.insert(c.role.name.clone(), c.role.clone());
            for basic in &c.basic_roles {
                grants
                    .entry((*basic).to_string())
                    .or_default()
                    .push(c.role.name.clone());
            }
            for u in &c.users {
                users
                    .entry(*u)
                    .or_default()
                    .extend(c.role.permissions.iter().cloned());
            }
        }
        *self.current.write() = Arc::new(Snapshot::new(roles, grants, users));
    }

    /// The permissions of a user: basic roles plus their own grants.
    pub fn permissions_for_user(
        &self,
        user: u64,
        org_role: OrgRole,
        grafana_admin: bool,
    ) -> Arc<PermissionSet> {
        let snap = self.current.read();
        let Some(extra) = snap.user_grants.get(&user) else {
            return snap.basic(org_role, grafana_admin).clone();
        };
        let key = (user, org_role, grafana_admin);
        if let Some(set) = snap.resolved_users.read().get(&key) {
            return set.clone();
        }
        let mut set = (**snap.basic(org_role, grafana_admin)).clone();
        set.extend(extra);
        let set = Arc::new(set);
        let mut memo = snap.resolved_users.write();
        if memo.len() >= RESOLVED_USERS {
            memo.clear();
        }
        memo.insert(key, set.clone());
        set
    }

    /// The permissions of a user with this org role (and Grafana Admin flag).
    pub fn permissions_for(&self, org_role: OrgRole, grafana_admin: bool) -> Arc<PermissionSet> {
        self.current.read().basic(org_role, grafana_admin).clone()
    }

    /// The roles behind these basic roles (default and custom grants) with their permissions.
    pub fn explain(&self, basics: &[&str]) -> Vec<(String, Vec<Permission>)> {
        let snap = self.current.read().clone();
        let mut out = Vec::new();
        for basic in basics {
            for name in snap.grants.get(*basic).into_iter().flatten() {
                if let Some(role) = snap.roles.get(name) {
                    out.push((format!("{name} (via {basic})"), role.permissions.clone()));
                }
            }
        }
        out
    }

    pub fn roles(&self) -> Vec<Role> {
        let mut v: Vec<Role> = self.current.read().roles.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_admin_holds_the_admin_api() {
        let c = RoleCatalog::new();
        let admin = c.permissions_for(OrgRole::Viewer, true);
        assert!(admin.has(Action::UsersCreate, ""));
        assert!(admin.has(Action::UsersPasswordUpdate, "global.users:id:9"));
        assert!(admin.has(Action::SettingsRead, "settings:auth.saml:enabled"));
        assert!(admin.has(Action::UsersPermissionsRead, "users:id:9"));
        let viewer = c.permissions_for(OrgRole::Admin, false);
        assert!(!viewer.has(Action::UsersCreate, ""));
        assert!(!viewer.has(Action::SettingsRead, ""));
    }

    #[test]
    fn role_managers_delegate_on_grafanas_scope() {
        let c = RoleCatalog::new();
        let admin = c.permissions_for(OrgRole::Viewer, true);
        for a in [
            Action::RolesWrite,
            Action::RolesDelete,
            Action::UsersRolesAdd,
            Action::UsersRolesRemove,
        ] {
            assert!(admin.has(a, DELEGATE_SCOPE), "{a}");
        }
        assert!(admin.has(Action::UsersRolesRead, "users:id:*"));
        assert!(admin.has(Action::StatusAccessControl, "services:accesscontrol"));
        let org_admin = c.permissions_for(OrgRole::Admin, false);
        assert!(!org_admin.has(Action::UsersRolesAdd, DELEGATE_SCOPE));
        assert!(!org_admin.has(Action::StatusAccessControl, ""));
    }

    #[test]
    fn every_basic_role_reads_datasource_ids() {
        let c = RoleCatalog::new();
        for role in [OrgRole::Viewer, OrgRole::Editor, OrgRole::Admin] {
            let set = c.permissions_for(role, false);
            assert!(
                set.has(Action::DatasourcesIdRead, "datasources:uid:x"),
                "{role}"
            );
        }
        assert!(!c
            .permissions_for(OrgRole::None, false)
            .has(Action::DatasourcesIdRead, ""));
        assert!(!c
            .permissions_for(OrgRole::Viewer, false)
            .has(Action::DatasourcesRead, ""));
    }

    fn custom(uid: &str, user: u64, scope: &str) -> CustomRole {
        CustomRole {
            role: Role {
                uid: uid.into(),
                name: format!("custom:{uid}"),
                display_name: String::new(),
                description: String::new(),
                group: String::new(),
                version: 1,
                global: true,
                permissions: vec![Permission::new(Action::SettingsRead, scope)],
            },
            basic_roles: Vec::new(),
            users: vec![user],
        }
    }

    #[test]
    fn a_users_own_grants_are_resolved_once_per_change_of_the_roles() {
        let c = RoleCatalog::new();
        let enabled = "settings:auth.saml:enabled";
        c.install_custom(&[custom("a", 7, enabled)]);
        let set = c.permissions_for_user(7, OrgRole::Viewer, false);
        assert!(set.has(Action::SettingsRead, enabled));
        assert!(
            set.has(Action::DatasourcesIdRead, ""),
            "the basic role's too"
        );
        assert!(Arc::ptr_eq(
            &set,
            &c.permissions_for_user(7, OrgRole::Viewer, false)
        ));
        let editor = c.permissions_for_user(7, OrgRole::Editor, false);
        assert!(editor.has(Action::SettingsRead, enabled));
        assert!(!Arc::ptr_eq(&set, &editor));
        // Someone without grants of their own shares the basic role's set.
        assert!(Arc::ptr_eq(
            &c.permissions_for_user(8, OrgRole::Viewer, false),
            &c.permissions_for(OrgRole::Viewer, false)
        ));
        // A change of the roles is seen at once.
        c.install_custom(&[custom("a", 7, "settings:auth.saml:single_logout")]);
        let set = c.permissions_for_user(7, OrgRole::Viewer, false);
        assert!(!set.has(Action::SettingsRead, enabled));
        assert!(set.has(Action::SettingsRead, "settings:auth.saml:single_logout"));
        c.install_custom(&[]);
        assert!(!c
            .permissions_for_user(7, OrgRole::Viewer, false)
            .has(Action::SettingsRead, ""));
    }
}
