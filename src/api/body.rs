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
use crate::api::error::{error_response, into_poem, ErrorBody};
use crate::error::AppError;

pub const BAD_REQUEST_DATA: &str = "bad request data";
const FALLBACK_LIMIT: usize = 1 << 20;

pub struct GfJson<T>(pub T);

fn bad_request() -> poem::Error {
    into_poem(AppError::bad_request(BAD_REQUEST_DATA))
}

/// A property name and its JSON type (`string`, `boolean`, `integer`, ...) when known.
type PropertyNames = Arc<Vec<(&'static str, Option<&'static str>)>>;

fn property(name: &'static str, schema: &MetaSchemaRef) -> (&'static str, Option<&'static str>) {
    match schema {
        MetaSchemaRef::Inline(s) => (name, Some(s.ty)),
        MetaSchemaRef::Reference(_) => (name, None),
    }
}

/// The top-level properties of `T`'s schema, cached per type.
fn property_names<T: Type + 'static>() -> PropertyNames {
    static CACHE: OnceLock<RwLock<HashMap<TypeId, PropertyNames>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(names) = cache.read().get(&id) {
        return names.clone();
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let names: Vec<(&'static str, Option<&'static str>)> = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => registry
            .schemas
            .get(&name)
            .map(|s| s.properties.iter().map(|(n, p)| property(n, p)).collect())
            .unwrap_or_default(),
        MetaSchemaRef::Inline(schema) => schema
            .properties
            .iter()
            .map(|(n, p)| property(n, p))
            .collect(),
    };
    let names = Arc::new(names);
    cache.write().insert(id, names.clone());
    names
}

/// Renames keys that match a property case-insensitively to the property's spelling.
fn normalize_keys(value: &mut Value, props: &[(&'static str, Option<&'static str>)]) {
    let Value::Object(map) = value else { return };
    let renames: Vec<(String, &'static str)> = map
        .keys()
        .filter(|k| !props.iter().any(|(n, _)| *n == k.as_str()))
        .filter_map(|k| {
            props
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(n, _)| (k.clone(), *n))
        })
        .collect();
    for (from, to) in renames {
        if let Some(v) = map.remove(&from) {
            map.entry(to.to_string()).or_insert(v);
        }
    }
}

/// Go's decoder refuses a number where a string is declared (and so on); poem-openapi
/// would coerce it. Checks each known top-level property's JSON type (`null` is absent).
fn types_match(value: &Value, props: &[(&'static str, Option<&'static str>)]) -> bool {
    let Value::Object(map) = value else {
        return true;
    };
    props.iter().all(|(name, ty)| match (map.get(*name), ty) {
        (None | Some(Value::Null), _) | (_, None) => true,
        (Some(v), Some("string")) => v.is_string(),
        (Some(v), Some("boolean")) => v.is_boolean(),
        (Some(v), Some("integer")) => v.is_i64() || v.is_u64(),
        (Some(v), Some("number")) => v.is_number(),
        (Some(v), Some("array")) => v.is_array(),
        (Some(v), Some("object")) => v.is_object(),
        _ => true,
    })
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
        let deadline = services(req)
            .ok()
            .map(|s| s.settings.read_timeout)
            .filter(|d| !d.is_zero());
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
        // Boxed: poem's read future is about 4 KB, and held in place it would enlarge
        // every handler future with a body by as much.
        let read = Box::pin(body.take()?.into_bytes_limit(limit));
        let read = match deadline {
            // A client that trickles its body holds a connection and a task: cut it off.
            Some(d) => tokio::time::timeout(d, read).await.map_err(|_| {
                poem::Error::from_response(error_response(
                    408,
                    &ErrorBody::message("request body not received in time"),
                ))
            })?,
            None => read.await,
        };
        let bytes = read.map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => too_large(),
            _ => bad_request(),
        })?;
        let mut value: Value = if bytes.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes).map_err(|_| bad_request())?
        };
        let props = property_names::<T>();
        normalize_keys(&mut value, &props);
        if !types_match(&value, &props) {
            return Err(bad_request());
        }
        note_fields(&value, &props);
        T::parse_from_json(Some(value))
            .map(GfJson)
            .map_err(|_| bad_request())
    }
}

/// The audit event names the fields the body set (the schema's names; never a value).
fn note_fields(value: &Value, props: &[(&'static str, Option<&'static str>)]) {
    if let Value::Object(map) = value {
        let mut fields: Vec<String> = props
            .iter()
            .filter(|(name, _)| map.contains_key(*name))
            .map(|(name, _)| (*name).to_string())
            .collect();
        fields.sort_unstable();
        crate::domain::audit::update(|e| e.fields = fields);
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
        let mut v =
            serde_json::json!({"OrgId": 2, "IsGrafanaAdmin": true, "name": "x", "NAME": "y"});
        let props = [
            ("orgId", Some("integer")),
            ("isGrafanaAdmin", Some("boolean")),
            ("name", Some("string")),
        ];
        normalize_keys(&mut v, &props);
        assert_eq!(v["orgId"], 2);
        assert_eq!(v["isGrafanaAdmin"], true);
        assert_eq!(v["name"], "x");
        assert!(types_match(
            &serde_json::json!({"name": "x", "orgId": null}),
            &props
        ));
        assert!(!types_match(&serde_json::json!({"name": 5}), &props));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("text/plain"));
    }
}
