//! Every row of the seed's action/scope tables (../shared/seeds/002_*.txt, Grafana's admin
//! API doc): a user holding exactly that permission through a custom role is allowed; the
//! same call by a user without it is 403 naming the permission.

use reqwest::Method;
use serde_json::{json, Value};
use tollgate::domain::Action;

use crate::helpers::{message, send, TestApp};

struct Row {
    action: Action,
    scope: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn row(
    action: Action,
    scope: &'static str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Row {
    Row {
        action,
        scope,
        method,
        path: path.to_string(),
        body,
    }
}

#[tokio::test]
async fn every_seed_row_allows_its_holder_and_denies_others() {
    let app = TestApp::spawn().await;
    let target = app.create_user("target", "target-pw-1").await;
    app.create_user("outsider", "outsider-pw").await;
    // A real session to revoke, of a user no other row touches.
    let owner = app.create_user("session-owner", "owner-pw-1").await;
    let owner_session = app.login("session-owner", "owner-pw-1").await;
    let (s, tokens) = send(app.admin(
        Method::GET,
        &format!("/api/admin/users/{owner}/auth-tokens"),
    ))
    .await;
    assert_eq!(s, 200, "{tokens}");
    let owner_token = tokens[0]["id"].as_i64().unwrap();
    let saml_update = json!({"updates": {"auth.saml": {"enabled": "true"}}});
    let mut rows = Vec::new();
    for scope in [
        "settings:*",
        "settings:auth.saml:*",
        "settings:auth.saml:enabled",
    ] {
        rows.push(row(
            Action::SettingsRead,
            scope,
            Method::GET,
            "/api/admin/settings",
            None,
        ));
        rows.push(row(
            Action::SettingsWrite,
            scope,
            Method::PUT,
            "/api/admin/settings",
            Some(saml_update.clone()),
        ));
    }
    rows.extend([
        row(
            Action::ServerStatsRead,
            "",
            Method::GET,
            "/api/admin/stats",
            None,
        ),
        row(
            Action::UsersCreate,
            "",
            Method::POST,
            "/api/admin/users",
            Some(json!({"login": "LOGIN", "password": "created-pw-1"})),
        ),
        row(
            Action::UsersPasswordUpdate,
            "global.users:*",
            Method::PUT,
            &format!("/api/admin/users/{target}/password"),
            Some(json!({"password": "changed-pw-1"})),
        ),
        row(
            Action::UsersPermissionsUpdate,
            "global.users:*",
            Method::PUT,
            &format!("/api/admin/users/{target}/permissions"),
            Some(json!({"isGrafanaAdmin": false})),
        ),
        row(
            Action::UsersAuthTokenList,
            "global.users:*",
            Method::GET,
            &format!("/api/admin/users/{target}/auth-tokens"),
            None,
        ),
        row(
            Action::UsersAuthTokenUpdate,
            "global.users:*",
            Method::POST,
            &format!("/api/admin/users/{owner}/revoke-auth-token"),
            Some(json!({"authTokenId": owner_token})),
        ),
        row(
            Action::UsersLogout,
            "global.users:*",
            Method::POST,
            &format!("/api/admin/users/{target}/logout"),
            None,
        ),
    ]);
    for kind in [
        "accesscontrol",
        "dashboards",
        "datasources",
        "plugins",
        "notifications",
    ] {
        let route = if kind == "accesscontrol" {
            "access-control"
        } else {
            kind
        };
        rows.push(row(
            Action::ProvisioningReload,
            match kind {
                "accesscontrol" => "provisioners:accesscontrol",
                "dashboards" => "provisioners:dashboards",
                "datasources" => "provisioners:datasources",
                "plugins" => "provisioners:plugins",
                _ => "provisioners:notifications",
            },
            Method::POST,
            &format!("/api/admin/provisioning/{route}/reload"),
            None,
        ));
    }
    // users:delete last: it removes a user of its own.
    let victim = app.create_user("victim", "victim-pw-1").await;
    rows.push(row(
        Action::UsersDelete,
        "global.users:*",
        Method::DELETE,
        &format!("/api/admin/users/{victim}"),
        None,
    ));

    for (n, r) in rows.into_iter().enumerate() {
        let login = format!("holder{n}");
        let holder = app.create_user(&login, "holder-pw-1").await;
        let uid = format!("seed-row-{n}");
        let (s, v) = send(
            app.admin(Method::POST, "/api/access-control/roles")
                .json(&json!({
            "uid": uid, "name": format!("custom:seed:{n}"), "global": true,
            "permissions": [{"action": r.action.as_str(), "scope": r.scope}]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, _) = send(
            app.admin(
                Method::POST,
                &format!("/api/access-control/users/{holder}/roles"),
            )
            .json(&json!({"roleUid": uid})),
        )
        .await;
        assert_eq!(s, 200);
        let body = r.body.clone().map(|b| {
            serde_json::from_str::<Value>(&b.to_string().replace("LOGIN", &format!("made{n}")))
                .unwrap()
        });
        let call = |login: &str, pw: &str| {
            let mut req = app.as_user(r.method.clone(), &r.path, login, pw);
            if let Some(b) = &body {
                req = req.json(b);
            }
            req
        };
        // Without it: 403, naming the action.
        let (s, v) = send(call("outsider", "outsider-pw")).await;
        assert_eq!(s, 403, "{} {} without {}: {v}", r.method, r.path, r.action);
        assert!(
            message(&v).contains(r.action.as_str()) || message(&v) == "Permission denied",
            "{v}"
        );
        // With it: allowed.
        let (s, v) = send(call(&login, "holder-pw-1")).await;
        assert!(
            (200..300).contains(&s),
            "{} {} with {} on {:?}: {s} {v}",
            r.method,
            r.path,
            r.action,
            r.scope
        );
        if r.action == Action::UsersAuthTokenUpdate {
            assert_eq!(message(&v), "User auth token revoked");
            let (s, v) = send(app.with_session(Method::GET, "/api/user", &owner_session)).await;
            assert_eq!(
                (s, message(&v)),
                (401, "Token revoked"),
                "the revoked session"
            );
        }
        if r.scope == "settings:auth.saml:enabled" && r.action == Action::SettingsRead {
            let keys: Vec<&str> = v["auth.saml"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                (v.as_object().unwrap().len(), keys),
                (1, vec!["enabled"]),
                "exactly one key: {v}"
            );
        }
    }
}
