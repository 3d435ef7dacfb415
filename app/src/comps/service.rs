//! Extracting comparable sales: validate the text, call Claude through the gateway with
//! the extraction tool, validate its answer whole, store it.

use super::ExtractResult;
use crate::auth::service::Ctx;
use crate::claude::estimate::estimate_request_tokens;
use crate::claude::history::Turn;
use crate::claude::types::{ClaudeRequest, ToolSpec};
use crate::claude::{Operation, Speaker};
use crate::error::{AppError, ErrorKind};
use crate::gateway::call_claude;
use crate::state::AppState;

/// Extracts comparable sales from broker text with Claude (a forced tool call) and stores
/// them if every one is valid; the call is recorded whether or not its answer is usable.
pub async fn extract(state: AppState, ctx: Ctx, deal_id: i64, text: String) -> Result<ExtractResult, AppError> {
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
    let deal = crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let system = format!(
        "You extract comparable property sales from broker and offering-memorandum text for the deal \"{}\" ({}). \
         Answer only by calling the {} tool, once, with every sale the text describes; leave out fields \
         the text does not give. Never invent numbers. If the text describes no sale, call it with an empty list.",
        deal.name,
        deal.property_type,
        super::TOOL_NAME
    );
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: state.settings.claude.max_tokens_extraction,
        messages: vec![Turn { role: Speaker::User, content: text }],
        tool: Some(ToolSpec {
            name: super::TOOL_NAME.into(),
            description: "Record the comparable sales found in the text.".into(),
            input_schema: super::tool_schema(),
        }),
        system,
    };
    let estimate = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()))
        + crate::claude::estimate::estimate_text_tokens(&super::tool_schema().to_string());
    let (reply, limited) = call_claude(&state, &ctx, deal_id, Operation::Extraction, &request, estimate).await?;
    let unusable = |why: String| {
        tracing::warn!(?why, request_id = ?reply.request_id, "extraction output rejected");
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
    Ok(ExtractResult { added: comps.len(), comps: super::store::list(&state.db, deal_id).await?, limited })
}
