//! The audit log's table.

use sqlx::AnyConnection;

use super::{Actor, AuditEntry, AuditPage};
use crate::db::Db;
use crate::time::utc_minute;

/// One change, written on the caller's connection (inside the change's transaction).
pub async fn record(conn: &mut AnyConnection, actor: &Actor, at: i64, subject: &str, old_value: &str, new_value: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (actor_id, actor, at, subject, old_value, new_value) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(actor.id)
        .bind(actor.name.as_str())
        .bind(at)
        .bind(subject)
        .bind(old_value)
        .bind(new_value)
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` entries older than `before` (an id), newest first.
pub async fn page(db: &Db, before: Option<i64>, limit: i64) -> Result<AuditPage, sqlx::Error> {
    let rows: Vec<(i64, String, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, actor, at, subject, old_value, new_value FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit + 1)
    .fetch_all(&db.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(|(id, actor, at, subject, old_value, new_value)| AuditEntry { id, actor, at: utc_minute(at), subject, old_value, new_value })
        .collect();
    let next_before = if more { entries.last().map(|e| e.id) } else { None };
    Ok(AuditPage { entries, next_before })
}
