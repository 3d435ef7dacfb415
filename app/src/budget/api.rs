//! Budget server functions: the deal page's limits, the dashboard's flags, the admin
//! overrides of a user's daily and monthly budgets and a deal's budget, and the firm's
//! limits on /admin/limits. Every admin change is audited.

use leptos::prelude::*;

use super::{BudgetFlags, BudgetStatus, BudgetUses, LimitsView, MyUsage};
use crate::error::AppError;

/// Every limit that applies to the caller's calls on a deal, where each stands.
#[server(prefix = "/api", endpoint = "budget/status")]
pub async fn get_budget_status(deal_id: i64) -> Result<BudgetStatus, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::status(&state, &ctx, deal_id).await
}

/// The caller's own usage this month and the limits on their calls, with forecasts.
#[server(prefix = "/api", endpoint = "budget/mine")]
pub async fn get_my_usage() -> Result<MyUsage, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::my_usage(&state, &ctx).await
}

/// Users, deals and firm caps in budget trouble now, for the usage dashboard (admins only).
#[server(prefix = "/api", endpoint = "admin/budget/flags")]
pub async fn get_budget_flags() -> Result<BudgetFlags, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::flags(&state).await
}

/// Spend against budget for every analyst (this month) and deal (lifetime), admins only.
#[server(prefix = "/api", endpoint = "admin/budget/uses")]
pub async fn get_budget_uses() -> Result<BudgetUses, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::budget_uses(&state).await
}

/// Sets (or with an empty `daily_tokens`, clears) a user's daily token budget.
#[server(prefix = "/api", endpoint = "admin/users/budget")]
pub async fn set_user_budget(user_id: i64, daily_tokens: String) -> Result<(), AppError> {
    let value = super::parse_budget(&daily_tokens)?;
    set_override(super::store::Override::UserDaily, user_id, value).await
}

/// Sets (or with an empty `monthly_usd`, clears) a user's monthly budget in USD.
#[server(prefix = "/api", endpoint = "admin/users/monthly")]
pub async fn set_user_monthly_budget(user_id: i64, monthly_usd: String) -> Result<(), AppError> {
    let value = super::parse_usd(&monthly_usd, "Monthly budget")?.map(|micro| micro as i64);
    set_override(super::store::Override::UserMonthly, user_id, value).await
}

/// Sets a user's budget-aware model choice: `on`, `off`, or `firm` (the firm's setting).
#[server(prefix = "/api", endpoint = "admin/users/model-choice")]
pub async fn set_user_model_choice(user_id: i64, choice: String) -> Result<(), AppError> {
    let value = match choice.as_str() {
        "firm" | "" => None,
        "off" => Some(0),
        "on" => Some(1),
        _ => return Err(AppError::invalid("Model choice: on, off, or firm.")),
    };
    set_override(super::store::Override::UserModelChoice, user_id, value).await
}

/// Sets (or with an empty `tokens`, clears) a deal's budget override.
#[server(prefix = "/api", endpoint = "admin/deals/budget")]
pub async fn set_deal_budget(deal_id: i64, tokens: String) -> Result<(), AppError> {
    let value = super::parse_budget(&tokens)?;
    set_override(super::store::Override::Deal, deal_id, value).await
}

#[cfg(feature = "ssr")]
async fn set_override(which: super::store::Override, id: i64, value: Option<i64>) -> Result<(), AppError> {
    let admin = crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    let actor = crate::audit::Actor::admin(admin.user_id, &admin.email);
    super::service::set_override(&state, &actor, which, id, value).await
}

/// The firm's limits in force, as the /admin/limits form shows them.
#[server(prefix = "/api", endpoint = "admin/limits/get")]
pub async fn get_limits() -> Result<LimitsView, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::limits_view(&state).await
}

/// Saves the firm's limits (every field of the form); they apply at once, on every
/// instance, until changed again or reset.
#[server(prefix = "/api", endpoint = "admin/limits/save")]
#[allow(clippy::too_many_arguments)]
pub async fn save_limits(
    user_monthly_usd: String,
    user_monthly_alert_percents: String,
    firm_hourly_tokens: String,
    firm_daily_tokens: String,
    firm_monthly_tokens: String,
    firm_hourly_usd: String,
    firm_daily_usd: String,
    firm_monthly_usd: String,
    firm_enforce_percent: String,
    firm_warning_percent: String,
    firm_critical_percent: String,
    firm_stop_percent: String,
    firm_critical_max_request_tokens: String,
    user_requests_per_minute: String,
    user_requests_per_day: String,
    max_request_tokens: String,
    min_useful_output_tokens: String,
    model_choice: Option<String>,
    model_tiers: Option<String>,
    model_tier_percents: Option<String>,
) -> Result<(), AppError> {
    let admin = crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    // Fields a client leaves out keep the value in force.
    let current = super::service::limits_view(&state).await?.form;
    let form = super::LimitsForm {
        user_monthly_usd,
        user_monthly_alert_percents,
        firm_hourly_tokens,
        firm_daily_tokens,
        firm_monthly_tokens,
        firm_hourly_usd,
        firm_daily_usd,
        firm_monthly_usd,
        firm_enforce_percent,
        firm_warning_percent,
        firm_critical_percent,
        firm_stop_percent,
        firm_critical_max_request_tokens,
        user_requests_per_minute,
        user_requests_per_day,
        max_request_tokens,
        min_useful_output_tokens,
        model_choice: model_choice.unwrap_or(current.model_choice),
        model_tiers: model_tiers.unwrap_or(current.model_tiers),
        model_tier_percents: model_tier_percents.unwrap_or(current.model_tier_percents),
    };
    let limits = form.parse()?;
    super::service::save_limits(&state, &crate::audit::Actor::admin(admin.user_id, &admin.email), Some(limits)).await
}

/// Goes back to the limits configured in `Leptos.toml`.
#[server(prefix = "/api", endpoint = "admin/limits/reset")]
pub async fn reset_limits() -> Result<(), AppError> {
    let admin = crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::save_limits(&state, &crate::audit::Actor::admin(admin.user_id, &admin.email), None).await
}
