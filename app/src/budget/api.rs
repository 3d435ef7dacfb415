//! Budget server functions: the chat tab's meters and pre-flight inputs, and the admin
//! overrides of a user's daily budget and a deal's budget.

use leptos::prelude::*;

use super::BudgetStatus;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "budget/status")]
pub async fn get_budget_status(deal_id: i64) -> Result<BudgetStatus, AppError> {
    use crate::claude::estimate::estimate_text_tokens;
    let ctx = crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    let deal = crate::deals::store::get(&state.db, deal_id, &state.settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let (daily, deal_meter) = super::service::meters(&state, &ctx, deal_id).await?;
    let s = &state.settings;
    let model = state.claude.answering_model(&s.claude.model).to_string();
    Ok(BudgetStatus {
        daily,
        deal: deal_meter,
        deal_state: deal_meter.state(s.budget.warn_ratio),
        warn_ratio: s.budget.warn_ratio,
        daily_resets: super::day::resets_in(crate::db::now_millis(), s.time.tz()),
        system_tokens: estimate_text_tokens(&crate::chat::system_prompt(&deal)),
        max_messages: s.history.max_messages,
        max_input_tokens: s.history.max_input_tokens,
        max_output_tokens: s.claude.max_tokens_chat,
        calibration: super::service::calibration(&state.db, &model).await?,
        rates: state.tracker.rates_for(&model),
        cooldown_seconds: s.chat.cooldown_seconds,
    })
}

/// Parses an admin's budget field: empty means "back to the default".
pub fn parse_budget(raw: &str) -> Result<Option<i64>, AppError> {
    let text: String = raw.trim().chars().filter(|c| *c != ',' && *c != '_').collect();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(n) if (1..=1_000_000_000_000).contains(&n) => Ok(Some(n)),
        _ => Err(AppError::invalid("A budget is a whole number of tokens between 1 and 1,000,000,000,000, or empty for the default.")),
    }
}

/// Sets (or with an empty `daily_tokens`, clears) a user's daily budget override.
#[server(prefix = "/api", endpoint = "admin/users/budget")]
pub async fn set_user_budget(user_id: i64, daily_tokens: String) -> Result<(), AppError> {
    set_override("UPDATE users SET daily_token_budget = $1 WHERE id = $2", user_id, &daily_tokens, "user").await
}

/// Sets (or with an empty `tokens`, clears) a deal's budget override.
#[server(prefix = "/api", endpoint = "admin/deals/budget")]
pub async fn set_deal_budget(deal_id: i64, tokens: String) -> Result<(), AppError> {
    set_override("UPDATE deals SET token_budget = $1 WHERE id = $2", deal_id, &tokens, "deal").await
}

/// An admin's budget override: `sql` sets it on the row with id `$2`.
#[cfg(feature = "ssr")]
async fn set_override(sql: &str, id: i64, raw: &str, what: &str) -> Result<(), AppError> {
    let admin = crate::auth::ssr::require_admin().await?;
    let budget = parse_budget(raw)?;
    let state = crate::state::app_state()?;
    let result = sqlx::query(sql).bind(budget).bind(id).execute(&state.db.pool).await?;
    if result.rows_affected() == 0 {
        return Err(AppError::not_found(what));
    }
    tracing::info!(admin = admin.user_id, what, id, ?budget, "budget override set");
    Ok(())
}
