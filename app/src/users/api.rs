//! Account administration under `/api/admin/users/` (admins only). Every change that
//! touches what a user may do or how they sign in ends their sessions at once.

use leptos::prelude::*;

use super::UserSummary;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "admin/users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::list(&state).await
}

/// The budgets an account without its own gets (admins only).
#[server(prefix = "/api", endpoint = "admin/users/defaults")]
pub async fn user_defaults() -> Result<super::UserDefaults, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::defaults(&state).await
}

/// Creates an account (an existing email is refused: use the actions on its row), with
/// optional daily (tokens) and monthly (USD) budgets; empty means the default.
#[server(prefix = "/api", endpoint = "admin/users/create")]
pub async fn create_user(email: String, password: String, role: String, daily_tokens: String, monthly_usd: Option<String>) -> Result<i64, AppError> {
    let admin = crate::auth::service::require_admin().await?;
    let role = parse_role(&role)?;
    let daily = crate::budget::parse_budget(&daily_tokens)?;
    let monthly = crate::budget::parse_usd(monthly_usd.as_deref().unwrap_or_default(), "Monthly budget")?.map(|m| m as i64);
    let state = crate::state::app_state()?;
    super::service::create(&state, &actor(&admin), &email, &password, role, daily, monthly).await
}

/// Sets a user's role. Admins cannot demote themselves (someone must stay admin).
#[server(prefix = "/api", endpoint = "admin/users/role")]
pub async fn set_user_role(user_id: i64, role: String) -> Result<i64, AppError> {
    let admin = crate::auth::service::require_admin().await?;
    let role = parse_role(&role)?;
    if user_id == admin.user_id && role != crate::auth::UserRole::Admin {
        return Err(AppError::invalid("You cannot remove your own admin role."));
    }
    let state = crate::state::app_state()?;
    super::service::change(&state, &actor(&admin), user_id, super::service::Change::Role(role)).await?;
    Ok(user_id)
}

/// Deactivates (`active` = false, ending every session at once) or reactivates an account.
#[server(prefix = "/api", endpoint = "admin/users/active")]
pub async fn set_user_active(user_id: i64, active: bool) -> Result<i64, AppError> {
    let admin = crate::auth::service::require_admin().await?;
    if user_id == admin.user_id && !active {
        return Err(AppError::invalid("You cannot deactivate your own account."));
    }
    let state = crate::state::app_state()?;
    super::service::change(&state, &actor(&admin), user_id, super::service::Change::Active(active)).await?;
    Ok(user_id)
}

/// Resets a password; whoever held the old one is signed out everywhere.
#[server(prefix = "/api", endpoint = "admin/users/password")]
pub async fn reset_password(user_id: i64, password: String) -> Result<i64, AppError> {
    use crate::auth::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
    let admin = crate::auth::service::require_admin().await?;
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid(format!("Passwords need at least {MIN_PASSWORD_CHARS} characters.")));
    }
    let state = crate::state::app_state()?;
    let hash = state.passwords.hash(password).await?;
    super::service::change(&state, &actor(&admin), user_id, super::service::Change::Password(hash)).await?;
    Ok(user_id)
}

#[cfg(feature = "ssr")]
fn actor(admin: &crate::auth::service::Ctx) -> crate::audit::Actor {
    crate::audit::Actor::admin(admin.user_id, &admin.email)
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<crate::auth::UserRole, AppError> {
    crate::auth::UserRole::parse(role).ok_or_else(|| AppError::invalid("Role must be analyst or admin."))
}
