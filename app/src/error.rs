//! One error type for everything a server function can refuse or fail with.
//!
//! `AppError` carries a stable machine-readable `kind` (scripts and tests match on it)
//! and a short friendly `message` (the UI shows it). Internal failures are logged with
//! their detail on the server and reach the browser only as a generic message.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// The stable error kinds of SPEC section 5 (plus `not_found` and `throttled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Unauthorized,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    TooLong,
    Cooldown,
    DailyLimitReached,
    DealBudgetExhausted,
    ServiceBusy,
    UpstreamError,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Throttled => "throttled",
            ErrorKind::TooLong => "too_long",
            ErrorKind::Cooldown => "cooldown",
            ErrorKind::DailyLimitReached => "daily_limit_reached",
            ErrorKind::DealBudgetExhausted => "deal_budget_exhausted",
            ErrorKind::ServiceBusy => "service_busy",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status a server function answers with when it fails with this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Invalid | ErrorKind::TooLong => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Throttled | ErrorKind::Cooldown | ErrorKind::ServiceBusy => 429,
            ErrorKind::DailyLimitReached | ErrorKind::DealBudgetExhausted => 403,
            ErrorKind::UpstreamError => 502,
            ErrorKind::Internal => 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

pub const INTERNAL_MESSAGE: &str = "Something went wrong on our side. Please try again.";

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        #[cfg(feature = "ssr")]
        set_response_status(kind);
        AppError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::Unauthorized, "Please sign in to continue.")
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorKind::Forbidden, "Only administrators can do that.")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("That {what} does not exist or is not yours."))
    }

    /// The same error raised again in the request's own context, so its HTTP status is
    /// applied (errors built on a spawned task have no response to set it on).
    pub fn reissue(self) -> Self {
        Self::new(self.kind, self.message)
    }

    /// Logs `detail` on the server and returns the generic internal error.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "{context}");
        Self::new(ErrorKind::Internal, INTERNAL_MESSAGE)
    }
}

/// Server functions report their failures with the HTTP status of the kind, so plain
/// HTTP clients (curl, scripts, proxies) see a 401/403/400 rather than a blanket 500.
#[cfg(feature = "ssr")]
fn set_response_status(kind: ErrorKind) {
    use leptos::prelude::use_context;
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = axum::http::StatusCode::from_u16(kind.http_status()) {
            options.set_status(status);
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::MissingArg(detail) => {
                tracing::info!(%detail, "malformed server function arguments");
                AppError::invalid("The request was malformed. Please check the form and try again.")
            }
            ServerFnErrorErr::Request(detail) => {
                tracing::warn!(%detail, "could not reach the server");
                AppError {
                    kind: ErrorKind::Internal,
                    message: "Could not reach DealDesk. Check your connection and try again."
                        .into(),
                }
            }
            other => AppError::internal("server function failure", other),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::internal("database error", err)
    }
}

#[cfg(feature = "ssr")]
impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        AppError::internal("session error", err)
    }
}
