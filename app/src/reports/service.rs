//! Drafting a memo: the deal's facts and comps into a prompt, one call through the
//! gateway, the Markdown kept as a new version.

use super::{MemoEstimate, ReportVersion};
use crate::auth::service::Ctx;
use crate::claude::estimate::estimate_request_tokens;
use crate::claude::history::Turn;
use crate::claude::types::{ClaudeRequest, StopReason};
use crate::claude::{Operation, Speaker};
use crate::error::{AppError, ErrorKind};
use crate::budget::describe_admission;
use crate::format::{format_percent, format_price, format_psf, format_sf, format_tokens, format_usd};
use crate::gateway::{call_claude, preflight};
use crate::state::AppState;

/// The memo request for a deal: its facts and comps as the system prompt, the section
/// instruction, and the raw input estimate. Generating and the pre-flight build it alike.
async fn memo_request(state: &AppState, deal_id: i64) -> Result<(ClaudeRequest, u64), AppError> {
    let deal = crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let comps = crate::comps::store::list(&state.db, deal_id).await?;
    let system = format!("{}\n{}", crate::chat::system_prompt(&deal), comps_table(&comps));
    let instruction = format!(
        "Draft an investment memo for this deal in Markdown with these sections, each as a level-2 heading: {}. \
         Use the deal facts and the comparable sales given; state assumptions; be concise and specific.",
        super::SECTIONS.join(", ")
    );
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: state.settings.claude.max_tokens_report,
        system,
        messages: vec![Turn { role: Speaker::User, content: instruction }],
        tool: None,
    };
    let estimate = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()));
    Ok((request, estimate))
}

/// What generating a memo now would cost, at the model the gateway would ask, and
/// whether the caller's budgets would take it: input estimate, the most it may write,
/// its cost from input only to a full-length reply, and what it would reserve.
pub async fn estimate(state: &AppState, ctx: &Ctx, deal_id: i64) -> Result<MemoEstimate, AppError> {
    let (request, raw) = memo_request(state, deal_id).await?;
    let p = preflight(state, ctx, deal_id, Operation::Report, &request, raw).await?;
    let estimate = format!(
        "≈ {} input tokens and up to {} output tokens on {} · ≈ {} to {}",
        format_tokens(p.call.input_tokens),
        format_tokens(p.call.output_tokens),
        p.model,
        format_usd(p.call.input_microusd as i64),
        format_usd(p.call.cost(p.call.output_tokens) as i64),
    );
    let (text, sendable) = describe_admission(&estimate, "generated", &p.call, p.admitted, &p.status);
    Ok(MemoEstimate { text: text, sendable })
}

/// Drafts a memo from the deal's facts and its comps through the gateway, and keeps it
/// as the deal's newest version.
pub async fn generate(state: AppState, ctx: Ctx, deal_id: i64) -> Result<ReportVersion, AppError> {
    let (request, estimate) = memo_request(&state, deal_id).await?;
    let (reply, limited) = call_claude(&state, &ctx, deal_id, Operation::Report, &request, estimate).await?;
    if reply.text.trim().is_empty() {
        return Err(AppError::new(ErrorKind::UpstreamError, "Claude returned an empty memo. Please try again."));
    }
    let mut markdown = reply.text;
    if reply.stop_reason == Some(StopReason::MaxTokens) {
        markdown.push_str("\n\n*The memo was cut short: it reached the length limit.*");
    }
    let id = super::store::insert(&state.db, deal_id, ctx.user_id, &markdown, reply.usage_record_id).await?;
    tracing::info!(deal_id, report_id = id, "memo generated");
    super::store::list(&state.db, deal_id)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .map(|version| ReportVersion { limited, ..version })
        .ok_or_else(|| AppError::internal("report", "new report not found"))
}

/// The deal's comps as a Markdown table for the prompt.
fn comps_table(comps: &[crate::comps::Comp]) -> String {
    if comps.is_empty() {
        return "Comparable sales: none recorded yet.\n".into();
    }
    let mut table = String::from("Comparable sales:\n| Property | Address | Date | Price | SF | $/SF | Cap rate |\n|---|---|---|---|---|---|---|\n");
    for c in comps {
        let f = &c.fields;
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            f.property_name,
            f.address,
            f.sale_date.as_deref().unwrap_or("—"),
            format_price(f.sale_price),
            format_sf(f.building_sf),
            format_psf(f.price_per_sf),
            format_percent(f.cap_rate),
        ));
    }
    table
}
