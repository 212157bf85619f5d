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
