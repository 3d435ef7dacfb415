//! Chat server functions under `/api/chat/`.

use leptos::prelude::*;

use super::{ChatContext, ChatMessage, SendResult, ThreadSummary, ThreadView};
use crate::error::AppError;

/// Sends a message (to a new thread when `thread_id` is absent) and returns Claude's reply.
/// With budget-aware model choice on, `best_model` asks for the best tier for this one
/// send (refused if the budgets do not allow it). `from_message` leaves the thread's
/// messages before it out of this call (they stay stored and shown).
#[server(prefix = "/api", endpoint = "chat/send")]
pub async fn send_chat_message(
    deal_id: i64,
    thread_id: Option<i64>,
    message: String,
    best_model: Option<bool>,
    from_message: Option<i64>,
) -> Result<SendResult, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let model = if best_model.unwrap_or(false) { crate::gateway::ModelRequest::Best } else { crate::gateway::ModelRequest::Budgeted };
    crate::state::run_to_completion(super::service::send(state, ctx, deal_id, thread_id, message, model, from_message, None)).await
}

/// `send_chat_message`, with Claude's reply streamed as it is written: one JSON
/// `SendEvent` per line — `started` (the conversation, so the reply can be stopped),
/// `delta`s, then `done` with the stored reply, or `failed`. The send runs on a task
/// of its own: if the browser goes away the reply is still read whole and saved with
/// its usage.
#[server(prefix = "/api", endpoint = "chat/stream", output = leptos::server_fn::codec::StreamingText)]
pub async fn stream_chat_message(
    deal_id: i64,
    thread_id: Option<i64>,
    message: String,
    best_model: Option<bool>,
    from_message: Option<i64>,
) -> Result<leptos::server_fn::codec::TextStream<AppError>, AppError> {
    use futures::StreamExt;
    use super::SendEvent;
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let model = if best_model.unwrap_or(false) { crate::gateway::ModelRequest::Best } else { crate::gateway::ModelRequest::Budgeted };
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    let last = events.clone();
    crate::load::spawn(async move {
        let result = super::service::send(state, ctx, deal_id, thread_id, message, model, from_message, Some(events)).await;
        let _ = last.send(match result {
            Ok(result) => SendEvent::Done { result },
            Err(error) => SendEvent::Failed { error },
        });
    });
    let lines = futures::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|event| (event, receiver)) })
        .map(|event| Ok(event.to_line()));
    Ok(leptos::server_fn::codec::TextStream::new(lines))
}

/// Claude's exact count of the input a send of `message` would carry now
/// (`count_tokens`: free, nothing is reserved or recorded); `null` with the offline
/// model. The composer asks once the analyst stops typing, and shows it beside the
/// estimate.
#[server(prefix = "/api", endpoint = "chat/count")]
pub async fn count_chat_tokens(deal_id: i64, thread_id: Option<i64>, message: String, from_message: Option<i64>) -> Result<Option<u64>, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::count(&state, &ctx, deal_id, thread_id, &message, from_message).await
}

/// Stops the reply being streamed in one of the caller's conversations: what Claude
/// wrote until then is kept, marked stopped, and billed exactly.
#[server(prefix = "/api", endpoint = "chat/stop")]
pub async fn stop_chat_reply(thread_id: i64, message_id: i64) -> Result<(), AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::request_stop(&state, &ctx, thread_id, message_id).await
}

/// Claude summarises one of the caller's conversations so far (operation `summary`,
/// budgeted and recorded); later sends continue from the summary. Returns it.
#[server(prefix = "/api", endpoint = "chat/summarise")]
pub async fn summarise_thread(thread_id: i64) -> Result<ChatMessage, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(super::service::summarise(state, ctx, thread_id)).await
}

/// Pins (or unpins) a message of one of the caller's conversations: every later send
/// carries it, however long the conversation grows.
#[server(prefix = "/api", endpoint = "chat/pin")]
pub async fn pin_message(thread_id: i64, message_id: i64, pinned: bool) -> Result<(), AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::pin(&state, &ctx, thread_id, message_id, pinned).await
}

/// The caller's threads on a deal (every thread for admins); with `search`, those whose
/// title or any message contains it, ignoring case.
#[server(prefix = "/api", endpoint = "chat/threads")]
pub async fn list_threads(deal_id: i64, search: Option<String>) -> Result<Vec<ThreadSummary>, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let only = if ctx.is_admin() { None } else { Some(ctx.user_id) };
    if search.as_ref().is_some_and(|s| s.chars().count() > super::MAX_SEARCH_CHARS) {
        return Err(AppError::invalid(format!("Search for at most {} characters.", super::MAX_SEARCH_CHARS)));
    }
    super::store::list_threads(&state.db, deal_id, only, search.as_deref()).await
}

/// Renames one of the caller's conversations; returns the title as stored.
#[server(prefix = "/api", endpoint = "chat/rename")]
pub async fn rename_thread(thread_id: i64, title: String) -> Result<String, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let title = super::checked_title(&title)?;
    super::service::own_thread(&state, &ctx, thread_id, false).await?;
    super::store::rename_thread(&state.db, thread_id, &title).await?;
    Ok(title)
}

/// Deletes one of the caller's conversations (`restore`: brings a deleted one back).
/// Deleted conversations are hidden, not erased, so the usage they record stays whole.
#[server(prefix = "/api", endpoint = "chat/delete")]
pub async fn delete_thread(thread_id: i64, restore: Option<bool>) -> Result<i64, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let restore = restore.unwrap_or(false);
    super::service::own_thread(&state, &ctx, thread_id, restore).await?;
    super::store::set_thread_deleted(&state.db, thread_id, !restore).await?;
    Ok(thread_id)
}

/// Lets Claude title the conversation when it is due (after its first exchange, then
/// every 5th message, unless the analyst named it): a tracked, budgeted call (operation
/// `title`). Returns the new title, or None when it was not retitled (a failed or refused
/// titling is not an error the analyst needs to see).
#[server(prefix = "/api", endpoint = "chat/title")]
pub async fn title_thread(thread_id: i64) -> Result<Option<String>, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    crate::state::run_to_completion(super::service::title(state, ctx, thread_id)).await
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
    thread_view(&state, &ctx, thread, before, limit).await
}

/// The conversation a deal's chat tab opens: `thread_id` (from the page's address; it
/// must be on this deal, and the caller's unless they are an admin), or else the
/// caller's most recent conversation on the deal — None when they have none.
#[server(prefix = "/api", endpoint = "chat/open")]
pub async fn open_thread(deal_id: i64, thread_id: Option<i64>) -> Result<Option<ThreadView>, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    let id = match thread_id {
        Some(id) => id,
        None => match super::store::latest_thread(&state.db, deal_id, ctx.user_id).await? {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    let thread = match super::store::find_thread(&state.db, id).await? {
        Some(t) if t.deal_id == deal_id && (t.user_id == ctx.user_id || ctx.is_admin()) => t,
        _ => return Err(AppError::not_found("conversation")),
    };
    thread_view(&state, &ctx, thread, None, None).await.map(Some)
}

/// One page of `thread` as the caller sees it.
#[cfg(feature = "ssr")]
async fn thread_view(
    state: &crate::state::AppState,
    ctx: &crate::auth::service::Ctx,
    thread: super::store::ThreadRow,
    before: Option<i64>,
    limit: Option<u32>,
) -> Result<ThreadView, AppError> {
    let thread_id = thread.id;
    let page = super::page_size(state.settings.history.max_messages);
    let limit = limit.map_or(page, |l| (l as usize).clamp(1, super::MAX_PAGE));
    let (messages, has_earlier) = super::store::thread_messages(&state.db, thread_id, before, limit).await?;
    let (summary, pinned) = super::store::summary_and_pins(&state.db, thread_id).await?;
    Ok(ThreadView {
        summary,
        pinned,
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
        calibration: crate::gateway::calibration(&state, &model, Operation::Chat).await?,
        rates: state.prices.current().rates_at(&model, crate::time::now_millis(), 0).0,
        tier_rates: {
            let mut conn = state.db.read().await?;
            let limits = crate::budget::service::limits_in_force(&mut conn, &s.limits).await?;
            conn.ended_well();
            let book = state.prices.current();
            let now = crate::time::now_millis();
            limits.model_tiers.iter().map(|m| (m.clone(), book.rates_at(state.claude.answering_model(m), now, 0).0)).collect()
        },
        cooldown_seconds: s.chat.cooldown_seconds,
    })
}
