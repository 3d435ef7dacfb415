//! The one application state, put into every request's context by `leptos_routes_with_context`.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::{LeptosOptions, use_context};

use crate::claude::client::{ClaudeClient, Endpoint};
use crate::db::Db;
use crate::usage::tracker::UsageTracker;
use crate::error::AppError;
use crate::settings::Settings;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub settings: Arc<Settings>,
    /// The one way to Claude, and the tracker it records every attempt with.
    pub claude: Arc<ClaudeClient>,
    pub tracker: UsageTracker,
    /// An argon2 hash of a random secret, verified for unknown emails at sign-in so a
    /// wrong email and a wrong password take the same time.
    pub dummy_hash: Arc<str>,
}

impl AppState {
    pub async fn new(leptos_options: LeptosOptions, db: Db, settings: Settings, endpoint: Endpoint) -> Result<Self, AppError> {
        let secret: [u8; 16] = rand::random();
        let dummy_hash = crate::auth::ssr::hash_password(format!("{secret:?}")).await?;
        let c = &settings.claude;
        let claude = ClaudeClient::new(
            endpoint,
            c.retry_policy(),
            std::time::Duration::from_secs(c.connect_timeout_seconds),
            std::time::Duration::from_secs(c.timeout_seconds),
        )?;
        let tracker = UsageTracker::new(db.clone(), settings.pricing.price_table(), settings.time.tz());
        Ok(AppState {
            leptos_options,
            db,
            settings: Arc::new(settings),
            claude: Arc::new(claude),
            tracker,
            dummy_hash: dummy_hash.into(),
        })
    }
}

/// Runs an operation that calls Claude on a task of its own, so that the call, and the
/// saving of its result and usage, finish even if the browser goes away mid-request.
pub async fn run_to_completion<T: Send + 'static>(
    operation: impl std::future::Future<Output = Result<T, AppError>> + Send + 'static,
) -> Result<T, AppError> {
    match tokio::spawn(operation).await {
        // Raised again here, in the request's context, so its HTTP status applies.
        Ok(result) => result.map_err(AppError::reissue),
        Err(err) => Err(AppError::internal("operation task failed", err)),
    }
}

pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::internal("app state", "AppState missing from context"))
}
