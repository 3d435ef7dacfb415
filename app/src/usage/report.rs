//! Usage reports from the daily aggregates (never the raw records), so the dashboard and
//! the usage API stay fast however many records there are.

use super::{GroupBy, UsageReport, UsageRow, UsageSums};
use crate::db::Db;
use crate::error::AppError;

/// Longest range one report covers.
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// Parses and checks a `from`/`to` pair of `YYYY-MM-DD` days; both default to the last
/// 30 days ending `today`.
pub fn date_range(from: Option<&str>, to: Option<&str>, today: chrono::NaiveDate) -> Result<(String, String), AppError> {
    use chrono::NaiveDate;
    let parse = |name: &str, text: &str| {
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| AppError::invalid(format!("`{name}` must be a date as YYYY-MM-DD, not \"{text}\".")))
    };
    let to = match to.filter(|t| !t.trim().is_empty()) {
        Some(text) => parse("to", text)?,
        None => today,
    };
    let from = match from.filter(|f| !f.trim().is_empty()) {
        Some(text) => parse("from", text)?,
        None => to - chrono::Duration::days(29),
    };
    if from > to {
        return Err(AppError::invalid("`from` must not be after `to`."));
    }
    if (to - from).num_days() > MAX_RANGE_DAYS {
        return Err(AppError::invalid(format!("A report covers at most {MAX_RANGE_DAYS} days.")));
    }
    Ok((from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string()))
}

const SUMS: &str = "CAST(SUM(a.calls) AS BIGINT), CAST(SUM(a.failed_calls) AS BIGINT), \
     CAST(SUM(a.input_tokens) AS BIGINT), CAST(SUM(a.output_tokens) AS BIGINT), \
     CAST(SUM(a.cache_creation_tokens) AS BIGINT), CAST(SUM(a.cache_read_tokens) AS BIGINT), \
     CAST(SUM(a.cost_microusd) AS BIGINT), CAST(SUM(a.default_priced_calls) AS BIGINT)";

type SumsRow = (String, Option<String>, i64, i64, i64, i64, i64, i64, i64, i64);

/// Narrows a report to one user's or one deal's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub user_id: Option<i64>,
    pub deal_id: Option<i64>,
}

impl Filter {
    /// From the `user` and `deal` query fields; empty means no filter.
    pub fn parse(user: &str, deal: &str) -> Result<Filter, AppError> {
        let id = |name: &str, text: &str| -> Result<Option<i64>, AppError> {
            match text.trim() {
                "" => Ok(None),
                t => t.parse().map(Some).map_err(|_| AppError::invalid(format!("`{name}` must be an id."))),
            }
        };
        Ok(Filter { user_id: id("user", user)?, deal_id: id("deal", deal)? })
    }
}

/// Usage between `from` and `to` (inclusive local days), grouped by `group_by`.
pub async fn usage_report(db: &Db, group_by: GroupBy, from: &str, to: &str, filter: Filter) -> Result<UsageReport, AppError> {
    // Each grouping: its key as text, its label, and the join that supplies the label.
    let (key, label, join) = match group_by {
        GroupBy::User => ("CAST(a.user_id AS TEXT)", "u.email", "LEFT JOIN users u ON u.id = a.user_id"),
        GroupBy::Deal => ("CAST(a.deal_id AS TEXT)", "d.name", "LEFT JOIN deals d ON d.id = a.deal_id"),
        GroupBy::Day => ("a.day", "a.day", ""),
        GroupBy::Model => ("a.model", "a.model", ""),
        GroupBy::Operation => ("a.operation", "a.operation", ""),
    };
    // Absent filters bind NULL and match everything.
    let sql = format!(
        "SELECT {key}, {label}, {SUMS} FROM usage_daily a {join} \
         WHERE a.day >= $1 AND a.day <= $2 AND ($3 IS NULL OR a.user_id = $3) AND ($4 IS NULL OR a.deal_id = $4) \
         GROUP BY {key}, {label} ORDER BY {key}"
    );
    let rows: Vec<SumsRow> = sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .bind(filter.user_id)
        .bind(filter.deal_id)
        .fetch_all(&db.pool)
        .await?;
    let mut totals = UsageSums::default();
    let rows = rows
        .into_iter()
        .map(|(key, label, calls, failed_calls, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls)| {
            let sums = UsageSums { calls, failed_calls, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls };
            totals.add(&sums);
            let label = match (group_by, label) {
                (GroupBy::Deal, _) if key == "0" => "(no deal)".to_string(),
                (_, Some(label)) => label,
                (_, None) => format!("#{key} (deleted)"),
            };
            UsageRow { key, label, sums }
        })
        .collect();
    Ok(UsageReport { group_by, from: from.to_string(), to: to.to_string(), rows, totals })
}
