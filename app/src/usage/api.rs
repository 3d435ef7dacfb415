//! The dashboard's server function (admins only): the five groupings over one range.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::UsageReport;
use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub from: String,
    pub to: String,
    pub by_user: UsageReport,
    pub by_deal: UsageReport,
    pub by_day: UsageReport,
    pub by_model: UsageReport,
    pub by_operation: UsageReport,
}

/// `range` is `today`, `7`, `30` or `90` (days ending today), or `custom` with `from`/`to`.
#[server(prefix = "/api", endpoint = "admin/usage/dashboard")]
pub async fn get_usage_dashboard(range: String, from: String, to: String) -> Result<Dashboard, AppError> {
    use super::GroupBy;
    use super::report::{date_range, usage_report};
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
    let db = &state.db;
    Ok(Dashboard {
        by_user: usage_report(db, GroupBy::User, &from, &to).await?,
        by_deal: usage_report(db, GroupBy::Deal, &from, &to).await?,
        by_day: usage_report(db, GroupBy::Day, &from, &to).await?,
        by_model: usage_report(db, GroupBy::Model, &from, &to).await?,
        by_operation: usage_report(db, GroupBy::Operation, &from, &to).await?,
        from,
        to,
    })
}
