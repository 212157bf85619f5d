//! Small helpers shared by the wire types: Go-style RFC 3339 times and Grafana's age strings.

pub use crate::domain::time::rfc3339;

/// A count or id for a JSON integer field (saturating: the wire types are signed).
pub fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Grafana's `GetAgeString` (the compact one its org-user lists use): "< 1m", "5m", "3h",
/// "2d", "4M", "10y".
pub fn age(ts: i64, now: i64) -> String {
    let secs = (now - ts).max(0);
    let minutes = secs / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let months = days / 30;
    let years = days / 365;
    let (n, unit) = if years > 0 {
        (years, "y")
    } else if months > 0 {
        (months, "M")
    } else if days > 0 {
        (days, "d")
    } else if hours > 0 {
        (hours, "h")
    } else if minutes > 0 {
        (minutes, "m")
    } else {
        return "< 1m".to_string();
    };
    format!("{n}{unit}")
}

/// A numeric id in a path (`:id`, `:orgId`, `:userId`), documented as Grafana types it
/// (`integer`, `int64`) so generated clients pass the ids the API returns. The raw segment is
/// kept and parsed by the service, because the wire accepts more than the document says:
/// a user's uid where a user id goes, and junk answered with Grafana's own status and
/// message ("orgId is invalid", "id is invalid", 404 "user not found") instead of a
/// framework 400. Derefs to the raw `&str`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireId(pub String);

impl std::ops::Deref for WireId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl poem_openapi::types::Type for WireId {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "integer_int64".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        <i64 as poem_openapi::types::Type>::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl poem_openapi::types::ParseFromParameter for WireId {
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        Ok(Self(value.to_string()))
    }
}

/// A JSON response serialized straight from the value with serde, for hot endpoints:
/// poem-openapi's `Json` first builds a `serde_json::Value` tree, which costs an allocation
/// per key. Written by [`super::json`] (serde_json's bytes, strings copied in runs). The document is the same as `Json<T>`'s; types used here derive both `Object`
/// and `Serialize` with the same renaming, and a test checks both produce the same JSON.
#[derive(Debug)]
pub struct FastJson<T>(pub T);

impl<T: poem_openapi::types::Type> poem_openapi::payload::Payload for FastJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }
}

/// The JSON content type, made once (`from_static` checks its text byte by byte when it
/// runs).
const JSON_CONTENT_TYPE: poem::http::HeaderValue =
    poem::http::HeaderValue::from_static("application/json; charset=utf-8");

impl<T: serde::Serialize + Send> poem::IntoResponse for FastJson<T> {
    fn into_response(self) -> poem::Response {
        // Room for a typical answer up front (serde_json's own `to_vec` starts at 128 bytes
        // and grows, copying, to fit a user's profile).
        let mut body = Vec::with_capacity(512);
        match super::json::write(&mut body, &self.0) {
            Ok(()) => poem::Response::builder()
                .header(poem::http::header::CONTENT_TYPE, JSON_CONTENT_TYPE)
                .body(body),
            Err(e) => {
                tracing::error!(error = %e, "response serialization failed");
                poem::Response::builder()
                    .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                    .body(())
            }
        }
    }
}

impl<T: poem_openapi::types::Type + serde::Serialize + Send> poem_openapi::ApiResponse
    for FastJson<T>
{
    fn meta() -> poem_openapi::registry::MetaResponses {
        ok_meta::<Self>()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }
}

/// The document's one response of a JSON payload answered with 200.
fn ok_meta<P: poem_openapi::payload::Payload>() -> poem_openapi::registry::MetaResponses {
    poem_openapi::registry::MetaResponses {
        responses: vec![poem_openapi::registry::MetaResponse {
            description: "",
            status: Some(200),
            status_range: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: P::CONTENT_TYPE,
                schema: P::schema_ref(),
            }],
            headers: vec![],
        }],
    }
}

/// A JSON response rendered earlier (a cached body), documented as `T`.
pub struct RenderedJson<T> {
    body: bytes::Bytes,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T> RenderedJson<T> {
    pub fn new(body: bytes::Bytes) -> Self {
        Self {
            body,
            _type: std::marker::PhantomData,
        }
    }
}

impl<T: poem_openapi::types::Type> poem_openapi::payload::Payload for RenderedJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }
}

impl<T: Send> poem::IntoResponse for RenderedJson<T> {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .header(poem::http::header::CONTENT_TYPE, JSON_CONTENT_TYPE)
            .body(self.body)
    }
}

impl<T: poem_openapi::types::Type + Send> poem_openapi::ApiResponse for RenderedJson<T> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        ok_meta::<Self>()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_id_is_documented_as_int64_and_keeps_the_raw_segment() {
        use poem_openapi::types::{ParseFromParameter, Type};
        assert_eq!(WireId::schema_ref(), <i64 as Type>::schema_ref());
        let raw = |s: &str| WireId::parse_from_parameter(s).map(|id| id.0).ok();
        assert_eq!(raw("u-1d").as_deref(), Some("u-1d"));
        assert_eq!(raw("").as_deref(), Some(""));
    }

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_551_820_974), "2019-03-05T21:22:54Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(age(0, 30), "< 1m");
        assert_eq!(age(0, 10 * 365 * 86_400), "10y");
    }
}
