//! Comps server functions under `/api/comps/`.

use leptos::prelude::*;

use super::{Comp, ExtractResult};
use crate::error::AppError;

/// Extracts comparable sales from broker text with Claude and stores the valid ones.
#[server(prefix = "/api", endpoint = "comps/extract")]
pub async fn extract_comps(deal_id: i64, text: String) -> Result<ExtractResult, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(super::service::extract(state, ctx, deal_id, text)).await
}

#[server(prefix = "/api", endpoint = "comps/list")]
pub async fn list_comps(deal_id: i64) -> Result<Vec<Comp>, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    super::store::list(&state.db, deal_id).await
}

/// Saves an analyst's corrections to one comp of the deal.
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api", endpoint = "comps/update")]
pub async fn update_comp(
    deal_id: i64,
    id: i64,
    property_name: String,
    address: String,
    sale_date: String,
    sale_price: String,
    building_sf: String,
    price_per_sf: String,
    cap_rate: String,
    buyer: String,
    seller: String,
    notes: String,
) -> Result<i64, AppError> {
    use super::validate::{RawComp, validate};
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let raw = RawComp { property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes, source_excerpt: String::new() };
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    let fields = validate(raw, today).map_err(|e| AppError::invalid(format!("This sale cannot be saved: {e}.")))?;
    if !super::store::update(&state.db, deal_id, id, &fields).await? {
        return Err(AppError::not_found("sale"));
    }
    Ok(id)
}

/// Deletes one comp of the deal.
#[server(prefix = "/api", endpoint = "comps/delete")]
pub async fn delete_comp(deal_id: i64, id: i64) -> Result<i64, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    if !super::store::delete(&state.db, deal_id, id).await? {
        return Err(AppError::not_found("sale"));
    }
    Ok(id)
}
