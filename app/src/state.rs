//! The one application state, put into every request's context by
//! `leptos_routes_with_context`. A plain bundle of shared handles, built by the server's
//! composition root (settings → database → price book → ledger → client → state); it
//! names nothing above the base modules and the Claude client.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::{LeptosOptions, use_context};

use crate::claude::calibration::Calibrations;
use crate::claude::client::ClaudeClient;
use crate::claude::price_book::SharedPriceBook;
use crate::db::Db;
use crate::error::AppError;
use crate::forecast::PastDays;
use crate::load::BusyLimit;
use crate::metrics::Metrics;
use crate::passwords::Passwords;
use crate::settings::Settings;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub settings: Arc<Settings>,
    /// Claude, recording every attempt in the ledger. Reached only through `gateway`.
    pub claude: Arc<ClaudeClient>,
    /// The price book calls are priced with, current on every instance.
    pub prices: SharedPriceBook,
    /// Bounded password hashing and checking.
    pub passwords: Passwords,
    /// This instance's Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The calibration's samples in memory, shared with the ledger that adds to them.
    pub calibrations: Arc<Calibrations>,
    /// The requests this instance works on at once (`server.max_busy_requests`).
    pub busy: Arc<BusyLimit>,
    /// The burn window's past days of each scope, kept between budget checks.
    pub past_days: Arc<PastDays>,
}

/// Runs an operation that calls Claude on a task of its own, so that the call, and the
/// saving of its result and usage, finish even if the browser goes away mid-request.
pub async fn run_to_completion<T: Send + 'static>(
    operation: impl std::future::Future<Output = Result<T, AppError>> + Send + 'static,
) -> Result<T, AppError> {
    match crate::load::spawn(operation).await {
        Ok(result) => result,
        Err(err) => Err(AppError::internal("operation task failed", err)),
    }
}

pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::internal("app state", "AppState missing from context"))
}
