//! Report server functions under `/api/reports/`.

use leptos::prelude::*;

use super::ReportVersion;
use crate::error::AppError;

/// Drafts a new memo version for the deal and returns it.
#[server(prefix = "/api", endpoint = "reports/generate")]
pub async fn generate_report(deal_id: i64) -> Result<ReportVersion, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(super::service::generate(state, ctx, deal_id)).await
}

#[server(prefix = "/api", endpoint = "reports/list")]
pub async fn list_reports(deal_id: i64) -> Result<Vec<ReportVersion>, AppError> {
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    super::store::list(&state.db, deal_id).await
}

/// What generating a memo now would cost and whether the caller's budgets would take it.
#[server(prefix = "/api", endpoint = "reports/estimate")]
pub async fn estimate_report(deal_id: i64) -> Result<super::MemoEstimate, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::estimate(&state, &ctx, deal_id).await
}
