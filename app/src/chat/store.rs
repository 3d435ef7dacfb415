//! Chat threads and messages in the database.

use super::{ChatMessage, ThreadSummary, WindowTurn};
use crate::claude::Speaker;
use crate::claude::recorder::{ReplyInsert, SqlArg, WrittenRecord};
use crate::claude::types::ClaudeReply;
use crate::claude::history::Turn;
use sqlx::AnyConnection;

use crate::db::Db;
use crate::time::{now_millis, utc_minute};
use crate::usage::ReplyUsage;
use crate::error::AppError;

pub struct ThreadRow {
    pub id: i64,
    pub deal_id: i64,
    pub user_id: i64,
    pub title: String,
    pub author: String,
}

/// A conversation that has not been deleted.
pub async fn find_thread(db: &Db, thread_id: i64) -> Result<Option<ThreadRow>, AppError> {
    Ok(find_any_thread(db, thread_id).await?.filter(|(_, deleted)| !deleted).map(|(t, _)| t))
}

/// A conversation, deleted or not (and whether it is).
pub async fn find_any_thread(db: &Db, thread_id: i64) -> Result<Option<(ThreadRow, bool)>, AppError> {
    let row: Option<(i64, i64, i64, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT t.id, t.deal_id, t.user_id, t.title, u.email, t.deleted_at FROM chat_threads t \
         JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(thread_id)
    .fetch_optional(&mut db.read().await?)
    .await?;
    Ok(row.map(|(id, deal_id, user_id, title, author, deleted_at)| (ThreadRow { id, deal_id, user_id, title, author }, deleted_at.is_some())))
}

/// A `LIKE` pattern matching `text` anywhere, case-insensitively against a lower-cased
/// column, with `%`, `_` and the escape character itself taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Threads of a deal that are not deleted, newest first: the user's own, or everyone's
/// when `user_id` is None; with `search`, only those whose title or any message holds it.
pub async fn list_threads(db: &Db, deal_id: i64, user_id: Option<i64>, search: Option<&str>) -> Result<Vec<ThreadSummary>, AppError> {
    let pattern = search.map(str::trim).filter(|s| !s.is_empty()).map(contains_pattern);
    let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
        "SELECT t.id, t.title, u.email, t.updated_at, \
                (SELECT COUNT(*) FROM chat_messages m WHERE m.thread_id = t.id) \
         FROM chat_threads t JOIN users u ON u.id = t.user_id \
         WHERE t.deal_id = $1 AND t.deleted_at IS NULL AND ($2 IS NULL OR t.user_id = $2) \
           AND ($3 IS NULL OR LOWER(t.title) LIKE $3 ESCAPE '\\' \
                OR EXISTS (SELECT 1 FROM chat_messages m WHERE m.thread_id = t.id AND LOWER(m.content) LIKE $3 ESCAPE '\\')) \
         ORDER BY t.updated_at DESC, t.id DESC",
    )
    .bind(deal_id)
    .bind(user_id)
    .bind(pattern)
    .fetch_all(&mut db.read().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, title, author, updated_at, messages)| ThreadSummary { id, title, author, updated_at: utc_minute(updated_at), messages })
        .collect())
}

/// Appends Claude's reply (`stopped`: the analyst stopped it early).
pub async fn insert_reply(db: &Db, thread_id: i64, content: &str, usage_id: Option<i64>, stopped: bool) -> Result<i64, AppError> {
    insert(db, thread_id, Speaker::Assistant, content, usage_id, stopped, Kind::Message).await
}

/// Appends Claude's summary of the conversation's messages up to message `through`.
pub async fn insert_summary(db: &Db, thread_id: i64, content: &str, usage_id: Option<i64>, through: i64) -> Result<i64, AppError> {
    insert(db, thread_id, Speaker::Assistant, content, usage_id, false, Kind::Summary { through }).await
}

/// A message, or a summary of the messages up to `through`.
enum Kind {
    Message,
    Summary { through: i64 },
}

/// Stores a message; the database dates its thread's latest activity with it (a
/// trigger), so this is one statement.
async fn insert(db: &Db, thread_id: i64, role: Speaker, content: &str, usage_id: Option<i64>, stopped: bool, kind: Kind) -> Result<i64, AppError> {
    Ok(insert_row(&mut *db.writer().await?, thread_id, role, content, usage_id, stopped, kind, now_millis()).await?)
}

/// A question to store with its call's admission (`store_question`).
#[derive(Clone, Copy, Debug)]
pub struct NewQuestion<'a> {
    pub user_id: i64,
    pub deal_id: i64,
    /// The conversation it continues; None starts one, titled `title`.
    pub thread_id: Option<i64>,
    pub title: &'a str,
    pub text: &'a str,
    pub now: i64,
    /// The user's chat cooldown; 0 for none.
    pub cooldown_ms: i64,
}

/// An analyst's question, as its call's admission stores it in the caller's transaction:
/// the user's chat cooldown claimed (when `cooldown_ms` > 0: their last send at least
/// `cooldown_ms` old, claimed in one statement so two instances cannot both claim it), a
/// thread titled `title` created when `thread_id` is None, and the question appended.
/// Returns the thread and the message — or Err with the milliseconds left of the
/// cooldown, when the caller must roll its transaction back (on SQLite the rows were
/// written with the claim). On SQLite, whose write transaction holds the database, it
/// is one batch: the cooldown read and claimed, the thread, and the message naming the
/// thread by `last_insert_rowid()`; on PostgreSQL one statement
/// (`question_in_one_statement`).
pub async fn store_question(conn: &mut AnyConnection, question: &NewQuestion<'_>) -> Result<Result<(i64, i64), i64>, AppError> {
    use sqlx::FromRow;
    let NewQuestion { user_id, deal_id, thread_id, title, text, now, cooldown_ms } = *question;
    if conn.backend_name() != "SQLite" {
        return question_in_one_statement(conn, question).await;
    }
    let claims = cooldown_ms > 0;
    let mut batch = crate::db::StatementBatch::default();
    if claims {
        batch = batch.then("SELECT last_chat_at FROM users WHERE id = $1", 1).then(CLAIM_COOLDOWN, 3);
    }
    batch = match thread_id {
        Some(_) => batch.then(QUESTION, 3),
        None => batch.then(NEW_THREAD, 4).then(QUESTION_IN_NEW_THREAD, 2),
    };
    let rows = batch
        .fetch(conn, |mut q| {
            if claims {
                q = q.bind(user_id).bind(now).bind(user_id).bind(now - cooldown_ms);
            }
            match thread_id {
                Some(id) => q.bind(id).bind(text).bind(now),
                None => q.bind(deal_id).bind(user_id).bind(title).bind(now).bind(text).bind(now),
            }
        })
        .await?;
    let first = |statement: usize| rows[statement].first().ok_or_else(|| AppError::internal("chat question", "a statement returned no row"));
    if claims {
        // Read under the transaction's write lock: the claim above failed exactly when
        // the last send is within the cooldown.
        let (last,) = <(Option<i64>,)>::from_row(first(0)?)?;
        if let Some(last) = last.filter(|last| *last > now - cooldown_ms) {
            return Ok(Err((last + cooldown_ms - now).max(1)));
        }
    }
    let (message_id, thread) = <(i64, i64)>::from_row(first(rows.len() - 1)?)?;
    if thread_id.is_none() && <(i64,)>::from_row(first(rows.len() - 2)?)?.0 != thread {
        return Err(AppError::internal("chat question", "the question is not in the thread just created"));
    }
    Ok(Ok((thread, message_id)))
}

/// `store_question` on PostgreSQL, in one statement: the cooldown's claim (a CTE) gates
/// the new thread (another), which gates the question; no row back means the claim
/// failed, and only then is the cooldown read for how long is left.
async fn question_in_one_statement(conn: &mut AnyConnection, question: &NewQuestion<'_>) -> Result<Result<(i64, i64), i64>, AppError> {
    use sqlx::FromRow;
    let NewQuestion { user_id, deal_id, thread_id, title, text, now, cooldown_ms } = *question;
    // Parameters: $1 now, $2 the user, $3 the deal or the thread, $4 the text, $5 the
    // title, $6 now less the cooldown; bound up to the last one the statement names.
    let claims = cooldown_ms > 0;
    let mut ctes = Vec::new();
    if claims {
        ctes.push("claim AS (UPDATE users SET last_chat_at = $1 WHERE id = $2 AND (last_chat_at IS NULL OR last_chat_at <= $6) RETURNING id)");
    }
    let gate = if claims { " FROM claim" } else { "" };
    let new_thread = format!("thread AS (INSERT INTO chat_threads (deal_id, user_id, title, created_at, updated_at) SELECT $3, $2, $5, $1, $1{gate} RETURNING id)");
    let (thread, from) = match thread_id {
        Some(_) => ("$3", gate.to_string()),
        None => {
            ctes.push(&new_thread);
            ("thread.id", " FROM thread".to_string())
        }
    };
    let with = if ctes.is_empty() { String::new() } else { format!("WITH {} ", ctes.join(", ")) };
    let sql = format!(
        "{with}INSERT INTO chat_messages (thread_id, role, content, usage_id, created_at, stopped, kind, summary_through) \
         SELECT {thread}, 'user', $4, NULL, $1, 0, 'message', NULL{from} RETURNING id, thread_id"
    );
    let mut query = sqlx::query(&sql).bind(now).bind(user_id).bind(thread_id.unwrap_or(deal_id)).bind(text);
    if claims || thread_id.is_none() {
        query = query.bind(title);
    }
    if claims {
        query = query.bind(now - cooldown_ms);
    }
    let row = query.fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => {
            let (message_id, thread) = <(i64, i64)>::from_row(&row)?;
            Ok(Ok((thread, message_id)))
        }
        None => {
            let (last,): (Option<i64>,) = sqlx::query_as("SELECT last_chat_at FROM users WHERE id = $1").bind(user_id).fetch_one(&mut *conn).await?;
            Ok(Err((last.unwrap_or(now) + cooldown_ms - now).max(1)))
        }
    }
}

const CLAIM_COOLDOWN: &str = "UPDATE users SET last_chat_at = $1 WHERE id = $2 AND (last_chat_at IS NULL OR last_chat_at <= $3)";
const NEW_THREAD: &str = "INSERT INTO chat_threads (deal_id, user_id, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id";
const QUESTION: &str = "INSERT INTO chat_messages (thread_id, role, content, usage_id, created_at, stopped, kind, summary_through) \
     VALUES ($1, 'user', $2, NULL, $3, 0, 'message', NULL) RETURNING id, thread_id";
/// `QUESTION` in the thread the statement before it created.
const QUESTION_IN_NEW_THREAD: &str = "INSERT INTO chat_messages (thread_id, role, content, usage_id, created_at, stopped, kind, summary_through) \
     VALUES (last_insert_rowid(), 'user', $1, NULL, $2, 0, 'message', NULL) RETURNING id, thread_id";

/// Appends Claude's reply, billed in usage record `usage_id`, in the caller's transaction.
pub async fn append_reply(conn: &mut AnyConnection, thread_id: i64, content: &str, usage_id: i64, stopped: bool, now: i64) -> Result<i64, sqlx::Error> {
    insert_row(conn, thread_id, Speaker::Assistant, content, Some(usage_id), stopped, Kind::Message, now).await
}

/// Conversation `thread_id`'s reply stored with usage record `usage_id`, if any.
pub async fn reply_of(conn: &mut AnyConnection, thread_id: i64, usage_id: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM chat_messages WHERE thread_id = $1 AND usage_id = $2 AND role = 'assistant' AND kind = 'message'")
        .bind(thread_id)
        .bind(usage_id)
        .fetch_optional(conn)
        .await
}

/// `append_reply`'s insert, for the statement that writes its usage record
/// (`ReplyWrite::insert`): the record's id is read from `record`.
pub fn reply_insert(thread_id: i64, content: &str, stopped: bool, now: i64) -> ReplyInsert {
    ReplyInsert {
        sql: format!("INSERT INTO chat_messages ({MESSAGE_COLUMNS}) SELECT $1, $2, $3, record.id, $4, $5, $6, CAST(NULL AS BIGINT) FROM record RETURNING id"),
        args: vec![
            SqlArg::Int(thread_id),
            SqlArg::Text(Speaker::Assistant.as_str().to_string()),
            SqlArg::Text(content.to_string()),
            SqlArg::Int(now),
            SqlArg::Int(i64::from(stopped)),
            SqlArg::Text("message".to_string()),
        ],
    }
}

/// Reply `id` as `message` reads it back, from what `append_reply` wrote (`content` at
/// `now`) and the usage record it was written with: no read needed.
pub fn written_reply(id: i64, content: String, now: i64, reply: &ClaudeReply, record: WrittenRecord) -> ChatMessage {
    let u = &reply.usage;
    ChatMessage {
        id,
        role: Speaker::Assistant,
        html: Some(crate::markdown::markdown_to_safe_html(&content)),
        content,
        sent_at: utc_minute(now),
        usage: Some(ReplyUsage {
            model: reply.model.clone(),
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            cost_microusd: record.cost_microusd,
        }),
        stopped: reply.stopped,
        summary: false,
        summary_through: 0,
        pinned: false,
    }
}

/// The columns a new message is written with, in the order `insert_row` and
/// `reply_insert` give them.
const MESSAGE_COLUMNS: &str = "thread_id, role, content, usage_id, created_at, stopped, kind, summary_through";

#[allow(clippy::too_many_arguments)]
async fn insert_row(conn: &mut AnyConnection, thread_id: i64, role: Speaker, content: &str, usage_id: Option<i64>, stopped: bool, kind: Kind, now: i64) -> Result<i64, sqlx::Error> {
    let (kind, through) = match kind {
        Kind::Message => ("message", None),
        Kind::Summary { through } => ("summary", Some(through)),
    };
    let sql = format!("INSERT INTO chat_messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id");
    let (id,): (i64,) = sqlx::query_as(&sql)
        .bind(thread_id)
        .bind(role.as_str())
        .bind(content)
        .bind(usage_id)
        .bind(now)
        .bind(i64::from(stopped))
        .bind(kind)
        .bind(through)
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

/// The oldest `limit` messages of a thread from message `from` on, as turns (what a
/// summary reads: it sums up the earliest messages it has not yet covered).
pub async fn first_turns(db: &Db, thread_id: i64, from: i64, limit: usize) -> Result<Vec<WindowTurn>, AppError> {
    let rows: Vec<(i64, String, String, i64)> =
        sqlx::query_as("SELECT id, role, content, pinned FROM chat_messages WHERE thread_id = $1 AND id >= $2 AND kind = 'message' ORDER BY id LIMIT $3")
            .bind(thread_id)
            .bind(from)
            .bind(limit as i64)
            .fetch_all(&mut db.read().await?)
            .await?;
    rows.into_iter().map(window_turn).collect()
}

fn window_turn((id, role, content, pinned): (i64, String, String, i64)) -> Result<WindowTurn, AppError> {
    let role = Speaker::parse(&role).ok_or_else(|| AppError::internal("unknown chat role", &role))?;
    Ok(WindowTurn { id, turn: Turn { role, content }, pinned: pinned != 0 })
}

/// The newest `limit` messages of a thread as turns, oldest first — only those from
/// message `from` on, when given (the analyst left older ones out, or a summary sums
/// them up) — and how many older ones there are: a send reads only what its window can
/// hold, however long the thread. Summaries are not turns.
pub async fn recent_turns(db: &Db, thread_id: i64, limit: usize, from: Option<i64>) -> Result<(Vec<WindowTurn>, usize), AppError> {
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT id, role, content, pinned FROM chat_messages WHERE thread_id = $1 AND id >= $3 AND kind = 'message' \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(thread_id)
    .bind(limit as i64)
    .bind(from.unwrap_or(0))
    .fetch_all(&mut db.read().await?)
    .await?;
    let older = if rows.len() < limit && from.is_none() {
        0
    } else {
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE thread_id = $1 AND kind = 'message'").bind(thread_id).fetch_one(&mut db.read().await?).await?;
        (total as usize).saturating_sub(rows.len())
    };
    let turns = rows.into_iter().rev().map(window_turn).collect::<Result<Vec<_>, AppError>>()?;
    Ok((turns, older))
}

/// The thread's latest summary: the last message it sums up, and its text.
pub async fn latest_summary(db: &Db, thread_id: i64) -> Result<Option<(i64, String)>, AppError> {
    Ok(sqlx::query_as("SELECT COALESCE(summary_through, id), content FROM chat_messages WHERE thread_id = $1 AND kind = 'summary' ORDER BY id DESC LIMIT 1")
        .bind(thread_id)
        .fetch_optional(&mut db.read().await?)
        .await?)
}

/// The thread's pinned messages before message `before`, oldest first.
pub async fn pinned_before(db: &Db, thread_id: i64, before: i64) -> Result<Vec<Turn>, AppError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT role, content FROM chat_messages WHERE thread_id = $1 AND pinned = 1 AND kind = 'message' AND id < $2 ORDER BY id",
    )
    .bind(thread_id)
    .bind(before)
    .fetch_all(&mut db.read().await?)
    .await?;
    rows.into_iter()
        .map(|(role, content)| Ok(Turn { role: Speaker::parse(&role).ok_or_else(|| AppError::internal("unknown chat role", &role))?, content }))
        .collect()
}

/// The latest summary and every pinned message of a thread, as shown.
pub async fn summary_and_pins(db: &Db, thread_id: i64) -> Result<(Option<ChatMessage>, Vec<ChatMessage>), AppError> {
    let rows: Vec<MessageRow> = sqlx::query_as(&format!(
        "{SELECT_MESSAGE} WHERE m.thread_id = $1 AND (m.pinned = 1 OR m.id = \
         (SELECT MAX(s.id) FROM chat_messages s WHERE s.thread_id = $1 AND s.kind = 'summary')) ORDER BY m.id"
    ))
    .bind(thread_id)
    .fetch_all(&mut db.read().await?)
    .await?;
    let (summaries, pinned): (Vec<ChatMessage>, Vec<ChatMessage>) = messages_from_rows(rows)?.into_iter().partition(|m| m.summary);
    Ok((summaries.into_iter().last(), pinned))
}

/// Pins or unpins one message of a thread; false when the thread has no such message.
pub async fn set_pinned(db: &Db, thread_id: i64, message_id: i64, pinned: bool) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE chat_messages SET pinned = $1 WHERE id = $2 AND thread_id = $3 AND kind = 'message'")
        .bind(i64::from(pinned))
        .bind(message_id)
        .bind(thread_id)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Asks whichever instance streams the reply to question `message_id` of this thread to
/// stop it. False when the thread has no such question.
pub async fn request_stop(db: &Db, thread_id: i64, message_id: i64) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE chat_messages SET stop_requested = 1 WHERE id = $1 AND thread_id = $2 AND role = 'user' AND kind = 'message'")
        .bind(message_id)
        .bind(thread_id)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a Stop was asked for the reply to question `message_id`.
pub async fn stop_requested(db: &Db, message_id: i64) -> Result<bool, AppError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT stop_requested FROM chat_messages WHERE id = $1").bind(message_id).fetch_optional(&mut db.read().await?).await?;
    Ok(row.is_some_and(|r| r.0 != 0))
}

/// A message as read, with the usage of Claude's reply from the ledger (None for the
/// analyst's messages, and for a reply whose usage could not be recorded).
#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    role: String,
    content: String,
    created_at: i64,
    stopped: i64,
    kind: String,
    pinned: i64,
    through: i64,
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_creation_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cost_microusd: Option<i64>,
}

/// Messages with their usage, in one statement (a `WHERE` on `m.` columns follows).
const SELECT_MESSAGE: &str = "SELECT m.id, m.role, m.content, m.created_at, m.stopped, m.kind, m.pinned, \
     COALESCE(m.summary_through, m.id) AS through, r.model, r.input_tokens, r.output_tokens, r.cache_creation_tokens, \
     r.cache_read_tokens, r.cost_microusd FROM chat_messages m LEFT JOIN usage_records r ON r.id = m.usage_id";

fn messages_from_rows(rows: Vec<MessageRow>) -> Result<Vec<ChatMessage>, AppError> {
    let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
    rows.into_iter()
        .map(|r| {
            let role = Speaker::parse(&r.role).ok_or_else(|| AppError::internal("unknown chat role", &r.role))?;
            let html = (role == Speaker::Assistant).then(|| crate::markdown::markdown_to_safe_html(&r.content));
            let usage = r.model.map(|model| ReplyUsage {
                model,
                input_tokens: n(r.input_tokens),
                output_tokens: n(r.output_tokens),
                cache_creation_input_tokens: n(r.cache_creation_tokens),
                cache_read_input_tokens: n(r.cache_read_tokens),
                cost_microusd: r.cost_microusd.unwrap_or(0),
            });
            let summary = r.kind == "summary";
            Ok(ChatMessage {
                id: r.id,
                role,
                content: r.content,
                sent_at: utc_minute(r.created_at),
                usage,
                html,
                stopped: r.stopped != 0,
                summary,
                summary_through: if summary { r.through } else { 0 },
                pinned: r.pinned != 0,
            })
        })
        .collect()
}

/// One page of a thread: the newest `limit` messages older than `before` (a message id;
/// None for the newest), oldest first, and whether there are earlier ones.
pub async fn thread_messages(db: &Db, thread_id: i64, before: Option<i64>, limit: usize) -> Result<(Vec<ChatMessage>, bool), AppError> {
    let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
        "{SELECT_MESSAGE} WHERE m.thread_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3"
    ))
    .bind(thread_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit as i64 + 1)
    .fetch_all(&mut db.read().await?)
    .await?;
    let has_earlier = rows.len() > limit;
    rows.truncate(limit);
    rows.reverse();
    Ok((messages_from_rows(rows)?, has_earlier))
}

pub async fn message(db: &Db, id: i64) -> Result<ChatMessage, AppError> {
    let row: MessageRow = sqlx::query_as(&format!("{SELECT_MESSAGE} WHERE m.id = $1")).bind(id).fetch_one(&mut db.read().await?).await?;
    messages_from_rows(vec![row])?.pop().ok_or_else(|| AppError::internal("chat message", "row vanished"))
}

/// The user's most recently updated conversation on a deal that is not deleted.
pub async fn latest_thread(db: &Db, deal_id: i64, user_id: i64) -> Result<Option<i64>, AppError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM chat_threads WHERE deal_id = $1 AND user_id = $2 AND deleted_at IS NULL ORDER BY updated_at DESC, id DESC LIMIT 1",
    )
    .bind(deal_id)
    .bind(user_id)
    .fetch_optional(&mut db.read().await?)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// The analyst renames a conversation: from then on Claude never retitles it
/// (`titled_at_messages` -1).
pub async fn rename_thread(db: &Db, thread_id: i64, title: &str) -> Result<(), AppError> {
    sqlx::query("UPDATE chat_threads SET title = $1, titled_at_messages = -1 WHERE id = $2").bind(title).bind(thread_id).execute(&mut *db.writer().await?).await?;
    Ok(())
}

/// Claude's title replaces `old` — unless the analyst renamed the conversation while
/// Claude was writing. Whether it did.
pub async fn retitle_thread(db: &Db, thread_id: i64, old: &str, title: &str) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE chat_threads SET title = $1 WHERE id = $2 AND title = $3 AND titled_at_messages >= 0")
        .bind(title)
        .bind(thread_id)
        .bind(old)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Hides a conversation (`deleted`) or brings it back.
pub async fn set_thread_deleted(db: &Db, thread_id: i64, deleted: bool) -> Result<(), AppError> {
    sqlx::query("UPDATE chat_threads SET deleted_at = $1 WHERE id = $2")
        .bind(deleted.then(now_millis))
        .bind(thread_id)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(())
}

/// How many messages a conversation has, and how many it had when Claude last titled it.
pub async fn title_state(db: &Db, thread_id: i64) -> Result<(i64, i64), AppError> {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM chat_messages m WHERE m.thread_id = t.id AND m.kind = 'message'), t.titled_at_messages FROM chat_threads t WHERE t.id = $1",
    )
    .bind(thread_id)
    .fetch_one(&mut db.read().await?)
    .await?;
    Ok(row)
}

/// Claims the titling of a conversation at `messages` messages: true for the one caller
/// that moves the mark there (one statement, so two instances never both title it);
/// never for a conversation the analyst has named.
pub async fn claim_title(db: &Db, thread_id: i64, messages: i64) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE chat_threads SET titled_at_messages = $1 WHERE id = $2 AND titled_at_messages >= 0 AND titled_at_messages < $1")
        .bind(messages)
        .bind(thread_id)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("Cap Rate"), "%cap rate%");
        assert_eq!(contains_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
