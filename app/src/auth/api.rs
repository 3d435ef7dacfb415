//! Sign-in server functions: `/api/login`, `/api/logout`, `/api/me`.

use leptos::prelude::*;

use super::UserView;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<UserView, AppError> {
    use super::service::{ClientAddress, current_session, sign_in};
    let state = crate::state::app_state()?;
    let session = current_session().await?;
    let address = leptos_axum::extract::<axum::Extension<ClientAddress>>()
        .await
        .map(|axum::Extension(address)| address)
        .unwrap_or_else(|_| ClientAddress("unknown".into()));
    sign_in(&state, &session, &email, password, &address).await
}

#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let session = super::service::current_session().await?;
    session.flush().await?;
    Ok(())
}

/// The signed-in user, or `None` when nobody is signed in.
#[server(prefix = "/api", endpoint = "me")]
pub async fn get_me() -> Result<Option<UserView>, AppError> {
    match super::service::require_user().await {
        Ok(ctx) => Ok(Some(ctx.view())),
        // Not being signed in is an answer here, not a failure.
        Err(err) if err.kind == crate::error::ErrorKind::Unauthorized => Ok(None),
        Err(err) => Err(err),
    }
}
