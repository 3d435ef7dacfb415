//! The one application state, put into every request's context by `leptos_routes_with_context`.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::{LeptosOptions, use_context};

use crate::db::Db;
use crate::error::AppError;
use crate::settings::Settings;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub settings: Arc<Settings>,
    /// An argon2 hash of a random secret, verified for unknown emails at sign-in so a
    /// wrong email and a wrong password take the same time.
    pub dummy_hash: Arc<str>,
}

impl AppState {
    pub async fn new(leptos_options: LeptosOptions, db: Db, settings: Settings) -> Result<Self, AppError> {
        let secret: [u8; 16] = rand::random();
        let dummy_hash = crate::auth::ssr::hash_password(format!("{secret:?}")).await?;
        Ok(AppState { leptos_options, db, settings: Arc::new(settings), dummy_hash: dummy_hash.into() })
    }
}

pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::internal("app state", "AppState missing from context"))
}
