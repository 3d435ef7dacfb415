//! The price book for admins: read it, and add a dated price.

use leptos::prelude::*;

use super::PriceBookView;
use crate::error::AppError;

#[server(prefix = "/api", endpoint = "admin/prices/list")]
pub async fn get_price_book() -> Result<PriceBookView, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::refresh(&state.db, &state.prices).await?;
    Ok(super::service::view(&state.prices, &state.settings.claude.model, crate::time::now_millis()))
}

/// Adds a price for `model` from `effective_date` (`YYYY-MM-DD` in `time.zone`; empty
/// or absent for now). Input and output are required (USD per million tokens); an
/// empty or absent cache price takes the usual multiple of input; the long-prompt tier
/// is all or nothing.
#[server(prefix = "/api", endpoint = "admin/prices/add")]
#[allow(clippy::too_many_arguments)]
pub async fn add_price(
    model: String,
    effective_date: Option<String>,
    input: String,
    output: String,
    cache_write_5m: Option<String>,
    cache_write_1h: Option<String>,
    cache_read: Option<String>,
    long_above_tokens: Option<String>,
    long_input: Option<String>,
    long_output: Option<String>,
    long_cache_write_5m: Option<String>,
    long_cache_write_1h: Option<String>,
    long_cache_read: Option<String>,
) -> Result<(), AppError> {
    let ctx = crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    let text = |field: Option<String>| field.unwrap_or_default();
    let (effective_date, cache_write_5m, cache_write_1h, cache_read) = (text(effective_date), text(cache_write_5m), text(cache_write_1h), text(cache_read));
    let (long_above_tokens, long_input, long_output) = (text(long_above_tokens), text(long_input), text(long_output));
    let (long_cache_write_5m, long_cache_write_1h, long_cache_read) = (text(long_cache_write_5m), text(long_cache_write_1h), text(long_cache_read));
    let price = super::service::NewPrice {
        model: super::parse_model(&model)?,
        rates: super::parse_rates(&input, &output, &cache_write_5m, &cache_write_1h, &cache_read, "")?,
        long_prompt: super::parse_long_prompt(&long_above_tokens, [&long_input, &long_output, &long_cache_write_5m, &long_cache_write_1h, &long_cache_read])?,
        effective_from: super::service::effective_from(&effective_date, state.settings.time.tz(), crate::time::now_millis())?,
    };
    super::service::add(&state.db, &state.prices, &crate::audit::Actor::admin(ctx.user_id, &ctx.email), price).await
}
