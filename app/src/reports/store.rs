//! Memo versions in the database; tokens and cost come from the call's usage record.

use super::ReportVersion;
use super::render::markdown_to_safe_html;
use crate::chat::store::minute;
use crate::db::{Db, now_millis};
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
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

/// Every version of the deal's memo, newest first, numbered from 1.
pub async fn list(db: &Db, deal_id: i64) -> Result<Vec<ReportVersion>, AppError> {
    let rows: Vec<(i64, i64, String, String, Option<String>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, i64)> =
        sqlx::query_as(
            "SELECT r.id, r.created_at, u.email, r.markdown, x.model, x.input_tokens, x.cache_creation_tokens, \
             x.cache_read_tokens, x.output_tokens, x.cost_microusd, \
             (SELECT COUNT(*) FROM reports o WHERE o.deal_id = r.deal_id AND o.id <= r.id) \
             FROM reports r JOIN users u ON u.id = r.author_id LEFT JOIN usage_records x ON x.id = r.usage_id \
             WHERE r.deal_id = $1 ORDER BY r.id DESC",
        )
        .bind(deal_id)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, created_at, author, markdown, model, input, cache_w, cache_r, output, cost, version)| ReportVersion {
            id,
            version,
            created_at: minute(created_at),
            author,
            model: model.unwrap_or_default(),
            input_tokens: (input.unwrap_or(0) + cache_w.unwrap_or(0) + cache_r.unwrap_or(0)).max(0) as u64,
            output_tokens: output.unwrap_or(0).max(0) as u64,
            cost_microusd: cost.unwrap_or(0),
            html: markdown_to_safe_html(&markdown),
        })
        .collect())
}
