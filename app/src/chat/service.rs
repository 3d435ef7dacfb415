//! Sending a chat message: validate, window the thread, call Claude through the tracked
//! client, store the reply. Runs on a task of its own so a dropped request still
//! finishes the call and saves the reply and its usage.

use super::{MAX_MESSAGE_CHARS, SendResult, store, system_prompt, thread_title};
use crate::auth::ssr::Ctx;
use crate::budget::service::admit_call;
use crate::claude::client::ClaudeRequest;
use crate::claude::history::Turn;
use crate::claude::estimate::{estimate_request_tokens, estimate_text_tokens};
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
    let deal = crate::deals::store::get(db, deal_id, &settings.budget).await?.ok_or_else(|| AppError::not_found("deal"))?;
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

    // The window is built before anything is stored, so a refusal stores nothing.
    let mut thread = match thread_id {
        Some(id) => store::thread_turns(db, id).await?,
        None => Vec::new(),
    };
    thread.push(Turn { role: Role::User, content: message.clone() });
    let window = build_window(estimate_text_tokens(&system), &thread, settings.history.max_messages as usize, limit).map_err(|e| match e {
        WindowError::TooLong { estimated, limit } => too_long(estimated, limit),
        WindowError::NoUserMessage => AppError::internal("chat window", e),
    })?;
    claim_cooldown(&state, &ctx).await?;
    let request = ClaudeRequest {
        model: settings.claude.model.clone(),
        max_tokens: settings.claude.max_tokens_chat,
        system,
        messages: window.messages,
        tool: None,
    };
    let admitted = admit_call(&state, &ctx, deal_id, Operation::Chat, &request, window.estimated_input_tokens).await?;
    let thread_id = match store_user_message(&state, &ctx, deal_id, thread_id, &message).await {
        Ok(id) => id,
        Err(err) => {
            admitted.cancel(&state).await;
            return Err(err);
        }
    };
    let reply = admitted.call(&state, &request).await?;
    let mut text = reply.text;
    if reply.stop_reason.as_deref() == Some("max_tokens") {
        text.push_str("\n\n[Reply cut short: it reached the length limit.]");
    }
    let reply_id = store::insert_message(db, thread_id, Role::Assistant, &text, reply.usage_record_id).await?;
    Ok(SendResult { thread_id, reply: store::message(db, reply_id).await?, dropped: window.dropped })
}

/// Stores the user's message, in a new thread when there is none yet; returns the thread.
async fn store_user_message(state: &AppState, ctx: &Ctx, deal_id: i64, thread_id: Option<i64>, message: &str) -> Result<i64, AppError> {
    let thread_id = match thread_id {
        Some(id) => id,
        None => store::create_thread(&state.db, deal_id, ctx.user_id, &thread_title(message)).await?,
    };
    store::insert_message(&state.db, thread_id, Role::User, message, None).await?;
    Ok(thread_id)
}

/// One send per `chat.cooldown_seconds` per user, enforced in the database so scripts
/// and several app instances cannot get around it.
async fn claim_cooldown(state: &AppState, ctx: &Ctx) -> Result<(), AppError> {
    let cooldown_ms = state.settings.chat.cooldown_seconds as i64 * 1000;
    if cooldown_ms == 0 {
        return Ok(());
    }
    let now = crate::db::now_millis();
    let claimed = sqlx::query("UPDATE users SET last_chat_at = $1 WHERE id = $2 AND (last_chat_at IS NULL OR last_chat_at <= $3)")
        .bind(now)
        .bind(ctx.user_id)
        .bind(now - cooldown_ms)
        .execute(&state.db.pool)
        .await?;
    if claimed.rows_affected() == 1 {
        return Ok(());
    }
    let (last,): (Option<i64>,) = sqlx::query_as("SELECT last_chat_at FROM users WHERE id = $1")
        .bind(ctx.user_id)
        .fetch_one(&state.db.pool)
        .await?;
    let wait_ms = (last.unwrap_or(now) + cooldown_ms - now).max(1);
    Err(AppError::new(
        ErrorKind::Cooldown,
        format!("Please wait {} s before sending again.", (wait_ms + 999) / 1000),
    ))
}

fn too_long(estimated: u64, limit: u64) -> AppError {
    AppError::new(
        ErrorKind::TooLong,
        format!("That message is about {estimated} tokens with the deal's facts, over the {limit}-token limit per call. Shorten it."),
    )
}
