//! The dashboard's server function (admins only): the five groupings over one range.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::UsageReport;
use crate::budget::BudgetState;
use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub from: String,
    pub to: String,
    /// The user or deal the page is narrowed to, by name, if any.
    pub focus: Option<String>,
    /// Users over their daily budget today, or at its warning level; deals likewise
    /// for their lifetime budget. Keyed by id as the report rows are.
    pub flagged_users: Vec<(String, BudgetState)>,
    pub flagged_deals: Vec<(String, BudgetState)>,
    pub by_user: UsageReport,
    pub by_deal: UsageReport,
    pub by_day: UsageReport,
    pub by_model: UsageReport,
    pub by_operation: UsageReport,
}

/// `range` is `today`, `7`, `30` or `90` (days ending today), or `custom` with `from`/`to`;
/// `user` or `deal` (ids, or empty) narrow every table to that user's or deal's usage.
#[server(prefix = "/api", endpoint = "admin/usage/dashboard")]
pub async fn get_usage_dashboard(range: String, from: String, to: String, user: String, deal: String) -> Result<Dashboard, AppError> {
    use super::GroupBy;
    use super::report::{Filter, date_range, usage_report};
    crate::auth::ssr::require_admin().await?;
    let state = crate::state::app_state()?;
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    let days = |n: i64| (today - chrono::Duration::days(n - 1)).format("%Y-%m-%d").to_string();
    let (from, to) = match range.as_str() {
        "today" => date_range(Some(&days(1)), None, today)?,
        "7" => date_range(Some(&days(7)), None, today)?,
        "" | "30" => date_range(Some(&days(30)), None, today)?,
        "90" => date_range(Some(&days(90)), None, today)?,
        "custom" => date_range(Some(&from), Some(&to), today)?,
        _ => return Err(AppError::invalid("Choose today, 7, 30 or 90 days, or a custom range.")),
    };
    let filter = Filter::parse(&user, &deal)?;
    let db = &state.db;
    let focus = match filter {
        Filter { user_id: Some(id), .. } => Some(name_of(db, "SELECT email FROM users WHERE id = $1", id).await?),
        Filter { deal_id: Some(id), .. } => Some(name_of(db, "SELECT name FROM deals WHERE id = $1", id).await?),
        _ => None,
    };
    let (flagged_users, flagged_deals) = flags(&state).await?;
    Ok(Dashboard {
        by_user: usage_report(db, GroupBy::User, &from, &to, filter).await?,
        by_deal: usage_report(db, GroupBy::Deal, &from, &to, filter).await?,
        by_day: usage_report(db, GroupBy::Day, &from, &to, filter).await?,
        by_model: usage_report(db, GroupBy::Model, &from, &to, filter).await?,
        by_operation: usage_report(db, GroupBy::Operation, &from, &to, filter).await?,
        from,
        to,
        focus,
        flagged_users,
        flagged_deals,
    })
}

#[cfg(feature = "ssr")]
async fn name_of(db: &crate::db::Db, sql: &str, id: i64) -> Result<String, AppError> {
    let row: Option<(String,)> = sqlx::query_as(sql).bind(id).fetch_optional(&db.pool).await?;
    row.map(|(name,)| name).ok_or_else(|| AppError::not_found("user or deal"))
}

/// Budget standing from the aggregates: analysts against today's daily budget (admins
/// are exempt), deals against their lifetime budget.
#[cfg(feature = "ssr")]
async fn flags(state: &crate::state::AppState) -> Result<(Vec<(String, BudgetState)>, Vec<(String, BudgetState)>), AppError> {
    use crate::budget::Meter;
    let s = &state.settings.budget;
    let today = super::tracker::local_day(crate::db::now_millis(), state.settings.time.tz());
    let tokens = "CAST(COALESCE(SUM(a.input_tokens + a.output_tokens + a.cache_creation_tokens + a.cache_read_tokens), 0) AS BIGINT)";
    let users: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(&format!(
        "SELECT u.id, u.daily_token_budget, {tokens} FROM users u JOIN usage_daily a ON a.user_id = u.id \
         WHERE a.day = $1 AND u.role = 'analyst' GROUP BY u.id, u.daily_token_budget"
    ))
    .bind(&today)
    .fetch_all(&state.db.pool)
    .await?;
    let deals: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(&format!(
        "SELECT d.id, d.token_budget, {tokens} FROM deals d JOIN usage_daily a ON a.deal_id = d.id GROUP BY d.id, d.token_budget"
    ))
    .fetch_all(&state.db.pool)
    .await?;
    let flag = |rows: Vec<(i64, Option<i64>, i64)>, default: u64| -> Vec<(String, BudgetState)> {
        rows.into_iter()
            .filter_map(|(id, limit, used)| {
                let meter = Meter { used: used.max(0) as u64, reserved: 0, limit: limit.map_or(default, |l| l.max(0) as u64) };
                let state = meter.state(s.warn_ratio);
                (state != BudgetState::Ok).then(|| (id.to_string(), state))
            })
            .collect()
    };
    Ok((flag(users, s.user_daily_tokens), flag(deals, s.deal_tokens)))
}
