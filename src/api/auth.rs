//! The security scheme: one extractor, [`Auth`], that authenticates the request and yields
//! the [`Principal`]. It documents each way in (Basic now; Bearer and the session cookie
//! join it) as alternative requirements, and answers Grafana's 401 bodies itself.

use std::sync::Arc;

use base64::Engine;
use poem::Request;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::api::error::into_poem;
use crate::domain::Principal;
use crate::error::AppError;
use crate::service::Services;

pub const BASIC: &str = "basic";

/// The authenticated caller.
pub struct Auth(pub Principal);

fn scheme(
    ty: &'static str,
    scheme: Option<&'static str>,
    description: &'static str,
) -> MetaSecurityScheme {
    MetaSecurityScheme {
        ty,
        description: Some(description),
        name: None,
        key_in: None,
        scheme,
        bearer_format: None,
        flows: None,
        openid_connect_url: None,
    }
}

pub fn services(req: &Request) -> Result<&Arc<Services>, AppError> {
    req.data::<Arc<Services>>()
        .ok_or_else(|| AppError::internal("Internal Server Error", "services missing from request"))
}

/// Authenticates a request by the first credential it carries.
pub async fn authenticate(req: &Request) -> Result<Principal, AppError> {
    let services = services(req)?;
    let Some(header) = req.headers().get(poem::http::header::AUTHORIZATION) else {
        return Err(AppError::Unauthorized("Unauthorized".into()));
    };
    let header = header
        .to_str()
        .map_err(|_| AppError::Unauthorized("Invalid Basic Auth Header".into()))?;
    let (kind, value) = header.split_once(' ').unwrap_or((header, ""));
    if kind.eq_ignore_ascii_case("basic") {
        let (login, password) = decode_basic(value.trim())
            .ok_or_else(|| AppError::Unauthorized("Invalid Basic Auth Header".into()))?;
        return services.auth.basic(&login, &password).await;
    }
    Err(AppError::Unauthorized("Unauthorized".into()))
}

/// `base64(login:password)`; the password may contain `:`.
pub fn decode_basic(value: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_string(), password.to_string()))
}

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            BASIC,
            scheme(
                "http",
                Some("basic"),
                "A user's login (or email) and password.",
            ),
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BASIC]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        authenticate(req).await.map(Auth).map_err(into_poem)
    }
}
