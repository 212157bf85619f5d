//! Service accounts and `glsa_` tokens: lifecycle, format and checksum, expiry, revocation,
//! and tokens that do exactly the admin work their account's roles grant.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{message, send, TestApp};

async fn create_account(app: &TestApp, name: &str) -> u64 {
    let (s, v) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": name, "role": "Viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_u64().unwrap()
}

async fn token(app: &TestApp, sa: u64, name: &str, ttl: i64) -> String {
    let (s, v) = send(
        app.admin(Method::POST, &format!("/api/serviceaccounts/{sa}/tokens"))
            .json(&json!({"name": name, "secondsToLive": ttl})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["key"].as_str().unwrap().to_string()
}

async fn as_token(app: &TestApp, method: Method, path: &str, key: &str) -> (u16, Value) {
    send(app.req(method, path).bearer_auth(key)).await
}

#[tokio::test]
async fn lifecycle_and_token_format() {
    let app = TestApp::spawn().await;
    let sa = create_account(&app, "CI Bot").await;
    let (_, got) = send(app.admin(Method::GET, &format!("/api/serviceaccounts/{sa}"))).await;
    assert_eq!(
        (got["login"].as_str(), got["role"].as_str()),
        (Some("sa-ci-bot"), Some("Viewer"))
    );
    // grafana-client posts with a trailing slash.
    let (s, _) = send(
        app.admin(Method::POST, "/api/serviceaccounts/")
            .json(&json!({"name": "other"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "CI Bot"})),
    )
    .await;
    assert_eq!(s, 409);
    let (_, page) = send(app.admin(Method::GET, "/api/serviceaccounts/search?query=ci")).await;
    assert_eq!(page["totalCount"], 1, "{page}");
    assert_eq!(page["serviceAccounts"][0]["name"], "CI Bot");
    // Not users: the user search does not count them.
    let (_, stats) = send(app.admin(Method::GET, "/api/admin/stats")).await;
    assert_eq!(stats["users"], 1);
    let (s, v) = send(
        app.admin(Method::PATCH, &format!("/api/serviceaccounts/{sa}"))
            .json(&json!({"role": "Editor"})),
    )
    .await;
    assert_eq!(
        (s, v["serviceaccount"]["role"].as_str()),
        (200, Some("Editor"))
    );

    let key = token(&app, sa, "deploy", 0).await;
    let (body, sum) = key.rsplit_once('_').unwrap();
    assert!(body.starts_with("glsa_") && body.len() == 5 + 32, "{key}");
    // Grafana's checksum (pkg/components/satokengen), computed here independently: the
    // CRC32-IEEE of `glsa_<secret>`, its four bytes little-endian, in hex.
    assert_eq!(
        crc32_ieee(b"123456789"),
        0xcbf4_3926,
        "the standard check value"
    );
    let le: String = crc32_ieee(body.as_bytes())
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sum, le, "Grafana's little-endian checksum");
    // Tokens issued before this release carry the big-endian form; they keep working
    // (tests/api/upgrade.rs signs in with one from the fixture).
    let old = format!("{body}_{:08x}", crc32_ieee(body.as_bytes()));
    assert_ne!(old, key);
    let (_, tokens) =
        send(app.admin(Method::GET, &format!("/api/serviceaccounts/{sa}/tokens"))).await;
    assert_eq!(tokens[0]["name"], "deploy");
    assert_eq!(tokens[0]["hasExpired"], false);
    // Works, and records its use.
    let (s, _) = as_token(&app, Method::GET, "/api/search", &key).await;
    assert_eq!(s, 200);
    let (_, tokens) =
        send(app.admin(Method::GET, &format!("/api/serviceaccounts/{sa}/tokens"))).await;
    assert!(tokens[0]["lastUsedAt"].is_string(), "{tokens}");
    // A wrong checksum is refused before any lookup.
    let forged = format!(
        "{body}_{}",
        if sum == "00000000" {
            "11111111"
        } else {
            "00000000"
        }
    );
    assert_eq!(
        as_token(&app, Method::GET, "/api/search", &forged).await.0,
        401
    );
    // Revocation: the next request is 401.
    let id = tokens[0]["id"].as_i64().unwrap();
    let (s, v) = send(app.admin(
        Method::DELETE,
        &format!("/api/serviceaccounts/{sa}/tokens/{id}"),
    ))
    .await;
    assert_eq!((s, message(&v)), (200, "Service account token deleted"));
    assert_eq!(
        as_token(&app, Method::GET, "/api/search", &key).await.0,
        401
    );
    // Expiry.
    let short = token(&app, sa, "short", 1).await;
    assert_eq!(
        as_token(&app, Method::GET, "/api/search", &short).await.0,
        200
    );
    app.clock.advance(Duration::from_millis(2100));
    let (s, v) = as_token(&app, Method::GET, "/api/search", &short).await;
    assert_eq!((s, message(&v)), (401, "Expired API key"));
    // Deleting the account kills its tokens.
    let last = token(&app, sa, "last", 0).await;
    let (s, _) = send(app.admin(Method::DELETE, &format!("/api/serviceaccounts/{sa}"))).await;
    assert_eq!(s, 200);
    assert_eq!(
        as_token(&app, Method::GET, "/api/search", &last).await.0,
        401
    );
    assert_eq!(
        send(app.admin(Method::GET, &format!("/api/serviceaccounts/{sa}")))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn tokens_do_exactly_the_admin_work_granted() {
    let app = TestApp::spawn().await;
    let sa = create_account(&app, "user-manager").await;
    let key = token(&app, sa, "t", 0).await;
    let new_user =
        json!({"login": "made-by-bot", "email": "bot@example.org", "password": "bot-made-pw"});
    // Nothing granted: 403 under /api/admin/, naming the permission.
    let (s, v) = send(
        app.req(Method::POST, "/api/admin/users")
            .bearer_auth(&key)
            .json(&new_user),
    )
    .await;
    assert_eq!(s, 403);
    assert!(message(&v).contains("users:create"), "{v}");
    assert!(v["accessErrorId"].is_string());
    assert_eq!(
        as_token(&app, Method::GET, "/api/admin/settings", &key)
            .await
            .0,
        403
    );
    // Granted users:create through a role: it creates users, and nothing else.
    send(app.admin(Method::POST, "/api/access-control/roles").json(
        &json!({"uid": "user-creator", "name": "custom:user-creator", "global": true,
        "permissions": [{"action": "users:create"}]}),
    ))
    .await;
    let (s, _) = send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{sa}/roles"),
        )
        .json(&json!({"roleUid": "user-creator"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = send(
        app.req(Method::POST, "/api/admin/users")
            .bearer_auth(&key)
            .json(&new_user),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        as_token(
            &app,
            Method::DELETE,
            &format!("/api/admin/users/{}", v["id"]),
            &key
        )
        .await
        .0,
        403
    );
    // A property-level settings scope: only that section.
    send(app.admin(Method::POST, "/api/access-control/roles").json(
        &json!({"uid": "saml-reader", "name": "custom:saml-reader", "global": true,
        "permissions": [{"action": "settings:read", "scope": "settings:auth.saml:*"}]}),
    ))
    .await;
    send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{sa}/roles"),
        )
        .json(&json!({"roleUid": "saml-reader"})),
    )
    .await;
    let (s, v) = as_token(&app, Method::GET, "/api/admin/settings", &key).await;
    assert_eq!(s, 200);
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["auth.saml"]
    );
    // Never a Grafana Admin: routes reserved for Grafana Admins stay closed.
    let (s, v) = send(
        app.req(Method::POST, "/api/admin/pause-all-alerts")
            .bearer_auth(&key)
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!((s, message(&v)), (403, "Permission denied"));
    // Basic `api_key:<token>` works the same.
    let (s, _) = send(
        app.req(Method::GET, "/api/admin/settings")
            .basic_auth("api_key", Some(&key)),
    )
    .await;
    assert_eq!(s, 200);
}

/// CRC32-IEEE, bit by bit (independent of the server's table-driven one).
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
