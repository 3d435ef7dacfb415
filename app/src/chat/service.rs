//! Sending a chat message: validate, window the thread, call Claude through the tracked
//! client, store the reply. Runs on a task of its own so a dropped request still
//! finishes the call and saves the reply and its usage.

use std::sync::Arc;
use std::time::Duration;

use super::{CallPlan, ChatMessage, MAX_MESSAGE_CHARS, SUMMARY_MAX_TOKENS, SendEvent, SendResult, TITLE_EVERY, WindowTurn, model_title, plan_call, store, summary_prompt, system_prompt, thread_title};
use crate::auth::service::Ctx;
use crate::claude::recorder::{ReplyInsert, ReplyWrite, WrittenRecord};
use crate::claude::types::{ClaudeReply, ClaudeRequest, StopReason, Streaming};
use crate::gateway::{AdmissionWrite, ModelRequest, admit_as, call_claude};
use crate::claude::estimate::{estimate_request_tokens, estimate_text_tokens};
use crate::claude::history::{Turn, WindowError};
use crate::claude::{Operation, Speaker};
use crate::error::{AppError, ErrorKind};
use crate::state::AppState;

/// How often a streaming send looks for a Stop asked for through its conversation.
const STOP_POLL: Duration = Duration::from_millis(150);

/// Where a streamed send's events go (the browser's stream; it may be gone).
pub type Events = tokio::sync::mpsc::UnboundedSender<SendEvent>;

/// `from_message`: the analyst left the thread's messages before this one out of the call.
/// Claude's reply is always streamed; its pieces go to `events` when given. A Stop asked
/// for through the conversation (`request_stop`) ends it early: what was written is kept,
/// marked stopped, and billed exactly.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    state: AppState,
    ctx: Ctx,
    deal_id: i64,
    thread_id: Option<i64>,
    message: String,
    model: ModelRequest,
    from_message: Option<i64>,
    events: Option<Events>,
) -> Result<SendResult, AppError> {
    let message = checked_message(&message)?;
    let (request, plan) = chat_request(&state, &ctx, deal_id, thread_id, &message, from_message).await?;
    let cooldown_ms = state.settings.chat.cooldown_seconds as i64 * 1000;
    let mut question = Question { deal_id, user_id: ctx.user_id, thread_id, text: &message, cooldown_ms, stored: None };
    let admitted = admit_as(&state, &ctx, deal_id, Operation::Chat, &request, plan.window.estimated_input_tokens, model, Some(&mut question as &mut dyn AdmissionWrite)).await?;
    let model_note = match admitted.model() {
        (chosen, Some(asked)) => Some(format!("Answered by {chosen} instead of {asked}: your budgets are running low.")),
        _ => None,
    };
    let Some((thread_id, message_id)) = question.stored else {
        admitted.cancel().await;
        return Err(AppError::internal("chat send", "the admission did not store the message"));
    };
    let limited = admitted.limited_note();
    if let Some(events) = &events {
        let _ = events.send(SendEvent::Started { thread_id, message_id });
    }
    let streaming = Streaming { on_text: relay(events), stop: watch_for_stop(&state, message_id) };
    let mut answer = Answer { thread_id, written: None, sent: None };
    let reply = admitted.call_streamed(&state, &ctx, &request, Some(streaming), Some(&mut answer)).await?;
    let reply = match (reply.stored_with_record, answer.written) {
        // As written in the committed transaction (its last run, if it was retried).
        (Some(id), Some(written)) if written.id == id => written,
        (Some(id), _) => store::message(&state.db, id).await?,
        // Not stored with its record (that write failed): stored on its own.
        (None, _) => {
            let id = store::insert_reply(&state.db, thread_id, &answer_text(&reply), reply.usage_record_id, reply.stopped).await?;
            store::message(&state.db, id).await?
        }
    };
    Ok(SendResult { thread_id, reply, dropped: plan.window.dropped, limited, model_note })
}

/// Claude's reply as the conversation keeps it: written in the transaction of its usage
/// record, with the record's id — one commit for both — and handed back as written, so
/// the send need not read it again. When they cannot be written together the record goes
/// first, alone, and the reply is stored after it; when not even the record can be, the
/// reply is still kept (its usage left to the reservation).
struct Answer {
    thread_id: i64,
    /// The reply as its latest write stored it (rolled back with it if that failed).
    written: Option<ChatMessage>,
    /// The text and time of the insert sent with the record (`ReplyWrite::insert`).
    sent: Option<(String, i64)>,
}

#[async_trait::async_trait]
impl ReplyWrite for Answer {
    async fn write(&mut self, conn: &mut sqlx::AnyConnection, record: WrittenRecord, reply: &ClaudeReply) -> Result<i64, sqlx::Error> {
        let (text, now) = (answer_text(reply), crate::time::now_millis());
        self.written = None;
        let id = store::append_reply(conn, self.thread_id, &text, record.id, reply.stopped, now).await?;
        self.written = Some(store::written_reply(id, text, now, reply, record));
        Ok(id)
    }

    async fn find(&mut self, conn: &mut sqlx::AnyConnection, record: i64) -> Result<Option<i64>, sqlx::Error> {
        self.written = None;
        store::reply_of(conn, self.thread_id, record).await
    }

    fn insert(&mut self, reply: &ClaudeReply) -> Option<ReplyInsert> {
        let (text, now) = (answer_text(reply), crate::time::now_millis());
        self.written = None;
        let insert = store::reply_insert(self.thread_id, &text, reply.stopped, now);
        self.sent = Some((text, now));
        Some(insert)
    }

    fn inserted(&mut self, id: i64, record: WrittenRecord, reply: &ClaudeReply) {
        if let Some((text, now)) = self.sent.take() {
            self.written = Some(store::written_reply(id, text, now, reply, record));
        }
    }
}

/// The reply's text as the conversation shows it: a stop or a cut at the length limit
/// said in it.
fn answer_text(reply: &ClaudeReply) -> String {
    let mut text = reply.text.clone();
    if reply.stopped && text.trim().is_empty() {
        text = "[Stopped before Claude wrote anything.]".into();
    }
    if reply.stop_reason == Some(StopReason::MaxTokens) && !reply.stopped {
        text.push_str("\n\n[Reply cut short: it reached the length limit.]");
    }
    text
}

/// Hands each piece of the reply to the browser's stream, while there is one.
fn relay(events: Option<Events>) -> Arc<dyn Fn(&str) + Send + Sync> {
    Arc::new(move |text: &str| {
        if let Some(events) = &events {
            // A browser that went away is no reason to stop: the reply is read whole.
            let _ = events.send(SendEvent::Delta { text: text.to_string() });
        }
    })
}

/// A signal that turns true when a Stop is asked for the reply to question `message_id`
/// (a Stop names its question, so it never stops another reply of the conversation). It
/// is read from the database, so a Stop reaches the reply whichever instance took it;
/// the watch ends with the call.
fn watch_for_stop(state: &AppState, message_id: i64) -> tokio::sync::watch::Receiver<bool> {
    let (stop, watch) = tokio::sync::watch::channel(false);
    let db = state.db.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.closed() => return,
                _ = tokio::time::sleep(STOP_POLL) => {}
            }
            match store::stop_requested(&db, message_id).await {
                Ok(true) => {
                    stop.send_replace(true);
                    return;
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(message = %err.message, message_id, "could not look for a Stop"),
            }
        }
    });
    watch
}

/// Asks the reply being streamed in one of the caller's conversations to stop.
pub async fn request_stop(state: &AppState, ctx: &Ctx, thread_id: i64, message_id: i64) -> Result<(), AppError> {
    own_thread(state, ctx, thread_id, false).await?;
    if store::request_stop(&state.db, thread_id, message_id).await? { Ok(()) } else { Err(AppError::not_found("message")) }
}

/// Claude's own count of the input tokens a send of `message` would carry now — the
/// deal's facts, the summary and pinned messages, the window — from `count_tokens`,
/// asked by the composer once the analyst stops typing. Free, so nothing is admitted,
/// reserved or recorded; refused where the send would be. None with the offline model.
/// Counted for the configured model (a budget-chosen cheaper tier may count a little
/// differently).
pub async fn count(state: &AppState, ctx: &Ctx, deal_id: i64, thread_id: Option<i64>, message: &str, from_message: Option<i64>) -> Result<Option<u64>, AppError> {
    let message = checked_message(message)?;
    let (request, _) = chat_request(state, ctx, deal_id, thread_id, &message, from_message).await?;
    crate::load::waiting_on_claude();
    state.claude.count_tokens(ctx.user_id, crate::time::now_millis(), &request).await
}

/// The call a send of `message` makes, and its plan: refused when the deal is missing,
/// the conversation is not the caller's, or the window cannot fit. Stores nothing.
async fn chat_request(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    thread_id: Option<i64>,
    message: &str,
    from_message: Option<i64>,
) -> Result<(ClaudeRequest, CallPlan), AppError> {
    let deal = crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    if let Some(id) = thread_id {
        check_author(state, ctx, deal_id, id).await?;
    }
    let system = system_prompt(&deal);
    let mut plan = chat_window(state, &system, thread_id, message, from_message).await?;
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: state.settings.claude.max_tokens_chat,
        system: format!("{system}{}", plan.context),
        messages: std::mem::take(&mut plan.window.messages),
        tool: None,
    };
    Ok((request, plan))
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

/// The turns sent with the new message, and the context block (the latest summary,
/// pinned messages) sent with the deal's facts. Built before anything is stored, so a
/// refusal stores nothing; it holds at most `max_messages` turns counting the new one,
/// only those are read from the thread, and none from before its latest summary.
async fn chat_window(state: &AppState, system: &str, thread_id: Option<i64>, message: &str, from: Option<i64>) -> Result<CallPlan, AppError> {
    let limit = state.settings.history.max_input_tokens;
    let alone = estimate_request_tokens(system, [message]);
    if alone > limit {
        return Err(too_long(alone, limit));
    }
    let max_messages = state.settings.history.max_messages as usize;
    let (summary, mut thread, older, pinned) = match thread_id {
        Some(id) => {
            let summary = store::latest_summary(&state.db, id).await?;
            let from = from.max(summary.as_ref().map(|(sid, _)| sid + 1));
            let (turns, older) = store::recent_turns(&state.db, id, max_messages.saturating_sub(1), from).await?;
            let pinned = store::pinned_before(&state.db, id, turns.first().map_or(i64::MAX, |t| t.id)).await?;
            (summary.map(|(_, text)| text), turns, older, pinned)
        }
        None => (None, Vec::new(), 0, Vec::new()),
    };
    thread.push(WindowTurn { id: i64::MAX, turn: Turn { role: Speaker::User, content: message.to_string() }, pinned: false });
    let mut plan = plan_call(estimate_text_tokens(system), summary.as_deref(), &pinned, &thread, max_messages, limit).map_err(|e| match e {
        WindowError::TooLong { estimated, limit } => too_long(estimated, limit),
        WindowError::NoUserMessage => AppError::internal("chat window", e),
    })?;
    plan.window.dropped += older;
    Ok(plan)
}

/// The analyst's message, stored with the call's admission (in a new thread when there
/// is none yet): a refused call stores nothing. The admission also claims the user's
/// chat cooldown — one send per `chat.cooldown_seconds`, enforced in the database so
/// scripts and several app instances cannot get around it — and is refused within it.
/// `stored`: the thread and the message.
struct Question<'a> {
    deal_id: i64,
    user_id: i64,
    thread_id: Option<i64>,
    text: &'a str,
    cooldown_ms: i64,
    stored: Option<(i64, i64)>,
}

#[async_trait::async_trait]
impl AdmissionWrite for Question<'_> {
    async fn write(&mut self, conn: &mut sqlx::AnyConnection, now: i64) -> Result<(), AppError> {
        let title = if self.thread_id.is_none() { thread_title(self.text) } else { String::new() };
        let question = store::NewQuestion { user_id: self.user_id, deal_id: self.deal_id, thread_id: self.thread_id, title: &title, text: self.text, now, cooldown_ms: self.cooldown_ms };
        match store::store_question(conn, &question).await? {
            Ok(stored) => {
                self.stored = Some(stored);
                Ok(())
            }
            Err(wait_ms) => Err(AppError::new(ErrorKind::Cooldown, format!("Please wait {} s before sending again.", (wait_ms + 999) / 1000))),
        }
    }
}

fn too_long(estimated: u64, limit: u64) -> AppError {
    AppError::new(
        ErrorKind::TooLong,
        format!("That message is about {estimated} tokens with the deal's facts, over the {limit}-token limit per call. Shorten it."),
    )
}

/// One of the caller's own conversations, deleted (`deleted`) or not; anything else —
/// someone else's, missing, or in the other state — is "not found".
pub async fn own_thread(state: &AppState, ctx: &Ctx, thread_id: i64, deleted: bool) -> Result<store::ThreadRow, AppError> {
    match store::find_any_thread(&state.db, thread_id).await? {
        Some((t, is_deleted)) if t.user_id == ctx.user_id && is_deleted == deleted => Ok(t),
        _ => Err(AppError::not_found("conversation")),
    }
}

/// Most a title call may write.
const TITLE_MAX_TOKENS: u32 = 40;
/// Characters of each message a title call reads.
const TITLE_EXCERPT_CHARS: usize = 400;
/// Messages a title call reads (the newest).
const TITLE_MESSAGES: usize = 10;

/// Whether a conversation of `messages` messages, last titled at `titled_at`, is due a
/// title by Claude: after its first exchange, then each time it passes a multiple of
/// `TITLE_EVERY` messages; never once the analyst has named it (`titled_at` -1).
pub fn title_due(messages: i64, titled_at: i64) -> bool {
    titled_at >= 0 && messages >= 2 && (titled_at == 0 || messages / TITLE_EVERY > titled_at / TITLE_EVERY)
}

/// Claude titles the conversation when it is due (see `title_due`), through the gateway
/// like any call (operation `title`: budgeted, recorded). Returns the new title, or None
/// when the conversation was not retitled: not due, named by the analyst, or the call
/// refused or failed (only logged, so titling never fails the chat). The due point is
/// claimed first, so each is titled once.
pub async fn title(state: AppState, ctx: Ctx, thread_id: i64) -> Result<Option<String>, AppError> {
    let thread = own_thread(&state, &ctx, thread_id, false).await?;
    let (messages, titled_at) = store::title_state(&state.db, thread_id).await?;
    if !title_due(messages, titled_at) || !store::claim_title(&state.db, thread_id, messages).await? {
        return Ok(None);
    }
    let deal = crate::deals::store::get(&state.db, thread.deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let (turns, _) = store::recent_turns(&state.db, thread_id, TITLE_MESSAGES, None).await?;
    let transcript: Vec<String> = turns
        .iter()
        .map(|t| &t.turn)
        .map(|t| {
            let who = if t.role == Speaker::User { "Analyst" } else { "Claude" };
            format!("{who}: {}", t.content.chars().take(TITLE_EXCERPT_CHARS).collect::<String>())
        })
        .collect();
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: TITLE_MAX_TOKENS,
        system: format!(
            "You title conversations between an analyst and Claude about a commercial real-estate deal. \
             Reply with the title only: at most 8 words, no quotes.\nDeal: {}\n",
            deal.name
        ),
        messages: vec![Turn { role: Speaker::User, content: format!("Title this conversation:\n\n{}", transcript.join("\n")) }],
        tool: None,
    };
    let estimate = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()));
    match call_claude(&state, &ctx, thread.deal_id, Operation::Title, &request, estimate).await {
        Ok((reply, _)) => match model_title(&reply.text) {
            Some(title) if store::retitle_thread(&state.db, thread_id, &thread.title, &title).await? => Ok(Some(title)),
            _ => Ok(None),
        },
        Err(err) => {
            tracing::info!(thread_id, kind = err.kind.as_str(), "conversation not titled");
            Ok(None)
        }
    }
}

/// Messages a summary call reads at most (the oldest not yet summed up).
const SUMMARY_MESSAGES: usize = 200;

/// Claude summarises the conversation since its last summary (operation `summary`,
/// through the gateway: budgeted and recorded). The summary is kept as a message the
/// analyst can read; later calls send it instead of the messages it sums up, and carry
/// the ones after those. It sums up the oldest messages not yet summed up that fit one
/// call, and never a question still without its reply (the reply may be on its way):
/// what it leaves out stays in the conversation's window, so nothing is lost.
pub async fn summarise(state: AppState, ctx: Ctx, thread_id: i64) -> Result<ChatMessage, AppError> {
    let thread = own_thread(&state, &ctx, thread_id, false).await?;
    let deal = crate::deals::store::get(&state.db, thread.deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let previous = store::latest_summary(&state.db, thread_id).await?;
    let from = previous.as_ref().map_or(0, |(through, _)| through + 1);
    let (mut ids, mut turns): (Vec<i64>, Vec<Turn>) = store::first_turns(&state.db, thread_id, from, SUMMARY_MESSAGES).await?.into_iter().map(|t| (t.id, t.turn)).unzip();
    let limit = state.settings.history.max_input_tokens;
    let previous = previous.map(|(_, text)| text);
    let (system, transcript) = loop {
        // End on a reply: a question without one is left for the next summary.
        while turns.last().is_some_and(|t| t.role == Speaker::User) {
            turns.pop();
            ids.pop();
        }
        if turns.len() < 2 {
            return Err(AppError::invalid("There is nothing new to summarise yet: send a message and wait for its reply first."));
        }
        let (system, transcript) = summary_prompt(&deal.name, previous.as_deref(), &turns);
        if estimate_request_tokens(&system, [transcript.as_str()]) <= limit || turns.len() <= 2 {
            break (system, transcript);
        }
        turns.pop();
        ids.pop();
    };
    let through = ids.last().copied().unwrap_or(from);
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: SUMMARY_MAX_TOKENS,
        system,
        messages: vec![Turn { role: Speaker::User, content: transcript }],
        tool: None,
    };
    let estimate = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()));
    if estimate > limit {
        return Err(too_long(estimate, limit));
    }
    let (reply, _) = call_claude(&state, &ctx, thread.deal_id, Operation::Summary, &request, estimate).await?;
    let text = reply.text.trim();
    if text.is_empty() {
        return Err(AppError::new(ErrorKind::UpstreamError, "Claude returned an empty summary. Please try again."));
    }
    let id = store::insert_summary(&state.db, thread_id, text, reply.usage_record_id, through).await?;
    store::message(&state.db, id).await
}

/// Pins or unpins a message of one of the caller's conversations.
pub async fn pin(state: &AppState, ctx: &Ctx, thread_id: i64, message_id: i64, pinned: bool) -> Result<(), AppError> {
    own_thread(state, ctx, thread_id, false).await?;
    if store::set_pinned(&state.db, thread_id, message_id, pinned).await? { Ok(()) } else { Err(AppError::not_found("message")) }
}

#[cfg(test)]
mod tests {
    use super::title_due;

    #[test]
    fn titles_come_after_the_first_exchange_then_every_fifth_message() {
        assert!(!title_due(1, 0), "not before Claude has answered");
        assert!(title_due(2, 0));
        assert!(!title_due(4, 2));
        assert!(title_due(5, 2));
        assert!(title_due(6, 2), "a due point passed between two calls still counts");
        assert!(!title_due(9, 6));
        assert!(title_due(10, 6));
        assert!(!title_due(10, 10), "each due point once");
        assert!(!title_due(2, -1) && !title_due(10, -1), "never once the analyst named it");
    }
}
