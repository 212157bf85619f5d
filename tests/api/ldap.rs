//! LDAP against a real Debian slapd (tests/api/slapd.rs, tree in tests/fixtures/ldap):
//! sign-in with mapped roles, group changes at the next sign-in, wrong passwords, users
//! outside the search base, reloads that keep the old config on failure, status, lookup,
//! sync, and a directory that goes down while local admins still sign in. Group search
//! as Grafana's `requestMemberOf`: `groupOfNames` without the memberOf overlay, POSIX
//! `posixGroup`/`memberUid`, the default group search base, and `member_of` naming an
//! attribute of the group entry.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{json, Value};
use tollgate::domain::{OrgId, OrgRole};

use crate::helpers::{message, send, TestApp, ADMIN, ADMIN_PW};
use crate::slapd::{Directory, Slapd};

fn config(port: u16, bind_pw: &str, viewers_role: &str) -> String {
    format!(
        r#"
[[servers]]
host = "127.0.0.1"
port = {port}
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "{bind_pw}"
timeout = 3
search_filter = "(uid=%s)"
search_base_dns = ["ou=users,dc=example,dc=org"]

[servers.attributes]
name = "givenName"
surname = "sn"
username = "uid"
member_of = "memberOf"
email = "mail"

[[servers.group_mappings]]
group_dn = "cn=admins,ou=groups,dc=example,dc=org"
org_role = "Admin"
grafana_admin = true

[[servers.group_mappings]]
group_dn = "cn=editors,ou=groups,dc=example,dc=org"
org_role = "Editor"

[[servers.group_mappings]]
group_dn = "cn=viewers,ou=groups,dc=example,dc=org"
org_role = "{viewers_role}"
"#
    )
}

struct Ldap {
    app: TestApp,
    slapd: Slapd,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

async fn with_ldap() -> Ldap {
    let slapd = Slapd::start();
    // The bind password comes from the environment, as operators keep it out of the file.
    std::env::set_var("TG_TEST_LDAP_BIND_PW", crate::slapd::ADMIN_PW);
    let text = config(slapd.port, "${TG_TEST_LDAP_BIND_PW}", "Viewer");
    spawn_ldap(slapd, &text).await
}

/// An app with LDAP on (sign-up allowed) and `text` as its ldap.toml.
async fn spawn_ldap(slapd: Slapd, text: &str) -> Ldap {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ldap.toml");
    std::fs::write(&file, text).unwrap();
    let f = file.to_string_lossy().to_string();
    let app = TestApp::spawn_with(&[
        ("auth.ldap", "enabled", "true"),
        ("auth.ldap", "config_file", f.as_str()),
        ("auth.ldap", "allow_sign_up", "true"),
    ])
    .await;
    Ldap {
        app,
        slapd,
        file,
        _dir: dir,
    }
}

async fn sign_in(app: &TestApp, login: &str, pw: &str) -> (u16, Value) {
    send(app.as_user(Method::GET, "/api/user", login, pw)).await
}

async fn role(app: &TestApp, login: &str) -> (Option<OrgRole>, bool) {
    let u = app
        .services
        .store
        .user_by_login(login)
        .await
        .unwrap()
        .unwrap();
    (u.role_in(OrgId(1)), u.is_admin)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn ldap_users_sign_in_with_their_mapped_roles() {
    let l = with_ldap().await;
    let app = &l.app;
    let (s, me) = sign_in(app, "alice", "alice-pw").await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["email"], "alice@example.org");
    assert_eq!(me["isExternal"], true);
    assert_eq!(me["authLabels"], json!(["LDAP"]));
    assert_eq!(role(app, "alice").await, (Some(OrgRole::Admin), true));
    assert_eq!(sign_in(app, "bob", "bob-pw").await.0, 200);
    assert_eq!(role(app, "bob").await, (Some(OrgRole::Editor), false));
    assert_eq!(sign_in(app, "carol", "carol-pw").await.0, 200);
    assert_eq!(role(app, "carol").await, (Some(OrgRole::Viewer), false));
    // Grafana Admin from the group mapping: alice reaches the admin API.
    let (s, _) = send(app.as_user(Method::GET, "/api/admin/stats", "alice", "alice-pw")).await;
    assert_eq!(s, 200);
    // Refused: a wrong password, no mapped group, outside the search base, unknown.
    for (login, pw) in [
        ("alice", "wrong"),
        ("dave", "dave-pw"),
        ("eve", "eve-pw"),
        ("zed", "x"),
    ] {
        let (s, v) = sign_in(app, login, pw).await;
        assert_eq!(s, 401, "{login}: {v}");
    }
    // The session sign-in works too, and its token says ldap.
    let (s, _) = send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": "carol", "password": "carol-pw"})),
    )
    .await;
    assert_eq!(s, 200);
    let id = {
        app.services
            .store
            .user_by_login("carol")
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let (_, tokens) =
        send(app.admin(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    assert_eq!(tokens[0]["authModule"], "ldap", "{tokens}");
    // Local users still sign in.
    assert_eq!(sign_in(app, ADMIN, ADMIN_PW).await.0, 200);
}

#[tokio::test]
async fn a_changed_group_applies_at_the_next_sign_in() {
    let l = with_ldap().await;
    assert_eq!(sign_in(&l.app, "bob", "bob-pw").await.0, 200);
    assert_eq!(role(&l.app, "bob").await, (Some(OrgRole::Editor), false));
    l.slapd.modify(
        "dn: cn=editors,ou=groups,dc=example,dc=org\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=users,dc=example,dc=org\n\n\
         dn: cn=admins,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: uid=bob,ou=users,dc=example,dc=org\n",
    );
    assert_eq!(sign_in(&l.app, "bob", "bob-pw").await.0, 200);
    assert_eq!(role(&l.app, "bob").await, (Some(OrgRole::Admin), true));
    // Sync by id does the same without a sign-in.
    l.slapd.modify(
        "dn: cn=admins,ou=groups,dc=example,dc=org\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=users,dc=example,dc=org\n\n\
         dn: cn=viewers,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: uid=bob,ou=users,dc=example,dc=org\n",
    );
    let id = {
        l.app
            .services
            .store
            .user_by_login("bob")
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let (s, v) = send(
        l.app
            .admin(Method::POST, &format!("/api/admin/ldap/sync/{id}")),
    )
    .await;
    assert_eq!((s, message(&v)), (200, "User synced"));
    assert_eq!(role(&l.app, "bob").await, (Some(OrgRole::Viewer), false));
    let (s, _) = send(l.app.admin(Method::POST, "/api/admin/ldap/sync/1")).await;
    assert_eq!(s, 400, "the local admin is not an LDAP user");
}

#[tokio::test]
async fn reload_validates_and_test_binds_before_swapping() {
    let l = with_ldap().await;
    let reload = || send(l.app.admin(Method::POST, "/api/admin/ldap/reload"));
    // A broken file: 500 with the reason; the old config stays.
    write(&l.file, "[[servers]\nhost = ");
    let (s, v) = reload().await;
    assert_eq!(
        (s, message(&v)),
        (500, "Failed to reload LDAP config"),
        "{v}"
    );
    assert!(!v["error"].as_str().unwrap_or("").is_empty(), "{v}");
    assert_eq!(sign_in(&l.app, "carol", "carol-pw").await.0, 200);
    // A file whose bind fails.
    write(&l.file, &config(l.slapd.port, "not-the-password", "Editor"));
    let (s, v) = reload().await;
    assert_eq!(s, 500);
    assert!(v["error"].as_str().unwrap().contains("bind"), "{v}");
    assert_eq!(sign_in(&l.app, "carol", "carol-pw").await.0, 200);
    assert_eq!(
        role(&l.app, "carol").await,
        (Some(OrgRole::Viewer), false),
        "old mapping kept"
    );
    // A good change: 200, and the next sign-in uses it.
    write(
        &l.file,
        &config(l.slapd.port, crate::slapd::ADMIN_PW, "Editor"),
    );
    let (s, v) = reload().await;
    assert_eq!((s, message(&v)), (200, "LDAP config reloaded"));
    assert_eq!(sign_in(&l.app, "carol", "carol-pw").await.0, 200);
    assert_eq!(role(&l.app, "carol").await, (Some(OrgRole::Editor), false));
    // Permissions.
    l.app.create_user("plain", "plain-pw-1").await;
    let (s, _) = send(l.app.as_user(
        Method::POST,
        "/api/admin/ldap/reload",
        "plain",
        "plain-pw-1",
    ))
    .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn ldap_disabled() {
    let app = TestApp::spawn().await;
    for (m, p) in [
        (Method::POST, "/api/admin/ldap/reload"),
        (Method::GET, "/api/admin/ldap/status"),
        (Method::GET, "/api/admin/ldap/alice"),
    ] {
        let (s, v) = send(app.admin(m, p)).await;
        assert_eq!((s, message(&v)), (400, "LDAP is not enabled"), "{p}");
    }
}

#[tokio::test]
async fn status_lookup_and_a_directory_that_goes_down() {
    let mut l = with_ldap().await;
    let (s, st) = send(l.app.admin(Method::GET, "/api/admin/ldap/status")).await;
    assert_eq!(s, 200);
    assert_eq!(st[0]["available"], true, "{st}");
    assert_eq!(st[0]["port"], l.slapd.port);
    let (s, u) = send(l.app.admin(Method::GET, "/api/admin/ldap/alice")).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["email"]["ldapValue"], "alice@example.org");
    assert_eq!(u["email"]["cfgAttrValue"], "mail");
    assert_eq!(u["isGrafanaAdmin"], true);
    assert_eq!(u["orgRoles"][0]["orgRole"], "Admin");
    assert_eq!(
        u["orgRoles"][0]["groupDN"],
        "cn=admins,ou=groups,dc=example,dc=org"
    );
    let (s, _) = send(l.app.admin(Method::GET, "/api/admin/ldap/nobody")).await;
    assert_eq!(s, 404);
    assert_eq!(sign_in(&l.app, "alice", "alice-pw").await.0, 200);

    l.slapd.stop();
    let (s, st) = send(l.app.admin(Method::GET, "/api/admin/ldap/status")).await;
    assert_eq!(s, 200);
    assert_eq!(st[0]["available"], false, "{st}");
    assert!(!st[0]["error"].as_str().unwrap().is_empty());
    assert_eq!(
        sign_in(&l.app, ADMIN, ADMIN_PW).await.0,
        200,
        "a local admin still signs in"
    );
    assert_eq!(sign_in(&l.app, "alice", "alice-pw").await.0, 401);
    l.slapd.restart();
    assert_eq!(sign_in(&l.app, "alice", "alice-pw").await.0, 200);
}

/// An ldap.toml for a directory whose groups are searched: `server` carries the
/// group-search keys and `search_base_dns`, `member_of` is `attributes.member_of`, and
/// `group(name)` is what the mapping for group `name` puts in `group_dn`.
fn group_search_config(
    port: u16,
    server: &str,
    member_of: &str,
    group: fn(&str) -> String,
) -> String {
    let (admins, editors, viewers) = (group("admins"), group("editors"), group("viewers"));
    format!(
        r#"
[[servers]]
host = "127.0.0.1"
port = {port}
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "{pw}"
timeout = 3
search_filter = "(uid=%s)"
{server}

[servers.attributes]
name = "givenName"
surname = "sn"
username = "uid"
member_of = "{member_of}"
email = "mail"

[[servers.group_mappings]]
group_dn = "{admins}"
org_role = "Admin"
grafana_admin = true

[[servers.group_mappings]]
group_dn = "{editors}"
org_role = "Editor"

[[servers.group_mappings]]
group_dn = "{viewers}"
org_role = "Viewer"
"#,
        pw = crate::slapd::ADMIN_PW,
    )
}

fn group_dn(name: &str) -> String {
    format!("cn={name},ou=groups,dc=example,dc=org")
}

const USERS_BASE: &str = r#"search_base_dns = ["ou=users,dc=example,dc=org"]"#;

/// alice (admins, editors), bob (editors) and carol (viewers) sign in through Basic auth
/// with the roles their groups map to; dave, in no group, is refused.
async fn assert_mapped_by_groups(app: &TestApp) {
    for (login, want) in [
        ("alice", (Some(OrgRole::Admin), true)),
        ("bob", (Some(OrgRole::Editor), false)),
        ("carol", (Some(OrgRole::Viewer), false)),
    ] {
        let (s, v) = sign_in(app, login, &format!("{login}-pw")).await;
        assert_eq!(s, 200, "{login}: {v}");
        assert_eq!(role(app, login).await, want, "{login}");
    }
    let (s, v) = sign_in(app, "dave", "dave-pw").await;
    assert_eq!(s, 401, "dave is in no group: {v}");
}

#[tokio::test]
async fn ldap_group_search_for_group_of_names_without_the_member_of_overlay() {
    let slapd = Slapd::start_with(Directory::GROUP_OF_NAMES);
    let port = slapd.port;
    // `group_search_filter_user_attribute = "dn"`: `%s` is the user's DN, which Grafana
    // reads from the entry's name (its getAttribute special-cases "dn").
    let server = format!(
        "{USERS_BASE}\n\
         group_search_filter = \"(&(objectClass=groupOfNames)(member=%s))\"\n\
         group_search_filter_user_attribute = \"dn\"\n\
         group_search_base_dns = [\"ou=groups,dc=example,dc=org\"]"
    );
    let l = spawn_ldap(
        slapd,
        &group_search_config(port, &server, "memberOf", group_dn),
    )
    .await;
    assert_mapped_by_groups(&l.app).await;
    // The session sign-in maps the same way.
    let (s, v) = send(
        l.app
            .req(Method::POST, "/login")
            .json(&json!({"user": "bob", "password": "bob-pw"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The lookup shows the group that gave the role.
    let (s, u) = send(l.app.admin(Method::GET, "/api/admin/ldap/alice")).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["isGrafanaAdmin"], true, "{u}");
    assert_eq!(u["orgRoles"][0]["groupDN"], group_dn("admins"), "{u}");
    // The directory really has no memberOf: without the group search nobody maps.
    write(&l.file, &config(port, crate::slapd::ADMIN_PW, "Viewer"));
    let (s, v) = send(l.app.admin(Method::POST, "/api/admin/ldap/reload")).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = sign_in(&l.app, "alice", "alice-pw").await;
    assert_eq!(s, 401, "no memberOf, no group search: {v}");
}

#[tokio::test]
async fn ldap_group_search_for_posix_groups_uses_the_username() {
    let slapd = Slapd::start_with(Directory::POSIX);
    let port = slapd.port;
    // No group_search_filter_user_attribute: `%s` is the username attribute's value
    // (`uid`: "alice"), not the DN, which memberUid would never hold.
    let server = format!(
        "{USERS_BASE}\n\
         group_search_filter = \"(&(objectClass=posixGroup)(memberUid=%s))\"\n\
         group_search_base_dns = [\"ou=groups,dc=example,dc=org\"]"
    );
    let l = spawn_ldap(
        slapd,
        &group_search_config(port, &server, "memberOf", group_dn),
    )
    .await;
    assert_mapped_by_groups(&l.app).await;
}

#[tokio::test]
async fn ldap_group_search_with_a_named_user_attribute() {
    let slapd = Slapd::start_with(Directory::POSIX);
    let port = slapd.port;
    // group_search_filter_user_attribute names an attribute the user search would not
    // otherwise ask for (the username is `mail` here), so it must be requested too.
    let text = group_search_config(
        port,
        &format!(
            "{USERS_BASE}\n\
             group_search_filter = \"(&(objectClass=posixGroup)(memberUid=%s))\"\n\
             group_search_filter_user_attribute = \"uid\"\n\
             group_search_base_dns = [\"ou=groups,dc=example,dc=org\"]"
        ),
        "memberOf",
        group_dn,
    )
    .replace(r#"username = "uid""#, r#"username = "mail""#);
    let l = spawn_ldap(slapd, &text).await;
    let (s, v) = sign_in(&l.app, "alice", "alice-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        role(&l.app, "alice@example.org").await,
        (Some(OrgRole::Admin), true)
    );
    let (s, v) = sign_in(&l.app, "dave", "dave-pw").await;
    assert_eq!(s, 401, "{v}");
}

#[tokio::test]
async fn ldap_group_search_base_dns_defaults_to_search_base_dns() {
    let slapd = Slapd::start_with(Directory::POSIX);
    let port = slapd.port;
    // No group_search_base_dns: the groups are searched in every search_base_dns entry,
    // and they live in the second one.
    let server =
        "search_base_dns = [\"ou=users,dc=example,dc=org\", \"ou=groups,dc=example,dc=org\"]\n\
                  group_search_filter = \"(&(objectClass=posixGroup)(memberUid=%s))\"";
    let l = spawn_ldap(
        slapd,
        &group_search_config(port, server, "memberOf", group_dn),
    )
    .await;
    assert_mapped_by_groups(&l.app).await;
}

#[tokio::test]
async fn ldap_group_search_member_of_names_an_attribute_of_the_group() {
    let slapd = Slapd::start_with(Directory::GROUP_OF_NAMES);
    let port = slapd.port;
    // member_of = "cn": a found group is known by its cn, and the mappings say "admins".
    let server = format!(
        "{USERS_BASE}\n\
         group_search_filter = \"(&(objectClass=groupOfNames)(member=%s))\"\n\
         group_search_filter_user_attribute = \"dn\"\n\
         group_search_base_dns = [\"ou=groups,dc=example,dc=org\"]"
    );
    let l = spawn_ldap(
        slapd,
        &group_search_config(port, &server, "cn", |name| name.to_string()),
    )
    .await;
    assert_mapped_by_groups(&l.app).await;
    let (s, u) = send(l.app.admin(Method::GET, "/api/admin/ldap/bob")).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["orgRoles"][0]["groupDN"], "editors", "{u}");
}

#[tokio::test]
async fn ldap_group_search_replaces_the_users_member_of() {
    // A directory with the overlay: alice's memberOf names admins and editors, but once a
    // group_search_filter is set only the groups it finds count (Grafana's getMemberOf).
    let slapd = Slapd::start();
    let port = slapd.port;
    let server = format!(
        "{USERS_BASE}\n\
         group_search_filter = \"(&(objectClass=groupOfNames)(cn=editors)(member=%s))\"\n\
         group_search_filter_user_attribute = \"dn\"\n\
         group_search_base_dns = [\"ou=groups,dc=example,dc=org\"]"
    );
    let l = spawn_ldap(
        slapd,
        &group_search_config(port, &server, "memberOf", group_dn),
    )
    .await;
    let (s, v) = sign_in(&l.app, "alice", "alice-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        role(&l.app, "alice").await,
        (Some(OrgRole::Editor), false),
        "admins came only from memberOf"
    );
    let (s, v) = sign_in(&l.app, "carol", "carol-pw").await;
    assert_eq!(s, 401, "viewers is not searched for: {v}");
}

/// A directory identity whose login is a local user's (with a local password) does not
/// take the local account over unless `allow_local_takeover`: the sign-in fails as a wrong
/// password does, the local user keeps its password, flags and module.
#[tokio::test]
async fn a_directory_user_does_not_take_over_a_local_account() {
    let l = with_ldap().await;
    let app = &l.app;
    app.create_user("alice", "local-alice-pw").await;
    let (s, b) = sign_in(app, "alice", "alice-pw").await;
    assert_eq!(
        (s, message(&b)),
        (401, "Invalid username or password"),
        "{b}"
    );
    let u = app
        .services
        .store
        .user_by_login("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (u.auth_module.as_str(), u.is_admin),
        ("", false),
        "still local"
    );
    assert_eq!(sign_in(app, "alice", "local-alice-pw").await.0, 200);

    // The operator allows it: the directory takes the account (Grafana's behaviour).
    let f = l.file.to_string_lossy().to_string();
    let app = TestApp::spawn_with(&[
        ("auth.ldap", "enabled", "true"),
        ("auth.ldap", "config_file", f.as_str()),
        ("auth.ldap", "allow_local_takeover", "true"),
    ])
    .await;
    app.create_user("alice", "local-alice-pw").await;
    let (s, b) = sign_in(&app, "alice", "alice-pw").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["authLabels"], json!(["LDAP"]), "{b}");
    assert_eq!(role(&app, "alice").await, (Some(OrgRole::Admin), true));
}
