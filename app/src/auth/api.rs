//! Sign-in server functions: `/api/login`, `/api/logout`, `/api/me`.

use leptos::prelude::*;

use super::UserView;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<UserView, AppError> {
    use super::ssr::*;
    use crate::error::ErrorKind;

    let state = crate::state::app_state()?;
    let session = current_session().await?;
    let email = normalize_email(&email);
    if email.is_empty() || password.is_empty() {
        return Err(AppError::invalid("Enter your email and password."));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::new(ErrorKind::TooLong, "That password is too long."));
    }
    let auth = &state.settings.auth;
    if recent_failures(&state.db, &email, auth.lockout_minutes).await? >= auth.max_failed_logins as i64 {
        return Err(AppError::new(
            ErrorKind::Throttled,
            format!(
                "Too many failed sign-in attempts. Please wait {} minutes and try again.",
                auth.lockout_minutes
            ),
        ));
    }
    let user = find_user_by_email(&state.db, &email).await?;
    // Unknown emails are checked against a dummy hash so both paths take the same time.
    let hash = user.as_ref().map_or_else(|| state.dummy_hash.to_string(), |u| u.password_hash.clone());
    let password_ok = verify_password(password, hash).await?;
    let user = match user {
        Some(user) if password_ok && user.active => user,
        Some(user) if password_ok && !user.active => {
            return Err(AppError::new(
                ErrorKind::Unauthorized,
                "This account has been deactivated. Ask an administrator to restore it.",
            ));
        }
        _ => {
            record_failure(&state.db, &email).await?;
            return Err(AppError::new(ErrorKind::Unauthorized, "Email or password is incorrect."));
        }
    };
    clear_failures(&state.db, &email).await?;
    // A fresh session id at privilege change defeats session fixation.
    session.cycle_id().await?;
    session.insert(USER_ID_KEY, user.id).await?;
    tracing::info!(user_id = user.id, "signed in");
    Ok(user.view())
}

#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let session = super::ssr::current_session().await?;
    session.flush().await?;
    Ok(())
}

/// The signed-in user, or `None` when nobody is signed in.
#[server(prefix = "/api", endpoint = "me")]
pub async fn get_me() -> Result<Option<UserView>, AppError> {
    match super::ssr::require_user().await {
        Ok(ctx) => Ok(Some(ctx.view())),
        Err(err) if err.kind == crate::error::ErrorKind::Unauthorized => {
            // Not being signed in is an answer here, not a failure.
            if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                options.set_status(axum::http::StatusCode::OK);
            }
            Ok(None)
        }
        Err(err) => Err(err),
    }
}
