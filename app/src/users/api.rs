//! Admin server functions under `/api/admin/`.

use leptos::prelude::*;

use super::UserSummary;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "admin/users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use crate::auth::Role;
    crate::auth::ssr::require_admin().await?;
    let state = crate::state::app_state()?;
    let rows: Vec<(i64, String, String, i64, i64)> =
        sqlx::query_as("SELECT id, email, role, active, created_at FROM users ORDER BY email")
            .fetch_all(&state.db.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, active, created_at)| UserSummary {
            id,
            email,
            role: Role::parse(&role).unwrap_or(Role::Analyst),
            active: active != 0,
            created_on: crate::db::utc_date(created_at),
        })
        .collect())
}
