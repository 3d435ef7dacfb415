//! Accounts as admins manage them.

use sqlx::AnyConnection;

use super::UserSummary;
use crate::auth::UserRole;
use crate::db::Db;
use crate::error::AppError;
use crate::time::utc_date;

/// Every account, by email.
pub async fn list(db: &Db) -> Result<Vec<UserSummary>, AppError> {
    let rows: Vec<(i64, String, String, i64, i64, Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT id, email, role, active, created_at, daily_token_budget, monthly_budget_microusd, model_choice FROM users ORDER BY email",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, active, created_at, daily_token_budget, monthly_budget_microusd, model_choice)| UserSummary {
            id,
            email,
            role: UserRole::parse(&role).unwrap_or(UserRole::Analyst),
            active: active != 0,
            created_on: utc_date(created_at),
            daily_token_budget,
            monthly_budget_microusd,
            spent_this_month_microusd: 0,
            last_used_on: None,
            model_choice: model_choice.map(|c| c != 0),
        })
        .collect())
}

/// An account's email, role and whether it is active; None when there is no such user.
pub async fn find(conn: &mut AnyConnection, user_id: i64) -> Result<Option<(String, UserRole, bool)>, sqlx::Error> {
    let row: Option<(String, String, i64)> = sqlx::query_as("SELECT email, role, active FROM users WHERE id = $1").bind(user_id).fetch_optional(conn).await?;
    Ok(row.map(|(email, role, active)| (email, UserRole::parse(&role).unwrap_or(UserRole::Analyst), active != 0)))
}

pub async fn set_role(conn: &mut AnyConnection, user_id: i64, role: UserRole) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role.as_str()).bind(user_id).execute(conn).await?;
    Ok(())
}

pub async fn set_active(conn: &mut AnyConnection, user_id: i64, active: bool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET active = $1 WHERE id = $2").bind(i64::from(active)).bind(user_id).execute(conn).await?;
    Ok(())
}

pub async fn set_password_hash(conn: &mut AnyConnection, user_id: i64, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(user_id).execute(conn).await?;
    Ok(())
}
