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
    use super::report::{Filter, date_range};
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
    super::report::dashboard(&state.db, &state.settings, &from, &to, filter).await
}

