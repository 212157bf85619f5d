//! Narrow scopes through real HTTP: a custom role whose permission names one object
//! (`global.users:id:<id>`, `datasources:uid:<uid>`) lets its holder act on that object and
//! answers every other one with Grafana's 403 naming the missing action.

use reqwest::Method;
use serde_json::json;

use crate::datasources::{add, denied, ds_body, grant};
use crate::helpers::*;

/// `users.password:update` on `global.users:id:<five>`: the holder sets user five's password
/// (by id and by uid), not user six's, and not their own through the admin route.
#[tokio::test]
async fn a_password_permission_on_one_user_covers_that_user_only() {
    let app = TestApp::spawn().await;
    let five = app.create_user("five", "five-pw-1").await;
    let six = app.create_user("six", "six-pw-1").await;
    let holder = app.create_user("holder", "holder-pw-1").await;
    grant(
        &app,
        holder,
        "one-user-password",
        json!([{"action": "users.password:update", "scope": format!("global.users:id:{five}")}]),
    )
    .await;
    let set_password = |id: &str, pw: &str| {
        app.as_user(
            Method::PUT,
            &format!("/api/admin/users/{id}/password"),
            "holder",
            "holder-pw-1",
        )
        .json(&json!({"password": pw}))
    };
    let signs_in = |login: &'static str, pw: &'static str| {
        let req = app.as_user(Method::GET, "/api/user", login, pw);
        async move { send(req).await.0 == 200 }
    };

    let (s, v) = send(set_password(&five.to_string(), "five-pw-2")).await;
    assert_eq!((s, message(&v)), (200, "User password updated"));
    assert!(
        signs_in("five", "five-pw-2").await,
        "the new password works"
    );
    assert!(!signs_in("five", "five-pw-1").await, "the old one does not");
    // The scope names the user, whichever way the path does.
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{five}"))).await;
    let five_uid = u["uid"].as_str().unwrap().to_string();
    let (s, v) = send(set_password(&five_uid, "five-pw-3")).await;
    assert_eq!((s, message(&v)), (200, "User password updated"));
    assert!(signs_in("five", "five-pw-3").await);

    for other in [six, holder] {
        let (s, v) = send(set_password(&other.to_string(), "stolen-pw-1")).await;
        assert!(
            s == 403 && denied(&v, "users.password:update"),
            "user {other}: {s} {v}"
        );
    }
    assert!(
        signs_in("six", "six-pw-1").await,
        "six's password is unchanged"
    );
    assert!(!signs_in("six", "stolen-pw-1").await);
    assert!(signs_in("holder", "holder-pw-1").await);
    // A user who does not exist is not found (the permission is held, for another user).
    let (s, v) = send(set_password("999", "ghost-pw-1")).await;
    assert_eq!((s, message(&v)), (404, "User not found"));
}

/// `datasources:read` and `datasources:write` on one datasource's uid: the holder reads it
/// by id, uid and name, lists only it, and updates it; the other datasource of the same org
/// answers 403 on every route, and stays unchanged.
#[tokio::test]
async fn datasource_permissions_on_one_uid_cover_that_datasource_only() {
    let app = TestApp::spawn().await;
    let (mine_id, mine) = add(&app, "Mine").await;
    let (theirs_id, theirs) = add(&app, "Theirs").await;
    // An Editor would read every datasource: a Viewer holds no datasources:read of its own.
    let holder = app.create_user("holder", "holder-pw-1").await;
    let as_holder = |method: Method, path: &str| app.as_user(method, path, "holder", "holder-pw-1");
    let (s, v) = send(as_holder(
        Method::GET,
        &format!("/api/datasources/uid/{mine}"),
    ))
    .await;
    assert!(
        s == 403 && denied(&v, "datasources:read"),
        "before: {s} {v}"
    );
    grant(
        &app,
        holder,
        "one-datasource",
        json!([
            {"action": "datasources:read", "scope": format!("datasources:uid:{mine}")},
            {"action": "datasources:write", "scope": format!("datasources:uid:{mine}")}
        ]),
    )
    .await;

    for (id, uid, name, allowed) in [
        (mine_id, &mine, "Mine", true),
        (theirs_id, &theirs, "Theirs", false),
    ] {
        for path in [
            format!("/api/datasources/{id}"),
            format!("/api/datasources/uid/{uid}"),
            format!("/api/datasources/name/{name}"),
        ] {
            let (s, v) = send(as_holder(Method::GET, &path)).await;
            if allowed {
                assert_eq!(
                    (s, v["uid"].as_str()),
                    (200, Some(uid.as_str())),
                    "{path}: {v}"
                );
            } else {
                assert!(
                    s == 403 && denied(&v, "datasources:read"),
                    "{path}: {s} {v}"
                );
            }
        }
    }
    let (s, list) = send(as_holder(Method::GET, "/api/datasources")).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!((s, names), (200, vec!["Mine"]), "{list}");

    let mut body = ds_body("Mine", "pw");
    body["url"] = json!("http://mine:9090");
    let (s, v) =
        send(as_holder(Method::PUT, &format!("/api/datasources/uid/{mine}")).json(&body)).await;
    assert_eq!((s, message(&v)), (200, "Datasource updated"), "{v}");
    let (s, v) =
        send(as_holder(Method::PUT, &format!("/api/datasources/{mine_id}")).json(&body)).await;
    assert_eq!((s, message(&v)), (200, "Datasource updated"), "by id: {v}");
    let mut body = ds_body("Theirs", "pw");
    body["url"] = json!("http://stolen:9090");
    for path in [
        format!("/api/datasources/uid/{theirs}"),
        format!("/api/datasources/{theirs_id}"),
    ] {
        let (s, v) = send(as_holder(Method::PUT, &path).json(&body)).await;
        assert!(
            s == 403 && denied(&v, "datasources:write"),
            "{path}: {s} {v}"
        );
    }
    // Not a delete permission, not a create permission.
    let (s, v) = send(as_holder(
        Method::DELETE,
        &format!("/api/datasources/uid/{mine}"),
    ))
    .await;
    assert!(s == 403 && denied(&v, "datasources:delete"), "{s} {v}");
    let (s, v) =
        send(as_holder(Method::POST, "/api/datasources").json(&ds_body("New", "pw"))).await;
    assert!(s == 403 && denied(&v, "datasources:create"), "{s} {v}");

    let (_, v) = send(app.admin(Method::GET, &format!("/api/datasources/uid/{mine}"))).await;
    assert_eq!(v["url"], "http://mine:9090");
    let (_, v) = send(app.admin(Method::GET, &format!("/api/datasources/uid/{theirs}"))).await;
    assert_eq!(v["url"], "http://prom:9090", "unchanged");
}
