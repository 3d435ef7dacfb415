//! DealDesk's server: builds the application state (settings, database, migrations,
//! demo data), the axum router around the Leptos app, and serves it. `main.rs` is the
//! command line; integration tests call these functions directly to run the real app
//! on port 0.

use std::net::SocketAddr;
use std::time::Duration;

use app::claude::client::Endpoint;
use app::db::{DEFAULT_DATABASE_URL, Db, DbError};
use app::session_store::DbSessionStore;
use app::settings::Settings;
use app::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] app::settings::SettingsError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Setup(String),
}

/// `DATABASE_URL`, or the SQLite file under `./data/`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
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

/// Connects, migrates (a failure stops start-up), seeds demo data when configured, and
/// builds the state every request shares.
pub async fn prepare(
    settings: Settings,
    database_url: &str,
    leptos_options: LeptosOptions,
    claude: Endpoint,
) -> Result<AppState, StartError> {
    let db = Db::connect(database_url).await?;
    db.migrate().await?;
    if settings.demo.seed {
        app::demo::seed(&db).await.map_err(|e| StartError::Setup(format!("seeding demo data: {}", e.message)))?;
    }
    AppState::new(leptos_options, db, settings, claude)
        .await
        .map_err(|e| StartError::Setup(e.message))
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let store = DbSessionStore::new(state.db.clone());
    let session_layer = SessionManagerLayer::new(store)
        .with_name("dealdesk_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.settings.session.secure_cookie)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(i64::from(
            state.settings.session.idle_hours,
        ))));
    let context_state = state.clone();
    let shell_options = state.leptos_options.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/usage", get(app::usage::http::usage_api))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(shell_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), require_sign_in))
        .layer(session_layer)
        .with_state(state)
}

/// Deletes expired sessions every hour, for as long as the server runs.
pub fn spawn_session_cleanup(db: Db) {
    tokio::spawn(async move {
        let store = DbSessionStore::new(db);
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            if let Err(err) = store.delete_expired().await {
                tracing::warn!(%err, "could not delete expired sessions");
            }
        }
    });
}

/// Every page but `/login` needs a session: page loads without one go to the sign-in
/// page. Server functions check the caller themselves (and refuse with `unauthorized`).
/// Admin pages answer 403 to everyone else (the page itself says why; its server
/// functions refuse on their own too).
async fn require_sign_in(State(state): State<AppState>, session: Session, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if req.method() != Method::GET || is_public_path(&path) {
        return next.run(req).await;
    }
    let signed_in = matches!(session.get::<i64>(app::auth::ssr::USER_ID_KEY).await, Ok(Some(_)));
    match (path == "/login", signed_in) {
        (true, true) => return Redirect::to("/").into_response(),
        (false, false) => return Redirect::to("/login").into_response(),
        _ => {}
    }
    let admin_only = path == "/admin" || path.starts_with("/admin/");
    let is_admin = || async { app::auth::ssr::user_from_session(&state.db, &session).await.is_ok_and(|ctx| ctx.is_admin()) };
    if admin_only && !is_admin().await {
        let mut response = next.run(req).await;
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    next.run(req).await
}

fn is_public_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path == "/healthz"
        || path.rsplit('/').next().is_some_and(|last| last.contains('.'))
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(err) => {
            tracing::error!(%err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "database unavailable"})))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_public_path;

    #[test]
    fn only_assets_api_and_health_are_public() {
        assert!(is_public_path("/api/login"));
        assert!(is_public_path("/pkg/dealdesk.js"));
        assert!(is_public_path("/favicon.ico"));
        assert!(is_public_path("/healthz"));
        assert!(!is_public_path("/"));
        assert!(!is_public_path("/deals/3"));
        assert!(!is_public_path("/admin/users"));
    }
}
