//! Grafana's error body (`{"message": ...}`, plus `accessErrorId` and `title` on RBAC
//! denials) and the per-operation error responses, so every status an operation can
//! return appears in the OpenAPI document.

use poem::http::StatusCode;
use poem_openapi::{payload::Json, Object};

use crate::crypto::random;
use crate::error::AppError;

/// An error as Grafana answers it.
#[derive(Object, Debug, Clone)]
pub struct ErrorBody {
    /// Set on RBAC denials: an id to quote when asking for access.
    #[oai(rename = "accessErrorId", skip_serializing_if_is_none)]
    pub access_error_id: Option<String>,
    /// What went wrong, for humans.
    pub message: String,
    /// Set on RBAC denials: "Access denied".
    #[oai(skip_serializing_if_is_none)]
    pub title: Option<String>,
    /// Why a reload failed (Grafana's `error` field).
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// Set on Grafana's `errutil` errors: the error's id (`user.password-missmatch`, ...).
    #[oai(rename = "messageId", skip_serializing_if_is_none)]
    pub message_id: Option<String>,
    /// Set on `errutil` errors: the HTTP status, repeated.
    #[oai(rename = "statusCode", skip_serializing_if_is_none)]
    pub status_code: Option<u16>,
    /// Set on `errutil` errors: the request's trace id (tollgate traces nothing: "").
    #[oai(rename = "traceID", skip_serializing_if_is_none)]
    pub trace_id: Option<String>,
}

impl ErrorBody {
    pub fn message(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            access_error_id: None,
            title: None,
            error: None,
            message_id: None,
            status_code: None,
            trace_id: None,
        }
    }

    /// The body for an error; logs the cause of 5xx errors (never answered).
    pub fn from_error(e: &AppError) -> Self {
        match e {
            AppError::Internal { public, cause } => {
                tracing::error!(error = %cause, "{public}");
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
            }
            AppError::AccessDenied { action, scope } => {
                let digits: String = random::bytes::<10>()
                    .iter()
                    .map(|b| char::from(b'0' + b % 10))
                    .collect();
                return Self {
                    access_error_id: Some(format!("ACE{digits}")),
                    title: Some("Access denied".into()),
                    ..Self::message(e.message())
                }
                .logged(action, scope);
            }
            AppError::Failed { public, reason } => {
                return Self {
                    error: Some(reason.clone()),
                    ..Self::message(public.clone())
                };
            }
            AppError::Errutil {
                status,
                message_id,
                message,
            } => {
                return Self {
                    message_id: Some((*message_id).to_string()),
                    status_code: Some(*status),
                    trace_id: Some(String::new()),
                    ..Self::message(message.clone())
                };
            }
            _ => {}
        }
        Self::message(e.message())
    }

    fn logged(self, action: &str, scope: &str) -> Self {
        tracing::info!(action, scope, id = ?self.access_error_id, "access denied");
        self
    }
}

/// A JSON error response outside the typed responses (extractors, middleware).
pub fn error_response(status: u16, body: &ErrorBody) -> poem::Response {
    let json = serde_json::json!({ "message": body.message });
    let json = match (&body.access_error_id, &body.title, &body.message_id) {
        (Some(id), Some(title), _) => serde_json::json!({
            "accessErrorId": id, "message": body.message, "title": title
        }),
        (_, _, Some(message_id)) => serde_json::json!({
            "message": body.message, "messageId": message_id,
            "statusCode": status, "traceID": body.trace_id.clone().unwrap_or_default()
        }),
        _ => json,
    };
    poem::Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(json.to_string())
}

/// An [`AppError`] as a `poem::Error` carrying Grafana's body (for extractors).
pub fn into_poem(e: AppError) -> poem::Error {
    let body = ErrorBody::from_error(&e);
    poem::Error::from_response(error_response(e.status(), &body))
}

/// `{"message": ...}` success bodies.
#[derive(Object, Debug, Clone)]
pub struct MessageBody {
    pub message: String,
}

pub fn message(msg: &str) -> Json<MessageBody> {
    Json(MessageBody {
        message: msg.to_string(),
    })
}

/// Declares an operation's error response: the listed statuses plus 500. An error whose
/// status is not listed is logged as a bug and answered as a generic 500.
#[macro_export]
macro_rules! api_errors {
    ($(#[$m:meta])* $name:ident { $($status:literal => $variant:ident : $doc:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(poem_openapi::ApiResponse, Debug)]
        pub enum $name {
            $(
                #[doc = $doc]
                #[oai(status = $status)]
                $variant(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
            )*
            /// Internal error; the cause is in the server log.
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
            /// The database is unavailable; retry in a moment.
            #[oai(status = 503)]
            Unavailable(poem_openapi::payload::Json<$crate::api::error::ErrorBody>),
        }

        impl From<$crate::error::AppError> for $name {
            fn from(e: $crate::error::AppError) -> Self {
                let body = poem_openapi::payload::Json($crate::api::error::ErrorBody::from_error(&e));
                match e.status() {
                    $( $status => Self::$variant(body), )*
                    500 => Self::Internal(body),
                    503 => Self::Unavailable(body),
                    other => {
                        tracing::error!(status = other, error = %e, "undeclared error status");
                        Self::Internal(poem_openapi::payload::Json(
                            $crate::api::error::ErrorBody::message("Internal Server Error"),
                        ))
                    }
                }
            }
        }
    };
}
