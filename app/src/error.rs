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

/// The stable error kinds scripts and tests match on; each has its HTTP status.
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
    MonthlyBudgetReached,
    FirmCapReached,
    RateLimited,
    ServiceBusy,
    /// This DealDesk server is working on as many requests as it takes at once.
    Overloaded,
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
            ErrorKind::MonthlyBudgetReached => "monthly_budget_reached",
            ErrorKind::FirmCapReached => "firm_cap_reached",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ServiceBusy => "service_busy",
            ErrorKind::Overloaded => "overloaded",
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
            ErrorKind::Throttled | ErrorKind::Cooldown | ErrorKind::ServiceBusy | ErrorKind::RateLimited | ErrorKind::FirmCapReached => 429,
            ErrorKind::DailyLimitReached | ErrorKind::DealBudgetExhausted | ErrorKind::MonthlyBudgetReached => 403,
            ErrorKind::Overloaded => 503,
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
    /// Seconds until trying again can succeed (rate limits, firm caps); answered as a
    /// `Retry-After` header too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

pub const INTERNAL_MESSAGE: &str = "Something went wrong on our side. Please try again.";

impl AppError {
    /// An error of `kind` with a message the user may read. Pure: the HTTP status of the
    /// kind is applied once, where the answer leaves the server (the server's boundary).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError { kind, message: message.into(), retry_after_seconds: None }
    }

    /// The same error, saying when to try again.
    pub fn retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after_seconds = seconds;
        self
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

    /// Logs `detail` on the server and returns the generic internal error.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        // Quoted: the detail may carry upstream or analyst text (line breaks escaped).
        let detail = detail.to_string();
        tracing::error!(?detail, "{context}");
        Self::new(ErrorKind::Internal, INTERNAL_MESSAGE)
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::MissingArg(detail) => {
                tracing::info!(?detail, "malformed server function arguments");
                AppError::invalid("The request was malformed. Please check the form and try again.")
            }
            ServerFnErrorErr::Request(detail) => {
                tracing::warn!(?detail, "could not reach the server");
                AppError::new(ErrorKind::Internal, "Could not reach DealDesk. Check your connection and try again.")
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
