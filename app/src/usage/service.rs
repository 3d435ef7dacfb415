//! Usage reports from the daily aggregates (never the raw records), so the dashboard and
//! the usage API stay fast however many records there are.

use super::store::{self, Grouping, ReportRow, RollupScope};
use super::{Dashboard, Dimension, GroupBy, RefusalRow, UsageReport, UsageRow, UsageSums};
use crate::db::Db;
use crate::error::AppError;
use crate::state::AppState;

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
        return Err(AppError::invalid(format!("The range starts on {from}, after it ends on {to}: choose a start on or before the end.")));
    }
    if (to - from).num_days() > MAX_RANGE_DAYS {
        return Err(AppError::invalid(format!("A report covers at most {MAX_RANGE_DAYS} days.")));
    }
    Ok((from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string()))
}

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

/// How each grouping is written over the fine aggregates and over the rollups of a
/// scope. A scope's own dimension (users within one user's usage) is not rolled up: its
/// one group sums the operation rollups, keyed by the scope's id.
fn grouping(group_by: GroupBy, scope: RollupScope) -> Grouping {
    let g = |daily_key, daily_join, rollup_dimension, rollup_key, rollup_join, label| Grouping { daily_key, daily_join, rollup_dimension, rollup_key, rollup_join, label };
    match (group_by, scope) {
        (GroupBy::User, RollupScope::User) => {
            g("a.user_id", "LEFT JOIN users u ON u.id = k.key", Dimension::Operation, "a.scope_id", "LEFT JOIN users u ON u.id = k.key", "u.email")
        }
        (GroupBy::User, _) => g(
            "a.user_id",
            "LEFT JOIN users u ON u.id = k.key",
            Dimension::User,
            "a.key",
            "LEFT JOIN users u ON u.id = CAST(k.key AS BIGINT)",
            "u.email",
        ),
        (GroupBy::Deal, RollupScope::Deal) => {
            g("a.deal_id", "LEFT JOIN deals d ON d.id = k.key", Dimension::Operation, "a.scope_id", "LEFT JOIN deals d ON d.id = k.key", "d.name")
        }
        (GroupBy::Deal, _) => g(
            "a.deal_id",
            "LEFT JOIN deals d ON d.id = k.key",
            Dimension::Deal,
            "a.key",
            "LEFT JOIN deals d ON d.id = CAST(k.key AS BIGINT)",
            "d.name",
        ),
        // Every record is in exactly one operation rollup: summing those per day counts each once.
        (GroupBy::Day, _) => g("a.day", "", Dimension::Operation, "a.day", "", "k.key"),
        (GroupBy::Model, _) => g("a.model", "", Dimension::Model, "a.key", "", "k.key"),
        (GroupBy::Operation, _) => g("a.operation", "", Dimension::Operation, "a.key", "", "k.key"),
    }
}

/// Usage between `from` and `to` (inclusive local days), grouped by `group_by`: from the
/// rollups of the firm, or of the one user or deal the report is narrowed to; narrowed
/// to a user AND a deal, from the fine aggregates (a few rows a day for the pair).
pub async fn usage_report(db: &Db, group_by: GroupBy, from: &str, to: &str, filter: Filter) -> Result<UsageReport, AppError> {
    let (scope, scope_id) = match filter {
        Filter { user_id: None, deal_id: None } => (RollupScope::Firm, 0),
        Filter { user_id: Some(user), deal_id: None } => (RollupScope::User, user),
        Filter { user_id: None, deal_id: Some(deal) } => (RollupScope::Deal, deal),
        Filter { user_id: Some(user), deal_id: Some(deal) } => {
            let rows = store::daily_report(db, &grouping(group_by, RollupScope::Firm), from, to, Some(user), Some(deal)).await?;
            return Ok(into_report(group_by, from, to, rows));
        }
    };
    let rows = store::rollup_report(db, &grouping(group_by, scope), scope, scope_id, from, to).await?;
    Ok(into_report(group_by, from, to, rows))
}

fn into_report(group_by: GroupBy, from: &str, to: &str, rows: Vec<ReportRow>) -> UsageReport {
    let mut totals = UsageSums::default();
    let rows = rows
        .into_iter()
        .map(|(key, label, sums)| {
            let [calls, failed_calls, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls, unknown_usage_calls, savings_microusd] = sums;
            let sums = UsageSums {
                calls,
                failed_calls,
                input_tokens,
                output_tokens,
                cache_creation_tokens,
                cache_read_tokens,
                cost_microusd,
                default_priced_calls,
                unknown_usage_calls,
                savings_microusd,
            };
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

/// Everything `/admin/tokens` shows for one range: the five groupings. The page and the
/// benchmark both call this.
/// The month's projection for the firm (or the focused user), when `to` is today; none
/// for a deal (its budget is for life: the deal page shows where it is heading).
async fn month_projection(state: &AppState, to: &str, filter: Filter) -> Result<Option<super::MonthProjection>, AppError> {
    let now = crate::time::now_millis();
    let zone = state.settings.time.tz();
    let today = crate::time::local_day(now, zone);
    if to != today || filter.deal_id.is_some() {
        return Ok(None);
    }
    let (scope, id) = filter.user_id.map_or(("firm", 0), |user| ("user", user));
    let month_key = match scope {
        "user" => super::CounterKey::user_month(id, &today),
        _ => super::CounterKey::firm(super::Window::Month, now, &today),
    };
    let mut conn = state.db.read().await?;
    let (_, month_to_date) = store::counter(&mut conn, &month_key).await?;
    conn.ended_well();
    drop(conn);
    let window = state.settings.alerts.burn_window_days;
    let days = crate::time::days_before(now, zone, window);
    let history: Vec<u64> = past_days(state, scope, id, &days).await?.into_iter().map(|(_, cost)| cost).collect();
    let (_, month_end) = crate::time::month_bounds(now, zone);
    let f = crate::forecast::forecast(month_to_date.max(0) as u64, u64::MAX, &history, window, now, Some(month_end), zone);
    Ok(Some(super::MonthProjection {
        month: super::month_of(&today).to_string(),
        month_to_date_microusd: month_to_date,
        per_day_microusd: f.per_day as i64,
        month_end_microusd: f.at_period_end.unwrap_or(month_to_date.max(0) as u64) as i64,
    }))
}

/// A scope's daily counters on `days` (the burn window, all before today), as this
/// instance keeps them between checks (`PastDays`), else read.
pub async fn past_days(state: &AppState, scope: &'static str, id: i64, days: &[String]) -> Result<Vec<(u64, u64)>, sqlx::Error> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else { return Ok(Vec::new()) };
    let key = crate::forecast::PastKey { scope, id, first: first.clone(), last: last.clone() };
    if let Some(kept) = state.past_days.get(&key, std::time::Instant::now()) {
        return Ok(kept);
    }
    let read = store::daily_counters(&state.db, scope, id, days).await?;
    state.past_days.keep(key, read.clone(), std::time::Instant::now());
    Ok(read)
}

pub async fn dashboard(state: &AppState, from: &str, to: &str, filter: Filter) -> Result<Dashboard, AppError> {
    let db = &state.db;
    let focus = match filter {
        Filter { user_id: Some(id), .. } => Some(store::user_email(db, id).await?.ok_or_else(|| AppError::not_found("user"))?),
        Filter { deal_id: Some(id), .. } => Some(store::deal_name(db, id).await?.ok_or_else(|| AppError::not_found("deal"))?),
        _ => None,
    };
    let projection = month_projection(state, to, filter).await?;
    let refusals = store::refusals(db, from, to, filter.user_id, filter.deal_id)
        .await?
        .into_iter()
        .map(|(user_id, user, deal_id, deal, kind, count, latest)| RefusalRow { user_id, user, deal_id, deal, kind, count, latest: crate::time::utc_minute(latest) })
        .collect();
    Ok(Dashboard {
        projection,
        refusals,
        by_user: usage_report(db, GroupBy::User, from, to, filter).await?,
        by_deal: usage_report(db, GroupBy::Deal, from, to, filter).await?,
        by_day: usage_report(db, GroupBy::Day, from, to, filter).await?,
        by_model: usage_report(db, GroupBy::Model, from, to, filter).await?,
        by_operation: usage_report(db, GroupBy::Operation, from, to, filter).await?,
        from: from.to_string(),
        to: to.to_string(),
        focus,
    })
}

/// Records a call refused before reaching Claude, when the refusal is one a budget, cap,
/// rate limit, cooldown or size limit made; anything else is not a refusal. Never fails
/// the caller: a lost event is logged.
pub async fn record_refusal(state: &AppState, user_id: i64, deal_id: Option<i64>, operation: &str, kind: crate::error::ErrorKind) {
    use crate::error::ErrorKind as K;
    if !matches!(kind, K::DailyLimitReached | K::DealBudgetExhausted | K::MonthlyBudgetReached | K::FirmCapReached | K::RateLimited | K::Cooldown | K::TooLong) {
        return;
    }
    let now = crate::time::now_millis();
    let day = crate::time::local_day(now, state.settings.time.tz());
    if let Err(err) = store::insert_refusal(&state.db, user_id, deal_id, operation, kind.as_str(), now, &day).await {
        tracing::warn!(%err, user_id, kind = kind.as_str(), "could not record a refused call");
    }
}
