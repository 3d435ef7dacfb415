//! Report server functions under `/api/reports/`.

use leptos::prelude::*;

use super::ReportVersion;
use crate::error::AppError;

/// Drafts a new memo version for the deal and returns it.
#[server(prefix = "/api", endpoint = "reports/generate")]
pub async fn generate_report(deal_id: i64) -> Result<ReportVersion, AppError> {
    let ctx = crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(generate(state, ctx, deal_id)).await
}

#[cfg(feature = "ssr")]
async fn generate(state: crate::state::AppState, ctx: crate::auth::ssr::Ctx, deal_id: i64) -> Result<ReportVersion, AppError> {
    use crate::budget::service::call_claude;
    use crate::claude::client::ClaudeRequest;
    use crate::claude::estimate::estimate_request_tokens;
    use crate::claude::history::Turn;
    use crate::claude::{Operation, Role};
    use crate::error::ErrorKind;

    let deal = crate::deals::store::get(&state.db, deal_id, &state.settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
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
        messages: vec![Turn { role: Role::User, content: instruction }],
        tool: None,
    };
    let estimate = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()));
    let reply = call_claude(&state, &ctx, deal_id, Operation::Report, &request, estimate).await?;
    if reply.text.trim().is_empty() {
        return Err(AppError::new(ErrorKind::UpstreamError, "Claude returned an empty memo. Please try again."));
    }
    let mut markdown = reply.text;
    if reply.stop_reason.as_deref() == Some("max_tokens") {
        markdown.push_str("\n\n*The memo was cut short: it reached the length limit.*");
    }
    let id = super::store::insert(&state.db, deal_id, ctx.user_id, &markdown, reply.usage_record_id).await?;
    tracing::info!(deal_id, report_id = id, "memo generated");
    super::store::list(&state.db, deal_id)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AppError::internal("report", "new report not found"))
}

/// The deal's comps as a Markdown table for the prompt.
#[cfg(feature = "ssr")]
fn comps_table(comps: &[crate::comps::Comp]) -> String {
    use crate::deals::format_price;
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
            crate::comps::format_sf(f.building_sf),
            f.price_per_sf.map_or("—".into(), |p| format!("${p:.2}")),
            f.cap_rate.map_or("—".into(), |c| format!("{c:.2}%")),
        ));
    }
    table
}

#[server(prefix = "/api", endpoint = "reports/list")]
pub async fn list_reports(deal_id: i64) -> Result<Vec<ReportVersion>, AppError> {
    crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id, &state.settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
    super::store::list(&state.db, deal_id).await
}
