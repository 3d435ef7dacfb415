//! Memo versions in the database; tokens and cost come from the call's usage record.

use super::ReportVersion;
use crate::markdown::markdown_to_safe_html;
use crate::db::Db;
use crate::time::{now_millis, utc_minute};
use crate::error::AppError;

pub async fn insert(db: &Db, deal_id: i64, author_id: i64, markdown: &str, usage_id: Option<i64>) -> Result<i64, AppError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO reports (deal_id, author_id, markdown, usage_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(deal_id)
    .bind(author_id)
    .bind(markdown)
    .bind(usage_id)
    .bind(now_millis())
    .fetch_one(&mut *db.writer().await?)
    .await?;
    Ok(id)
}

/// Every version of the deal's memo, newest first, numbered from 1, with the tokens,
/// cost and model of the call that wrote it (from the ledger).
pub async fn list(db: &Db, deal_id: i64) -> Result<Vec<ReportVersion>, AppError> {
    versions(db, deal_id, None).await
}

/// One version of a deal's memo, numbered as in the list.
pub async fn get(db: &Db, deal_id: i64, report_id: i64) -> Result<Option<ReportVersion>, AppError> {
    Ok(versions(db, deal_id, Some(report_id)).await?.pop())
}

async fn versions(db: &Db, deal_id: i64, only: Option<i64>) -> Result<Vec<ReportVersion>, AppError> {
    let rows: Vec<(i64, i64, String, String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT r.id, r.created_at, u.email, r.markdown, r.usage_id, \
         (SELECT COUNT(*) FROM reports o WHERE o.deal_id = r.deal_id AND o.id <= r.id) \
         FROM reports r JOIN users u ON u.id = r.author_id WHERE r.deal_id = $1 AND r.id >= $2 AND r.id <= $3 ORDER BY r.id DESC",
    )
    .bind(deal_id)
    .bind(only.unwrap_or(i64::MIN))
    .bind(only.unwrap_or(i64::MAX))
    .fetch_all(&db.pool)
    .await?;
    let usage_ids: Vec<i64> = rows.iter().filter_map(|r| r.4).collect();
    let usage = crate::usage::store::reply_usage(db, &usage_ids).await?;
    Ok(rows
        .into_iter()
        .map(|(id, created_at, author, markdown, usage_id, version)| {
            let u = usage_id.and_then(|u| usage.get(&u));
            ReportVersion {
                id,
                version,
                created_at: utc_minute(created_at),
                author,
                model: u.map(|u| u.model.clone()).unwrap_or_default(),
                input_tokens: u.map_or(0, |u| u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens),
                output_tokens: u.map_or(0, |u| u.output_tokens),
                cost_microusd: u.map_or(0, |u| u.cost_microusd),
                html: markdown_to_safe_html(&markdown),
                markdown,
                limited: None,
            }
        })
        .collect())
}

/// The deal a memo version belongs to, if the version exists.
pub async fn deal_of(db: &Db, report_id: i64) -> Result<Option<i64>, AppError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT deal_id FROM reports WHERE id = $1").bind(report_id).fetch_optional(&db.pool).await?;
    Ok(row.map(|(deal_id,)| deal_id))
}
