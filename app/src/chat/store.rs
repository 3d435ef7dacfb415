//! Chat threads and messages in the database.

use super::{ChatMessage, ThreadSummary};
use crate::claude::Role;
use crate::claude::history::Turn;
use crate::db::{Db, now_millis};
use crate::error::AppError;
use crate::usage::ReplyUsage;

pub struct ThreadRow {
    pub id: i64,
    pub deal_id: i64,
    pub user_id: i64,
    pub title: String,
    pub author: String,
}

pub fn minute(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

pub async fn create_thread(db: &Db, deal_id: i64, user_id: i64, title: &str) -> Result<i64, AppError> {
    let now = now_millis();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO chat_threads (deal_id, user_id, title, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(deal_id)
    .bind(user_id)
    .bind(title)
    .bind(now)
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

pub async fn find_thread(db: &Db, thread_id: i64) -> Result<Option<ThreadRow>, AppError> {
    let row: Option<(i64, i64, i64, String, String)> = sqlx::query_as(
        "SELECT t.id, t.deal_id, t.user_id, t.title, u.email FROM chat_threads t \
         JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(thread_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(id, deal_id, user_id, title, author)| ThreadRow { id, deal_id, user_id, title, author }))
}

/// Threads of a deal, newest first: the user's own, or everyone's when `user_id` is None.
pub async fn list_threads(db: &Db, deal_id: i64, user_id: Option<i64>) -> Result<Vec<ThreadSummary>, AppError> {
    let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
        "SELECT t.id, t.title, u.email, t.updated_at, \
                (SELECT COUNT(*) FROM chat_messages m WHERE m.thread_id = t.id) \
         FROM chat_threads t JOIN users u ON u.id = t.user_id \
         WHERE t.deal_id = $1 AND ($2 IS NULL OR t.user_id = $2) \
         ORDER BY t.updated_at DESC, t.id DESC",
    )
    .bind(deal_id)
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, title, author, updated_at, messages)| ThreadSummary { id, title, author, updated_at: minute(updated_at), messages })
        .collect())
}

/// Appends a message and marks the thread as just updated; returns the message id.
pub async fn insert_message(db: &Db, thread_id: i64, role: Role, content: &str, usage_id: Option<i64>) -> Result<i64, AppError> {
    let now = now_millis();
    let mut tx = db.pool.begin().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO chat_messages (thread_id, role, content, usage_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(thread_id)
    .bind(role.as_str())
    .bind(content)
    .bind(usage_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE chat_threads SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(thread_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The whole thread as turns, oldest first.
pub async fn thread_turns(db: &Db, thread_id: i64) -> Result<Vec<Turn>, AppError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT role, content FROM chat_messages WHERE thread_id = $1 ORDER BY id")
            .bind(thread_id)
            .fetch_all(&db.pool)
            .await?;
    rows.into_iter()
        .map(|(role, content)| {
            let role = Role::parse(&role).ok_or_else(|| AppError::internal("unknown chat role", &role))?;
            Ok(Turn { role, content })
        })
        .collect()
}

type MessageTuple = (i64, String, String, i64, Option<String>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

const SELECT_MESSAGE: &str = "SELECT m.id, m.role, m.content, m.created_at, r.model, r.input_tokens, \
     r.output_tokens, r.cache_creation_tokens, r.cache_read_tokens, r.cost_microusd \
     FROM chat_messages m LEFT JOIN usage_records r ON r.id = m.usage_id";

fn message_from_row(row: MessageTuple) -> Result<ChatMessage, AppError> {
    let (id, role, content, created_at, model, input, output, cache_creation, cache_read, cost) = row;
    let role = Role::parse(&role).ok_or_else(|| AppError::internal("unknown chat role", &role))?;
    let usage = model.map(|model| ReplyUsage {
        model,
        input_tokens: input.unwrap_or(0) as u64,
        output_tokens: output.unwrap_or(0) as u64,
        cache_creation_input_tokens: cache_creation.unwrap_or(0) as u64,
        cache_read_input_tokens: cache_read.unwrap_or(0) as u64,
        cost_microusd: cost.unwrap_or(0),
    });
    Ok(ChatMessage { id, role, content, sent_at: minute(created_at), usage })
}

pub async fn thread_messages(db: &Db, thread_id: i64) -> Result<Vec<ChatMessage>, AppError> {
    let rows: Vec<MessageTuple> = sqlx::query_as(&format!("{SELECT_MESSAGE} WHERE m.thread_id = $1 ORDER BY m.id"))
        .bind(thread_id)
        .fetch_all(&db.pool)
        .await?;
    rows.into_iter().map(message_from_row).collect()
}

pub async fn message(db: &Db, id: i64) -> Result<ChatMessage, AppError> {
    let row: MessageTuple = sqlx::query_as(&format!("{SELECT_MESSAGE} WHERE m.id = $1"))
        .bind(id)
        .fetch_one(&db.pool)
        .await?;
    message_from_row(row)
}
