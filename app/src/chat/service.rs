//! Sending a chat message: validate, window the thread, call Claude through the tracked
//! client, store the reply. Runs on a task of its own so a dropped request still
//! finishes the call and saves the reply and its usage.

use super::{MAX_MESSAGE_CHARS, SendResult, store, system_prompt, thread_title};
use crate::auth::ssr::Ctx;
use crate::claude::client::{CallMeta, ClaudeRequest};
use crate::claude::estimate::estimate_request_tokens;
use crate::claude::history::{WindowError, build_window};
use crate::claude::{Operation, Role};
use crate::error::{AppError, ErrorKind};
use crate::state::AppState;

pub async fn send(state: AppState, ctx: Ctx, deal_id: i64, thread_id: Option<i64>, message: String) -> Result<SendResult, AppError> {
    let message = message.trim().to_string();
    if message.is_empty() {
        return Err(AppError::invalid("Type a message first."));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(AppError::new(
            ErrorKind::TooLong,
            format!("That message is too long (at most {MAX_MESSAGE_CHARS} characters)."),
        ));
    }
    let db = &state.db;
    let settings = &state.settings;
    let deal = crate::deals::store::get(db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    if let Some(id) = thread_id {
        // Only the author continues a thread; anyone else is told it does not exist.
        match store::find_thread(db, id).await? {
            Some(t) if t.deal_id == deal_id && t.user_id == ctx.user_id => {}
            _ => return Err(AppError::not_found("conversation")),
        }
    }
    let system = system_prompt(&deal);
    let limit = settings.history.max_input_tokens;
    let alone = estimate_request_tokens(&system, [message.as_str()]);
    if alone > limit {
        return Err(too_long(alone, limit));
    }

    let thread_id = match thread_id {
        Some(id) => id,
        None => store::create_thread(db, deal_id, ctx.user_id, &thread_title(&message)).await?,
    };
    store::insert_message(db, thread_id, Role::User, &message, None).await?;
    let thread = store::thread_turns(db, thread_id).await?;
    let window = build_window(&system, &thread, settings.history.max_messages as usize, limit).map_err(|e| match e {
        WindowError::TooLong { estimated, limit } => too_long(estimated, limit),
        WindowError::NoUserMessage => AppError::internal("chat window", e),
    })?;
    let meta = CallMeta {
        user_id: ctx.user_id,
        deal_id: Some(deal_id),
        operation: Operation::Chat,
        estimated_input_tokens: window.estimated_input_tokens,
    };
    let request = ClaudeRequest {
        model: settings.claude.model.clone(),
        max_tokens: settings.claude.max_tokens_chat,
        system,
        messages: window.messages,
        tool: None,
    };
    let reply = state.claude.call(&state.tracker, &meta, &request).await?;
    let mut text = reply.text;
    if reply.stop_reason.as_deref() == Some("max_tokens") {
        text.push_str("\n\n[Reply cut short: it reached the length limit.]");
    }
    let reply_id = store::insert_message(db, thread_id, Role::Assistant, &text, reply.usage_record_id).await?;
    Ok(SendResult { thread_id, reply: store::message(db, reply_id).await?, dropped: window.dropped })
}

fn too_long(estimated: u64, limit: u64) -> AppError {
    AppError::new(
        ErrorKind::TooLong,
        format!("That message is about {estimated} tokens with the deal's facts, over the {limit}-token limit per call. Shorten it."),
    )
}
