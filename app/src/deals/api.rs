//! Deal server functions under `/api/deals/`. Deals belong to the firm: every signed-in
//! user can read and edit them.

use leptos::prelude::*;

use super::{Deal, DealSummary};
use crate::error::AppError;

/// Every deal with its budget standing, most recently changed first.
#[server(prefix = "/api", endpoint = "deals/list")]
pub async fn list_deals() -> Result<Vec<DealSummary>, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let budgets = crate::budget::service::deal_budgets(&state).await?;
    let default = crate::budget::service::deal_budget(0, None, &state.settings.budget);
    Ok(super::store::list(&state.db)
        .await?
        .into_iter()
        .map(|deal| DealSummary { budget: budgets.get(&deal.id).copied().unwrap_or(default), deal })
        .collect())
}

#[server(prefix = "/api", endpoint = "deals/get")]
pub async fn get_deal(id: i64) -> Result<Deal, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::store::get(&state.db, id).await?.ok_or_else(|| AppError::not_found("deal"))
}

/// Creates a deal and returns its id.
#[server(prefix = "/api", endpoint = "deals/create")]
pub async fn create_deal(
    name: String,
    address: String,
    property_type: String,
    asking_price: String,
    notes: String,
) -> Result<i64, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let input = super::DealInput::parse(&name, &address, &property_type, &asking_price, &notes)?;
    let state = crate::state::app_state()?;
    let id = super::store::create(&state.db, ctx.user_id, &input).await?;
    tracing::info!(deal_id = id, user_id = ctx.user_id, "deal created");
    Ok(id)
}

#[server(prefix = "/api", endpoint = "deals/update")]
pub async fn update_deal(
    id: i64,
    name: String,
    address: String,
    property_type: String,
    asking_price: String,
    notes: String,
) -> Result<i64, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let input = super::DealInput::parse(&name, &address, &property_type, &asking_price, &notes)?;
    let state = crate::state::app_state()?;
    if !super::store::update(&state.db, id, &input).await? {
        return Err(AppError::not_found("deal"));
    }
    tracing::info!(deal_id = id, user_id = ctx.user_id, "deal updated");
    Ok(id)
}
