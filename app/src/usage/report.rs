//! Usage reports from the daily aggregates (never the raw records), so the dashboard and
//! the usage API stay fast however many records there are.

use super::api::Dashboard;
use super::{GroupBy, UsageReport, UsageRow, UsageSums};
use crate::budget::BudgetState;
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
    if filter == Filter::default() {
        return rollup_report(db, group_by, from, to).await;
    }
    // Narrowed to one user or deal: the fine aggregates, through their (user, day) and
    // (deal, day) indexes. Each grouping: its key as text, its label, the label's join.
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
    Ok(into_report(group_by, from, to, rows))
}

/// The unfiltered report from the per-dimension rollups: a few rows per day.
async fn rollup_report(db: &Db, group_by: GroupBy, from: &str, to: &str) -> Result<UsageReport, AppError> {
    let (dimension, key, label, join) = match group_by {
        GroupBy::User => ("user", "a.key", "u.email", "LEFT JOIN users u ON CAST(u.id AS TEXT) = a.key"),
        GroupBy::Deal => ("deal", "a.key", "d.name", "LEFT JOIN deals d ON CAST(d.id AS TEXT) = a.key"),
        // Every record is in exactly one operation row: summing those per day counts each once.
        GroupBy::Day => ("operation", "a.day", "a.day", ""),
        GroupBy::Model => ("model", "a.key", "a.key", ""),
        GroupBy::Operation => ("operation", "a.key", "a.key", ""),
    };
    let sql = format!(
        "SELECT {key}, {label}, {SUMS} FROM usage_rollup a {join} \
         WHERE a.dimension = $1 AND a.day >= $2 AND a.day <= $3 GROUP BY {key}, {label} ORDER BY {key}"
    );
    let rows: Vec<SumsRow> = sqlx::query_as(&sql).bind(dimension).bind(from).bind(to).fetch_all(&db.pool).await?;
    Ok(into_report(group_by, from, to, rows))
}

fn into_report(group_by: GroupBy, from: &str, to: &str, rows: Vec<SumsRow>) -> UsageReport {
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
    UsageReport { group_by, from: from.to_string(), to: to.to_string(), rows, totals }
}

/// Everything `/admin/tokens` shows for one range: the five groupings and the budget
/// flags. The page and the benchmark both call this.
pub async fn dashboard(db: &Db, settings: &crate::settings::Settings, from: &str, to: &str, filter: Filter) -> Result<Dashboard, AppError> {
    let focus = match filter {
        Filter { user_id: Some(id), .. } => Some(name_of(db, "SELECT email FROM users WHERE id = $1", id).await?),
        Filter { deal_id: Some(id), .. } => Some(name_of(db, "SELECT name FROM deals WHERE id = $1", id).await?),
        _ => None,
    };
    let (flagged_users, flagged_deals) = flags(db, settings).await?;
    Ok(Dashboard {
        by_user: usage_report(db, GroupBy::User, from, to, filter).await?,
        by_deal: usage_report(db, GroupBy::Deal, from, to, filter).await?,
        by_day: usage_report(db, GroupBy::Day, from, to, filter).await?,
        by_model: usage_report(db, GroupBy::Model, from, to, filter).await?,
        by_operation: usage_report(db, GroupBy::Operation, from, to, filter).await?,
        from: from.to_string(),
        to: to.to_string(),
        focus,
        flagged_users,
        flagged_deals,
    })
}

async fn name_of(db: &Db, sql: &str, id: i64) -> Result<String, AppError> {
    let row: Option<(String,)> = sqlx::query_as(sql).bind(id).fetch_optional(&db.pool).await?;
    row.map(|(name,)| name).ok_or_else(|| AppError::not_found("user or deal"))
}

/// Budget standing from the aggregates: analysts against today's daily budget (admins
/// are exempt), deals against their lifetime budget.
async fn flags(db: &Db, settings: &crate::settings::Settings) -> Result<(Vec<(String, BudgetState)>, Vec<(String, BudgetState)>), AppError> {
    use crate::budget::Meter;
    let s = &settings.budget;
    let today = super::tracker::local_day(crate::db::now_millis(), settings.time.tz());
    let tokens = "CAST(COALESCE(SUM(a.input_tokens + a.output_tokens + a.cache_creation_tokens + a.cache_read_tokens), 0) AS BIGINT)";
    // From the rollups: a row per user today, a few rows per deal and day.
    let users: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(&format!(
        "SELECT u.id, u.daily_token_budget, {tokens} FROM users u JOIN usage_rollup a ON a.key = CAST(u.id AS TEXT) \
         WHERE a.dimension = 'user' AND a.day = $1 AND u.role = 'analyst' GROUP BY u.id, u.daily_token_budget"
    ))
    .bind(&today)
    .fetch_all(&db.pool)
    .await?;
    let deals: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(&format!(
        "SELECT d.id, d.token_budget, {tokens} FROM deals d JOIN usage_rollup a ON a.key = CAST(d.id AS TEXT) \
         WHERE a.dimension = 'deal' GROUP BY d.id, d.token_budget"
    ))
    .fetch_all(&db.pool)
    .await?;
    let flag = |rows: Vec<(i64, Option<i64>, i64)>, default: u64| -> Vec<(String, BudgetState)> {
        rows.into_iter()
            .filter_map(|(id, limit, used)| {
                let meter = Meter { used: used.max(0) as u64, reserved: 0, limit: limit.map_or(default, |l| l.max(0) as u64) };
                let state = meter.state(s.warn_ratio);
                (state != BudgetState::Ok).then(|| (id.to_string(), state))
            })
            .collect()
    };
    Ok((flag(users, s.user_daily_tokens), flag(deals, s.deal_tokens)))
}
