//! Comps server functions under `/api/comps/`.

use leptos::prelude::*;

use super::{Comp, ExtractResult};
use crate::error::AppError;

/// Extracts comparable sales from broker text with Claude and stores the valid ones.
#[server(prefix = "/api", endpoint = "comps/extract")]
pub async fn extract_comps(deal_id: i64, text: String) -> Result<ExtractResult, AppError> {
    let ctx = crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(extract(state, ctx, deal_id, text)).await
}

#[cfg(feature = "ssr")]
async fn extract(state: crate::state::AppState, ctx: crate::auth::ssr::Ctx, deal_id: i64, text: String) -> Result<ExtractResult, AppError> {
    use crate::budget::service::call_claude;
    use crate::claude::client::{ClaudeRequest, ToolSpec};
    use crate::claude::estimate::estimate_request_tokens;
    use crate::claude::history::Turn;
    use crate::claude::{Operation, Role};
    use crate::error::ErrorKind;

    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(AppError::invalid("Paste the broker text (or choose a file) first."));
    }
    if text.chars().count() > super::MAX_SOURCE_CHARS {
        return Err(AppError::new(
            ErrorKind::TooLong,
            format!("That text is too long to extract in one go (at most {} characters). Split it up.", super::MAX_SOURCE_CHARS),
        ));
    }
    let deal = crate::deals::store::get(&state.db, deal_id, &state.settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let system = format!(
        "You extract comparable property sales from broker and offering-memorandum text for the deal \"{}\" ({}). \
         Record every sale the text describes with the {} tool; leave out fields the text does not give. \
         Never invent numbers.",
        deal.name,
        deal.property_type,
        super::TOOL_NAME
    );
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: state.settings.claude.max_tokens_extraction,
        messages: vec![Turn { role: Role::User, content: text }],
        tool: Some(ToolSpec {
            name: super::TOOL_NAME.into(),
            description: "Record the comparable sales found in the text.".into(),
            input_schema: super::tool_schema(),
        }),
        system,
    };
    let estimate = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()))
        + crate::claude::estimate::estimate_text_tokens(&super::tool_schema().to_string());
    let reply = call_claude(&state, &ctx, deal_id, Operation::Extraction, &request, estimate).await?;
    let unusable = |why: String| {
        tracing::warn!(%why, request_id = ?reply.request_id, "extraction output rejected");
        AppError::new(
            ErrorKind::UpstreamError,
            format!("Claude's answer could not be used ({why}). Nothing was stored; try again or simplify the text."),
        )
    };
    let input = reply.tool_input.as_ref().ok_or_else(|| unusable("it did not return the sales as data".into()))?;
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    let comps = super::validate::from_tool_input(input, today).map_err(unusable)?;
    super::store::insert_all(&state.db, deal_id, ctx.user_id, &comps).await?;
    tracing::info!(deal_id, added = comps.len(), "comps extracted");
    Ok(ExtractResult { added: comps.len(), comps: super::store::list(&state.db, deal_id).await? })
}

#[server(prefix = "/api", endpoint = "comps/list")]
pub async fn list_comps(deal_id: i64) -> Result<Vec<Comp>, AppError> {
    crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id, &state.settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
    super::store::list(&state.db, deal_id).await
}

/// Saves an analyst's corrections to one comp.
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api", endpoint = "comps/update")]
pub async fn update_comp(
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
    crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    let raw = RawComp { property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes, source_excerpt: String::new() };
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    let fields = validate(raw, today).map_err(|e| AppError::invalid(format!("This sale cannot be saved: {e}.")))?;
    if !super::store::update(&state.db, id, &fields).await? {
        return Err(AppError::not_found("sale"));
    }
    Ok(id)
}

#[server(prefix = "/api", endpoint = "comps/delete")]
pub async fn delete_comp(id: i64) -> Result<i64, AppError> {
    crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    if !super::store::delete(&state.db, id).await? {
        return Err(AppError::not_found("sale"));
    }
    Ok(id)
}
