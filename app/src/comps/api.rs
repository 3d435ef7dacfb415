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
    use super::validate::RawComp;
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let raw = RawComp { property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes, source_excerpt: String::new() };
    let fields = checked(&state, raw)?;
    if !super::store::update(&state.db, deal_id, id, &fields).await? {
        return Err(AppError::not_found("sale"));
    }
    Ok(id)
}

/// Adds a sale the analyst typed in: validated exactly as an edit, stored without a
/// source excerpt (the table marks it as added by hand). No Claude call, no budget.
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api", endpoint = "comps/add")]
pub async fn add_comp(
    deal_id: i64,
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
    use super::validate::RawComp;
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let raw = RawComp { property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes, source_excerpt: String::new() };
    let fields = checked(&state, raw)?;
    let id = super::store::insert(&state.db, deal_id, ctx.user_id, &fields).await?;
    tracing::info!(deal_id, id, "comp added by hand");
    Ok(id)
}

/// An analyst's form, validated against today in the firm's time zone.
#[cfg(feature = "ssr")]
fn checked(state: &crate::state::AppState, raw: super::validate::RawComp) -> Result<super::CompFields, AppError> {
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    super::validate::validate(raw, today).map_err(|e| AppError::invalid(format!("This sale cannot be saved: {e}.")))
}

/// Deletes one comp of the deal: it is hidden, and kept so `restore_comp` can undo it.
#[server(prefix = "/api", endpoint = "comps/delete")]
pub async fn delete_comp(deal_id: i64, id: i64) -> Result<i64, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    if !super::store::delete(&state.db, deal_id, id).await? {
        return Err(AppError::not_found("sale"));
    }
    Ok(id)
}

/// Undoes `delete_comp`: the same sale comes back with its id and fields. Refused (not
/// found, nothing changed) unless the deal has that comp and it is deleted.
#[server(prefix = "/api", endpoint = "comps/restore")]
pub async fn restore_comp(deal_id: i64, id: i64) -> Result<i64, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    if !super::store::restore(&state.db, deal_id, id).await? {
        return Err(AppError::not_found("deleted sale"));
    }
    Ok(id)
}
