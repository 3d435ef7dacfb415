//! Admin server functions under `/api/admin/`.

use leptos::prelude::*;

use super::UserSummary;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "admin/users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use crate::auth::Role;
    crate::auth::ssr::require_admin().await?;
    let state = crate::state::app_state()?;
    let rows: Vec<(i64, String, String, i64, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, email, role, active, created_at, daily_token_budget FROM users ORDER BY email")
            .fetch_all(&state.db.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, active, created_at, daily_token_budget)| UserSummary {
            id,
            email,
            role: Role::parse(&role).unwrap_or(Role::Analyst),
            active: active != 0,
            created_on: crate::db::utc_date(created_at),
            daily_token_budget,
        })
        .collect())
}

/// Creates an account (an existing email is refused: use the actions on its row).
#[server(prefix = "/api", endpoint = "admin/users/create")]
pub async fn create_user(email: String, password: String, role: String, daily_tokens: String) -> Result<i64, AppError> {
    use crate::auth::ssr::{find_user_by_email, normalize_email, upsert_user};
    let admin = crate::auth::ssr::require_admin().await?;
    let role = crate::auth::Role::parse(&role).ok_or_else(|| AppError::invalid("Role must be analyst or admin."))?;
    let budget = crate::budget::api::parse_budget(&daily_tokens)?;
    let state = crate::state::app_state()?;
    if find_user_by_email(&state.db, &normalize_email(&email)).await?.is_some() {
        return Err(AppError::invalid("An account with that email already exists."));
    }
    let id = upsert_user(&state.db, &email, &password, role).await?;
    sqlx::query("UPDATE users SET daily_token_budget = $1 WHERE id = $2").bind(budget).bind(id).execute(&state.db.pool).await?;
    tracing::info!(admin = admin.user_id, user_id = id, "user created");
    Ok(id)
}

/// Sets a user's role. Admins cannot demote themselves (someone must stay admin).
#[server(prefix = "/api", endpoint = "admin/users/role")]
pub async fn set_user_role(user_id: i64, role: String) -> Result<i64, AppError> {
    let admin = crate::auth::ssr::require_admin().await?;
    let role = crate::auth::Role::parse(&role).ok_or_else(|| AppError::invalid("Role must be analyst or admin."))?;
    if user_id == admin.user_id && role != crate::auth::Role::Admin {
        return Err(AppError::invalid("You cannot remove your own admin role."));
    }
    update_user(user_id, "UPDATE users SET role = $1 WHERE id = $2", role.as_str().to_string()).await?;
    Ok(user_id)
}

/// Deactivates (`active` = false) or reactivates an account; a deactivated user's
/// sessions stop working at their next request.
#[server(prefix = "/api", endpoint = "admin/users/active")]
pub async fn set_user_active(user_id: i64, active: bool) -> Result<i64, AppError> {
    let admin = crate::auth::ssr::require_admin().await?;
    if user_id == admin.user_id && !active {
        return Err(AppError::invalid("You cannot deactivate your own account."));
    }
    let state = crate::state::app_state()?;
    let result = sqlx::query("UPDATE users SET active = $1 WHERE id = $2").bind(i64::from(active)).bind(user_id).execute(&state.db.pool).await?;
    if result.rows_affected() == 0 {
        return Err(AppError::not_found("user"));
    }
    tracing::info!(admin = admin.user_id, user_id, active, "user activation changed");
    Ok(user_id)
}

#[server(prefix = "/api", endpoint = "admin/users/password")]
pub async fn reset_password(user_id: i64, password: String) -> Result<i64, AppError> {
    use crate::auth::ssr::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, hash_password};
    crate::auth::ssr::require_admin().await?;
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid(format!("Passwords need at least {MIN_PASSWORD_CHARS} characters.")));
    }
    let hash = hash_password(password).await?;
    update_user(user_id, "UPDATE users SET password_hash = $1 WHERE id = $2", hash).await?;
    Ok(user_id)
}

#[cfg(feature = "ssr")]
async fn update_user(user_id: i64, sql: &str, value: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    let result = sqlx::query(sql).bind(value).bind(user_id).execute(&state.db.pool).await?;
    if result.rows_affected() == 0 {
        return Err(AppError::not_found("user"));
    }
    tracing::info!(user_id, "user updated by an admin");
    Ok(())
}
