//! Chat server functions under `/api/chat/`.

use leptos::prelude::*;

use super::{ChatContext, SendResult, ThreadSummary, ThreadView};
use crate::error::AppError;

/// Sends a message (to a new thread when `thread_id` is absent) and returns Claude's reply.
/// With budget-aware model choice on, `best_model` asks for the best tier for this one
/// send (refused if the budgets do not allow it).
#[server(prefix = "/api", endpoint = "chat/send")]
pub async fn send_chat_message(deal_id: i64, thread_id: Option<i64>, message: String, best_model: Option<bool>) -> Result<SendResult, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let model = if best_model.unwrap_or(false) { crate::gateway::ModelRequest::Best } else { crate::gateway::ModelRequest::Budgeted };
    crate::state::run_to_completion(super::service::send(state, ctx, deal_id, thread_id, message, model)).await
}

/// The caller's threads on a deal; every thread for admins.
#[server(prefix = "/api", endpoint = "chat/threads")]
pub async fn list_threads(deal_id: i64) -> Result<Vec<ThreadSummary>, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let only = if ctx.is_admin() { None } else { Some(ctx.user_id) };
    super::store::list_threads(&state.db, deal_id, only).await
}

/// A thread, one page at a time: its newest messages, or with `before` (a message id)
/// the page of messages before that one. `limit` defaults to a page that holds a whole
/// call window; at most `MAX_PAGE` messages are returned.
#[server(prefix = "/api", endpoint = "chat/thread")]
pub async fn get_thread(thread_id: i64, before: Option<i64>, limit: Option<u32>) -> Result<ThreadView, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let thread = match super::store::find_thread(&state.db, thread_id).await? {
        Some(t) if t.user_id == ctx.user_id || ctx.is_admin() => t,
        _ => return Err(AppError::not_found("conversation")),
    };
    let page = super::page_size(state.settings.history.max_messages);
    let limit = limit.map_or(page, |l| (l as usize).clamp(1, super::MAX_PAGE));
    let (messages, has_earlier) = super::store::thread_messages(&state.db, thread_id, before, limit).await?;
    Ok(ThreadView {
        id: thread.id,
        deal_id: thread.deal_id,
        title: thread.title,
        author: thread.author,
        mine: thread.user_id == ctx.user_id,
        messages,
        has_earlier,
    })
}

/// Which Claude answers and the pre-flight inputs of the chat tab for a deal.
#[server(prefix = "/api", endpoint = "chat/context")]
pub async fn get_chat_context(deal_id: i64) -> Result<ChatContext, AppError> {
    use crate::claude::Operation;
    use crate::claude::estimate::estimate_text_tokens;
    crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let deal = crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let s = &state.settings;
    let model = state.claude.answering_model(&s.claude.model).to_string();
    Ok(ChatContext {
        offline: state.claude.is_offline(),
        model: s.claude.model.clone(),
        system_tokens: estimate_text_tokens(&super::system_prompt(&deal)),
        max_messages: s.history.max_messages,
        max_input_tokens: s.history.max_input_tokens,
        max_output_tokens: s.claude.max_tokens_chat,
        calibration: crate::gateway::calibration(&state.db, &model, Operation::Chat).await?,
        rates: state.prices.current().rates_at(&model, crate::time::now_millis(), 0).0,
        tier_rates: {
            let mut conn = state.db.pool.acquire().await?;
            let limits = crate::budget::service::limits_in_force(&mut conn, &s.limits).await?;
            let book = state.prices.current();
            let now = crate::time::now_millis();
            limits.model_tiers.iter().map(|m| (m.clone(), book.rates_at(state.claude.answering_model(m), now, 0).0)).collect()
        },
        cooldown_seconds: s.chat.cooldown_seconds,
    })
}
