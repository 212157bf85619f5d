//! The committed OpenAPI document must be what the code generates (`make openapi`).

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
