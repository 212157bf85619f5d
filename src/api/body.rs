//! `GfJson<T>`: a JSON request body read the way Grafana's `web.Bind` reads it. The
//! Content-Type must be `application/json` (else 400 "bad request data"), the body is
//! capped at `[server] max_request_body_bytes` (413), and object keys match the schema's
//! property names case-insensitively (`OrgId` = `orgId`), as Go's `encoding/json` does.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;

use crate::api::auth::services;
use crate::api::error::into_poem;
use crate::error::AppError;

pub const BAD_REQUEST_DATA: &str = "bad request data";
const FALLBACK_LIMIT: usize = 1 << 20;

pub struct GfJson<T>(pub T);

fn bad_request() -> poem::Error {
    into_poem(AppError::bad_request(BAD_REQUEST_DATA))
}

type PropertyNames = Arc<Vec<&'static str>>;

/// The top-level property names of `T`'s schema, cached per type.
fn property_names<T: Type + 'static>() -> PropertyNames {
    static CACHE: OnceLock<RwLock<HashMap<TypeId, PropertyNames>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(names) = cache.read().get(&id) {
        return names.clone();
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let names: Vec<&'static str> = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => registry
            .schemas
            .get(&name)
            .map(|s| s.properties.iter().map(|(n, _)| *n).collect())
            .unwrap_or_default(),
        MetaSchemaRef::Inline(schema) => schema.properties.iter().map(|(n, _)| *n).collect(),
    };
    let names = Arc::new(names);
    cache.write().insert(id, names.clone());
    names
}

/// Renames keys that match a property case-insensitively to the property's spelling.
fn normalize_keys(value: &mut Value, names: &[&'static str]) {
    let Value::Object(map) = value else { return };
    let renames: Vec<(String, &'static str)> = map
        .keys()
        .filter(|k| !names.contains(&k.as_str()))
        .filter_map(|k| {
            names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(k))
                .map(|n| (k.clone(), *n))
        })
        .collect();
    for (from, to) in renames {
        if let Some(v) = map.remove(&from) {
            map.entry(to.to_string()).or_insert(v);
        }
    }
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

impl<T: Type> Payload for GfJson<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + 'static> ParsePayload for GfJson<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        if !req.content_type().is_some_and(is_json) {
            return Err(bad_request());
        }
        let limit = services(req)
            .map(|s| s.settings.max_request_body_bytes)
            .unwrap_or(FALLBACK_LIMIT);
        let too_large = || into_poem(AppError::PayloadTooLarge);
        if req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > limit)
        {
            return Err(too_large());
        }
        let bytes = body
            .take()?
            .into_bytes_limit(limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                _ => bad_request(),
            })?;
        let mut value: Value = if bytes.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes).map_err(|_| bad_request())?
        };
        normalize_keys(&mut value, &property_names::<T>());
        T::parse_from_json(Some(value))
            .map(GfJson)
            .map_err(|_| bad_request())
    }
}

impl<'a, T: ParseFromJSON + 'static> ApiExtractor<'a> for GfJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        <Self as ParsePayload>::from_request(req, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_case_insensitively_without_clobbering() {
        let mut v = serde_json::json!({"OrgId": 2, "IsGrafanaAdmin": true, "name": "x", "NAME": "y"});
        normalize_keys(&mut v, &["orgId", "isGrafanaAdmin", "name"]);
        assert_eq!(v["orgId"], 2);
        assert_eq!(v["isGrafanaAdmin"], true);
        assert_eq!(v["name"], "x");
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("text/plain"));
    }
}
