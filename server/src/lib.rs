//! DealDesk's server and its composition root: settings → database → migrations →
//! price book → ledger (the recorder) → Claude client → state → router. `main.rs` runs
//! the command line (`cli.rs`); integration tests call these functions to run the real
//! app on port 0.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use app::auth::session_store::DbSessionStore;
use app::claude::client::{ClaudeClient, ClientConfig, Endpoint};
use app::claude::recorder::UsageRecorder;
use app::db::{Db, DbError};
use app::passwords::Passwords;
use app::settings::Settings;
use app::state::AppState;
use app::usage::ledger::Ledger;
use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use tower_http::timeout::TimeoutLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer};

use guards::CspNonce;

pub mod cli;
pub mod demo;
pub mod guards;
pub mod limit_tools;
pub mod listener;
pub mod usage_tools;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] app::settings::SettingsError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Setup(String),
}

/// Leptos' own options from the variables cargo-leptos sets, with the workspace's
/// defaults when the binary is run on its own.
pub fn leptos_options() -> LeptosOptions {
    if std::env::var_os("LEPTOS_OUTPUT_NAME").is_some() {
        if let Ok(conf) = get_configuration(None) {
            return conf.leptos_options;
        }
    }
    let addr: SocketAddr = std::env::var("LEPTOS_SITE_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
    LeptosOptions::builder()
        .output_name("dealdesk")
        .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// The composition root: connects, migrates (a failure stops start-up), builds the
/// price book, the ledger, the Claude client recording into it and the state every
/// request shares, and seeds demo data when configured.
pub async fn prepare(settings: Settings, database_url: &str, leptos_options: LeptosOptions, claude: Endpoint) -> Result<AppState, StartError> {
    prepare_with_recorder(settings, database_url, leptos_options, claude, |ledger| Arc::new(ledger)).await
}

/// `prepare`, with `recorder` choosing what the client records through (the ledger
/// itself, or something wrapped around it — tests inject faults this way).
pub async fn prepare_with_recorder(
    settings: Settings,
    database_url: &str,
    leptos_options: LeptosOptions,
    claude: Endpoint,
    recorder: impl FnOnce(Ledger) -> Arc<dyn UsageRecorder>,
) -> Result<AppState, StartError> {
    let setup = |e: app::error::AppError| StartError::Setup(e.message);
    let db = Db::connect(database_url).await?;
    db.migrate().await?;
    let passwords = Passwords::new(settings.auth.password_checks_in_parallel as usize).await.map_err(setup)?;
    let user_key = app::db::shared_secret(&db, "claude_user_id_key").await.map_err(|e| StartError::Setup(e.to_string()))?;
    let prices = settings.pricing.price_book();
    app::prices::service::refresh(&db, &prices).await.map_err(|e| StartError::Setup(format!("loading the price book: {e}")))?;
    let metrics = Arc::new(app::metrics::Metrics::new());
    let calibrations = Arc::new(app::claude::calibration::Calibrations::default());
    let ledger = Ledger::new(db.clone(), prices.clone(), settings.time.tz(), metrics.clone(), calibrations.clone());
    let c = &settings.claude;
    let config = ClientConfig {
        endpoint: claude,
        policy: c.retry_policy(),
        connect_timeout: Duration::from_secs(c.connect_timeout_seconds),
        timeout: Duration::from_secs(c.timeout_seconds),
        user_key,
    };
    let client = ClaudeClient::new(config, recorder(ledger)).map_err(setup)?;
    let busy = Arc::new(app::load::BusyLimit::new(settings.server.max_busy_requests));
    let state = AppState { leptos_options, db, settings: Arc::new(settings), claude: Arc::new(client), prices, passwords, metrics, calibrations, busy, past_days: Arc::default() };
    if state.settings.demo.seed {
        demo::seed(&state.db, &state.passwords).await.map_err(|e| StartError::Setup(format!("seeding demo data: {}", e.message)))?;
    }
    Ok(state)
}

/// The app's routes, listed once per process. Listing renders the app with every resource
/// load suppressed by a process-wide flag (leptos_router's `generate_route_list`), so a
/// page rendering elsewhere in the process at that moment would wait for ever on its
/// data. Listed once, before any router can serve, no render ever overlaps it.
fn routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: AppState) -> Router {
    use guards::{api_error_status, client_address, limit_body, refuse_cross_site_writes, render_deadline, require_sign_in, security_headers, shed_load};
    let routes = routes();
    let store = DbSessionStore::new(state.db.clone());
    let session_layer = SessionManagerLayer::new(store)
        .with_name("dealdesk_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.settings.session.secure_cookie)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(i64::from(state.settings.session.idle_hours))));
    let shell_options = state.leptos_options.clone();
    let request_timeout = Duration::from_secs(state.settings.server.request_timeout_seconds);
    let context = request_context(state.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/usage", get(app::usage::http::usage_api))
        .route("/api/comps/csv", get(app::comps::http::comps_csv))
        .route("/api/reports/{id}/markdown", get(app::reports::http::memo_markdown))
        .route("/api/reports/{id}/docx", get(app::reports::http::memo_docx))
        .route("/api/alerts", get(app::alerts::http::alerts_json))
        .leptos_routes_with_context(&state, routes, context.clone(), move || shell(shell_options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        // Innermost first: these run last on the way in.
        .layer(middleware::from_fn_with_state(state.clone(), render_deadline))
        .layer(middleware::from_fn_with_state(state.clone(), require_sign_in))
        .layer(session_layer)
        .layer(middleware::from_fn(api_error_status))
        .layer(middleware::from_fn_with_state(state.clone(), shed_load))
        .layer(middleware::from_fn_with_state(state.clone(), limit_body))
        .layer(middleware::from_fn(refuse_cross_site_writes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), client_address))
        .with_state(state)
}

/// What every server render and server function finds in its context: the app state,
/// and the nonce this response's Content-Security-Policy allows inline scripts with.
fn request_context(state: AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(state.clone());
        let nonce = use_context::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
        if let Some(CspNonce(nonce)) = nonce {
            provide_context(leptos::nonce::Nonce::from_value(nonce));
        }
    }
}

/// Serves the app on `listener` with the server's connection limits until `shutdown`;
/// settles the reservations of calls that can no longer be alive (at start, for those a
/// previous run left, then every minute), and posts alerts to the webhook when one is
/// configured.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState, shutdown: impl std::future::Future<Output = ()>) {
    let header_timeout = Duration::from_secs(state.settings.server.header_read_timeout_seconds);
    app::gateway::spawn_expiry_settlement(Ledger::of(&state), Duration::from_secs(60));
    if let (false, Some(secret)) = (state.settings.alerts.webhook_url.is_empty(), state.settings.env.alert_webhook_secret.clone()) {
        app::alerts::service::spawn_webhook_delivery(state.db.clone(), state.settings.alerts.clone(), secret);
    }
    listener::serve(listener, router(state), header_timeout, shutdown).await;
}

/// `GET /metrics` in the Prometheus text format, for a listener of its own
/// (`metrics.listen_addr`): never on the app's port, never behind its sign-in.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let now = app::time::now_millis();
    match app::budget::service::firm_caps(&state, now).await {
        Ok((caps, _)) => {
            for (limit, _) in caps {
                let (window, unit, scale) = match limit.kind {
                    app::budget::LimitKind::FirmTokens(w) => (w.as_str(), "tokens", 1.0),
                    app::budget::LimitKind::FirmUsd(w) => (w.as_str(), "usd", 1e-6),
                    _ => continue,
                };
                state.metrics.firm_cap(window, unit, limit.meter.remaining() as f64 * scale, limit.meter.limit as f64 * scale);
            }
        }
        Err(err) => tracing::warn!(message = %err.message, "firm caps could not be read for the metrics"),
    }
    state.metrics.busy(state.busy.busy());
    if let Some((commits, writes)) = state.db.write_batches() {
        state.metrics.sqlite_batches(commits, writes);
    }
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode()).into_response()
}

/// Every hour, for as long as the server runs: deletes expired sessions and sign-in
/// throttle windows that have ended.
pub fn spawn_cleanup(db: Db, lockout_minutes: u32) {
    tokio::spawn(async move {
        let store = DbSessionStore::new(db.clone());
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            if let Err(err) = store.delete_expired().await {
                tracing::warn!(%err, "could not delete expired sessions");
            }
            if let Err(err) = app::auth::service::purge_login_throttle(&db, lockout_minutes).await {
                tracing::warn!(message = %err.message, "could not purge old sign-in attempts");
            }
            // Rate-limit windows are a minute and a day: two days back is long over.
            if let Err(err) = app::budget::store::purge_request_counts(&db, app::time::now_millis() - 2 * 86_400_000).await {
                tracing::warn!(%err, "could not purge old request counts");
            }
        }
    });
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(err) => {
            tracing::error!(%err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "database unavailable"}))).into_response()
        }
    }
}
