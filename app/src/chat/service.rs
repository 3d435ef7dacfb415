//! Sending a chat message: validate, window the thread, call Claude through the tracked
//! client, store the reply. Runs on a task of its own so a dropped request still
//! finishes the call and saves the reply and its usage.

use super::{MAX_MESSAGE_CHARS, SendResult, store, system_prompt, thread_title};
use crate::auth::service::Ctx;
use crate::claude::types::{ClaudeRequest, StopReason};
use crate::gateway::{ModelRequest, admit_as};
use crate::claude::estimate::{estimate_request_tokens, estimate_text_tokens};
use crate::claude::history::{HistoryWindow, Turn, WindowError, build_window};
use crate::claude::{Operation, Speaker};
use crate::error::{AppError, ErrorKind};
use crate::state::AppState;

pub async fn send(state: AppState, ctx: Ctx, deal_id: i64, thread_id: Option<i64>, message: String, model: ModelRequest) -> Result<SendResult, AppError> {
    let message = checked_message(&message)?;
    let deal = crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    if let Some(id) = thread_id {
        check_author(&state, &ctx, deal_id, id).await?;
    }
    let system = system_prompt(&deal);
    let window = chat_window(&state, &system, thread_id, &message).await?;
    if let Err(refusal) = claim_cooldown(&state, &ctx).await {
        crate::usage::service::record_refusal(&state, ctx.user_id, Some(deal_id), Operation::Chat.as_str(), refusal.kind).await;
        return Err(refusal);
    }
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: state.settings.claude.max_tokens_chat,
        system,
        messages: window.messages,
        tool: None,
    };
    let admitted = admit_as(&state, &ctx, deal_id, Operation::Chat, &request, window.estimated_input_tokens, model).await?;
    let model_note = match admitted.model() {
        (chosen, Some(asked)) => Some(format!("Answered by {chosen} instead of {asked}: your budgets are running low.")),
        _ => None,
    };
    let thread_id = match store_user_message(&state, &ctx, deal_id, thread_id, &message).await {
        Ok(id) => id,
        Err(err) => {
            admitted.cancel().await;
            return Err(err);
        }
    };
    let limited = admitted.limited_note();
    let reply = admitted.call(&state, &ctx, &request).await?;
    let mut text = reply.text;
    if reply.stop_reason == Some(StopReason::MaxTokens) {
        text.push_str("\n\n[Reply cut short: it reached the length limit.]");
    }
    let reply_id = store::insert_message(&state.db, thread_id, Speaker::Assistant, &text, reply.usage_record_id).await?;
    Ok(SendResult { thread_id, reply: store::message(&state.db, reply_id).await?, dropped: window.dropped, limited, model_note })
}

/// The message trimmed, refused when empty or over `MAX_MESSAGE_CHARS`.
fn checked_message(message: &str) -> Result<String, AppError> {
    let message = message.trim();
    if message.is_empty() {
        return Err(AppError::invalid("Type a message first."));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(AppError::new(
            ErrorKind::TooLong,
            format!("That message is too long (at most {MAX_MESSAGE_CHARS} characters)."),
        ));
    }
    Ok(message.to_string())
}

/// Only the author continues a thread; anyone else is told it does not exist.
async fn check_author(state: &AppState, ctx: &Ctx, deal_id: i64, thread_id: i64) -> Result<(), AppError> {
    match store::find_thread(&state.db, thread_id).await? {
        Some(t) if t.deal_id == deal_id && t.user_id == ctx.user_id => Ok(()),
        _ => Err(AppError::not_found("conversation")),
    }
}

/// The turns sent with the new message. Built before anything is stored, so a refusal
/// stores nothing; it holds at most `max_messages` turns counting the new one, and only
/// those are read from the thread.
async fn chat_window(state: &AppState, system: &str, thread_id: Option<i64>, message: &str) -> Result<HistoryWindow, AppError> {
    let limit = state.settings.history.max_input_tokens;
    let alone = estimate_request_tokens(system, [message]);
    if alone > limit {
        return Err(too_long(alone, limit));
    }
    let max_messages = state.settings.history.max_messages as usize;
    let (mut thread, older) = match thread_id {
        Some(id) => store::recent_turns(&state.db, id, max_messages.saturating_sub(1)).await?,
        None => (Vec::new(), 0),
    };
    thread.push(Turn { role: Speaker::User, content: message.to_string() });
    let mut window = build_window(estimate_text_tokens(system), &thread, max_messages, limit).map_err(|e| match e {
        WindowError::TooLong { estimated, limit } => too_long(estimated, limit),
        WindowError::NoUserMessage => AppError::internal("chat window", e),
    })?;
    window.dropped += older;
    Ok(window)
}

/// Stores the user's message, in a new thread when there is none yet; returns the thread.
async fn store_user_message(state: &AppState, ctx: &Ctx, deal_id: i64, thread_id: Option<i64>, message: &str) -> Result<i64, AppError> {
    let thread_id = match thread_id {
        Some(id) => id,
        None => store::create_thread(&state.db, deal_id, ctx.user_id, &thread_title(message)).await?,
    };
    store::insert_message(&state.db, thread_id, Speaker::User, message, None).await?;
    Ok(thread_id)
}

/// One send per `chat.cooldown_seconds` per user, enforced in the database so scripts
/// and several app instances cannot get around it.
async fn claim_cooldown(state: &AppState, ctx: &Ctx) -> Result<(), AppError> {
    let cooldown_ms = state.settings.chat.cooldown_seconds as i64 * 1000;
    if cooldown_ms == 0 {
        return Ok(());
    }
    store::claim_cooldown(&state.db, ctx.user_id, crate::time::now_millis(), cooldown_ms).await?.map_err(|wait_ms| {
        AppError::new(ErrorKind::Cooldown, format!("Please wait {} s before sending again.", (wait_ms + 999) / 1000))
    })
}

fn too_long(estimated: u64, limit: u64) -> AppError {
    AppError::new(
        ErrorKind::TooLong,
        format!("That message is about {estimated} tokens with the deal's facts, over the {limit}-token limit per call. Shorten it."),
    )
}
