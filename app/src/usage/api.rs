//! The dashboard's server function (admins only): the five groupings over one range.

use leptos::prelude::*;

use super::Dashboard;
use crate::error::AppError;

/// `range` is `today`, `month` (this month), `last-month`, `7`, `30` or `90` (days ending
/// today), or `custom` with `from`/`to`;
/// `user` or `deal` (ids, or empty) narrow every table to that user's or deal's usage.
#[server(prefix = "/api", endpoint = "admin/usage/dashboard")]
pub async fn get_usage_dashboard(range: String, from: String, to: String, user: String, deal: String) -> Result<Dashboard, AppError> {
    use super::DashboardRange;
    use super::service::{Filter, date_range};
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    let range = DashboardRange::parse(&range).ok_or_else(|| AppError::invalid("Choose today, this or last month, 7, 30 or 90 days, or a custom range."))?;
    let (from, to) = match range.days(today) {
        Some((first, last)) => (first.format("%Y-%m-%d").to_string(), last.format("%Y-%m-%d").to_string()),
        None => date_range(Some(&from), Some(&to), today)?,
    };
    let filter = Filter::parse(&user, &deal)?;
    super::service::dashboard(&state, &from, &to, filter).await
}

