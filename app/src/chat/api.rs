//! Chat server functions under `/api/chat/`.

use leptos::prelude::*;

use super::{ClaudeStatus, SendResult, ThreadSummary, ThreadView};
use crate::error::AppError;

/// Sends a message (to a new thread when `thread_id` is absent) and returns Claude's reply.
#[server(prefix = "/api", endpoint = "chat/send")]
pub async fn send_chat_message(deal_id: i64, thread_id: Option<i64>, message: String) -> Result<SendResult, AppError> {
    let ctx = crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(super::service::send(state, ctx, deal_id, thread_id, message)).await
}

/// The caller's threads on a deal; every thread for admins.
#[server(prefix = "/api", endpoint = "chat/threads")]
pub async fn list_threads(deal_id: i64) -> Result<Vec<ThreadSummary>, AppError> {
    let ctx = crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id, &state.settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let only = if ctx.is_admin() { None } else { Some(ctx.user_id) };
    super::store::list_threads(&state.db, deal_id, only).await
}

#[server(prefix = "/api", endpoint = "chat/thread")]
pub async fn get_thread(thread_id: i64) -> Result<ThreadView, AppError> {
    let ctx = crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    let thread = match super::store::find_thread(&state.db, thread_id).await? {
        Some(t) if t.user_id == ctx.user_id || ctx.is_admin() => t,
        _ => return Err(AppError::not_found("conversation")),
    };
    Ok(ThreadView {
        id: thread.id,
        deal_id: thread.deal_id,
        title: thread.title,
        author: thread.author,
        mine: thread.user_id == ctx.user_id,
        messages: super::store::thread_messages(&state.db, thread_id).await?,
    })
}

#[server(prefix = "/api", endpoint = "chat/status")]
pub async fn get_claude_status() -> Result<ClaudeStatus, AppError> {
    crate::auth::ssr::require_user().await?;
    let state = crate::state::app_state()?;
    Ok(ClaudeStatus { offline: state.claude.is_offline(), model: state.settings.claude.model.clone() })
}
