//! One error type for the rules, and the single table from error to HTTP status and public
//! message. 5xx errors carry a public message and a private cause; only the cause is
//! logged, only the message is answered.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Grafana's `reqGrafanaAdmin` denial: 403 "Permission denied".
    #[error("Permission denied")]
    PermissionDenied,
    /// A 403 with a specific message (not an RBAC denial).
    #[error("{0}")]
    Forbidden(String),
    /// An RBAC denial: 403 with `accessErrorId`, `message` and `title`.
    #[error("access denied: needs {action} on {scope:?}")]
    AccessDenied { action: String, scope: String },
    /// An error Grafana renders through its `errutil` package: `message`, `messageId`,
    /// `statusCode` and an empty `traceID`.
    #[error("{message}")]
    Errutil {
        status: u16,
        message_id: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    Unprocessable(String),
    /// A 500 whose reason the caller may see (a reload that was refused): `{"message",
    /// "error"}`.
    #[error("{public}: {reason}")]
    Failed { public: String, reason: String },
    /// Another service (the license issuer) failed or refused: 502 with its reason.
    #[error("{0}")]
    Upstream(String),
    #[error("{public}: {cause}")]
    Internal { public: String, cause: String },
    /// The database cannot be reached: 503, the request may be retried (the cause is
    /// logged, not answered).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// The public message of a 503.
pub const UNAVAILABLE: &str = "The database is unavailable; retry in a moment";

impl AppError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// A Grafana `errutil` error: 400 with a message id (`user.password-missmatch`, ...).
    pub fn errutil_bad_request(message_id: &'static str, message: impl Into<String>) -> Self {
        Self::Errutil {
            status: 400,
            message_id,
            message: message.into(),
        }
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }

    pub fn internal(public: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Self::Internal {
            public: public.into(),
            cause: cause.to_string(),
        }
    }

    /// The HTTP status: the one table.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::PermissionDenied | Self::Forbidden(_) | Self::AccessDenied { .. } => 403,
            Self::Errutil { status, .. } => *status,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::PreconditionFailed(_) => 412,
            Self::PayloadTooLarge => 413,
            Self::Unprocessable(_) => 422,
            Self::Upstream(_) => 502,
            Self::Failed { .. } => 500,
            Self::Internal { .. } => 500,
            Self::Unavailable(_) => 503,
        }
    }

    /// The public message (never the cause of a 5xx).
    pub fn message(&self) -> String {
        match self {
            Self::AccessDenied { action, .. } => format!(
                "You'll need additional permissions to perform this action. Permissions needed: {action}"
            ),
            Self::Internal { public, .. } | Self::Failed { public, .. } => public.clone(),
            Self::Unavailable(_) => UNAVAILABLE.to_string(),
            other => other.to_string(),
        }
    }

    /// Adds context to a store error as a 500 with this public message.
    pub fn store(public: &str) -> impl FnOnce(StoreError) -> AppError + '_ {
        move |e| match e {
            StoreError::Unavailable(cause) => AppError::Unavailable(cause),
            other => AppError::internal(public, other),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => AppError::Unavailable(cause),
            other => AppError::internal("Internal Server Error", other),
        }
    }
}
