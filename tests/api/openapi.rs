//! The committed OpenAPI document must be what the code generates (`make openapi`).

use reqwest::Method;

use crate::helpers::{message, send, TestApp};

#[test]
fn committed_document_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/tollgate.json"
    ))
    .expect("openapi/tollgate.json exists");
    let generated = tollgate::api::spec_json();
    assert!(
        committed == generated,
        "openapi/tollgate.json is stale: run `make openapi` and commit it"
    );
}

#[test]
fn every_operation_has_an_id_and_declares_its_errors() {
    let doc: serde_json::Value = serde_json::from_str(&tollgate::api::spec_json()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            let secured = op
                .get("security")
                .is_some_and(|s| !s.as_array().unwrap().is_empty());
            if secured {
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} does not declare 401"
                );
                // 403: RBAC on admin routes, CSRF on cookie writes.
                if path.starts_with("/api/admin/") || method != "get" {
                    assert!(
                        op["responses"].get("403").is_some(),
                        "{method} {path} does not declare 403"
                    );
                }
            }
        }
    }
}

/// Every `{name}` in a path is a declared path parameter and every path parameter appears
/// in the path: generated clients refuse or skip an operation otherwise.
#[test]
fn path_templates_match_their_parameters() {
    let doc: serde_json::Value = serde_json::from_str(&tollgate::api::spec_json()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let mut in_path: Vec<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        in_path.sort();
        for (method, op) in ops.as_object().unwrap() {
            let mut declared: Vec<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            declared.sort();
            assert_eq!(in_path, declared, "{method} {path}");
        }
    }
}

/// Path ids are typed as Grafana types them, so a generated client can pass the integer id
/// a create returned: every `id`, `orgId`, `userId`, `*_id` path parameter is an int64.
#[test]
fn every_path_id_is_an_int64() {
    let doc: serde_json::Value = serde_json::from_str(&tollgate::api::spec_json()).unwrap();
    let mut seen = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in params.iter().filter(|p| p["in"] == "path") {
                let name = p["name"].as_str().unwrap_or_default();
                let is_id = name == "id" || name.ends_with("Id") || name.ends_with("_id");
                if is_id && name != "plugin_id" {
                    seen += 1;
                    assert_eq!(p["schema"]["type"], "integer", "{method} {path} {name}");
                    assert_eq!(p["schema"]["format"], "int64", "{method} {path} {name}");
                }
            }
        }
    }
    assert!(seen > 20, "only {seen} path ids");
}

/// The document says integer, the wire still takes a user's uid where a user id goes (as
/// Grafana's newest `userUIDResolver`), and junk keeps Grafana's own answers.
#[tokio::test]
async fn a_uid_is_still_accepted_where_the_document_says_integer() {
    let app = TestApp::spawn().await;
    let id = app.create_user("ada", "ada-password").await;
    let (status, user) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(status, 200, "{user}");
    let uid = user["uid"].as_str().unwrap().to_string();
    let (status, by_uid) = send(app.admin(Method::GET, &format!("/api/users/{uid}"))).await;
    assert_eq!((status, &by_uid["id"]), (200, &user["id"]), "{by_uid}");
    let (status, body) = send(app.admin(Method::GET, &format!("/api/users/{uid}/orgs"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(app.admin(Method::GET, "/api/users/no-such-uid")).await;
    assert_eq!((status, message(&body)), (404, "User not found"));
    let (status, body) = send(app.admin(Method::POST, &format!("/api/users/{id}/using/x1"))).await;
    assert_eq!((status, message(&body)), (400, "orgId is invalid"));
    let (status, body) = send(app.admin(Method::POST, "/api/user/using/x1")).await;
    assert_eq!((status, message(&body)), (400, "id is invalid"));
    let (status, body) = send(app.admin(Method::DELETE, "/api/orgs/1/users/x1")).await;
    assert_eq!((status, message(&body)), (400, "userId is invalid"));
    let (status, body) = send(app.admin(Method::DELETE, &format!("/api/admin/users/{uid}"))).await;
    assert_eq!((status, message(&body)), (200, "User deleted"));
}

/// A 405 lists exactly the methods the document declares for the path the router picked:
/// `/api/users/lookup` is its own resource, not an `/api/users/{id}`.
#[tokio::test]
async fn a_405_allows_the_documented_methods_of_its_path() {
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = serde_json::from_str(&tollgate::api::spec_json()).unwrap();
    let cases = [
        ("/api/users/lookup", "/api/users/lookup"),
        ("/api/users/search", "/api/users/search"),
        ("/api/users/{id}", "/api/users/7"),
        ("/api/serviceaccounts/search", "/api/serviceaccounts/search"),
        ("/api/admin/ldap/status", "/api/admin/ldap/status"),
        ("/api/orgs/{orgId}", "/api/orgs/1"),
    ];
    for (template, path) in cases {
        let mut documented: Vec<String> = doc["paths"][template]
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        documented.sort();
        let resp = app.admin(Method::PATCH, path).send().await.unwrap();
        let status = resp.status().as_u16();
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if documented.iter().any(|m| m == "PATCH") {
            continue;
        }
        assert_eq!(status, 405, "PATCH {path}");
        assert_eq!(allow, documented.join(", "), "PATCH {path}");
    }
}

/// Statuses the framework answers on its own are declared where they can happen: a body
/// can be malformed (400) or too large (413); a typed query parameter can fail to parse
/// (400).
#[test]
fn bodies_and_typed_queries_declare_their_framework_errors() {
    let doc: serde_json::Value = serde_json::from_str(&tollgate::api::spec_json()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let declares = |s: &str| op["responses"].get(s).is_some();
            if op.get("requestBody").is_some() {
                assert!(declares("400"), "{method} {path} does not declare 400");
                assert!(declares("413"), "{method} {path} does not declare 413");
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let typed_query = params
                .iter()
                .any(|p| p["in"] == "query" && p["schema"]["type"] != "string");
            if typed_query {
                assert!(declares("400"), "{method} {path} does not declare 400");
            }
        }
    }
}

/// What the document calls schema-violating is refused: ids past int64 are not numbers,
/// as Go's `ParseInt` reads them (schemathesis found each of these answering 200).
#[tokio::test]
async fn ids_past_int64_are_not_numbers() {
    let app = TestApp::spawn().await;
    let past = "9223372036854775808";
    let (status, body) = send(app.admin(Method::GET, &format!("/api/users/{past}/orgs"))).await;
    assert_eq!((status, message(&body)), (404, "User not found"));
    let (status, _) = send(app.admin(Method::GET, &format!("/api/orgs/{past}/users"))).await;
    assert_eq!(status, 403);
    let (status, body) =
        send(app.admin(Method::DELETE, &format!("/api/orgs/1/users/{past}"))).await;
    assert_eq!((status, message(&body)), (400, "userId is invalid"));
}

/// An optional property reads `null` as absent (as Go's `encoding/json` does for Grafana),
/// and the document says so: schemathesis found `"version": null` accepted where the
/// document said integer.
#[tokio::test]
async fn optional_properties_are_nullable_and_null_is_absent() {
    let doc: serde_json::Value = serde_json::from_str(&tollgate::api::spec_json()).unwrap();
    let form = &doc["components"]["schemas"]["AdminCreateUserForm"];
    assert_eq!(form["properties"]["name"]["nullable"], true, "{form}");
    assert!(
        form["properties"]["password"].get("nullable").is_none(),
        "{form}"
    );
    let app = TestApp::spawn().await;
    let (status, body) = send(app.admin(Method::POST, "/api/admin/users").json(
        &serde_json::json!({"login": "nul", "password": "nul-password", "name": null, "orgId": null}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(app.req(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body, doc);
}
