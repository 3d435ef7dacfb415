//! The usage tracker: the single interface through which every operation's Claude
//! attempts are recorded, with cost computed from the rates in force at that moment.

use std::sync::Arc;

use crate::claude::Outcome;
use crate::claude::client::CallMeta;
use crate::claude::pricing::{PriceTable, TokenUsage, cost_microusd};
use crate::db::{Db, now_millis};
use crate::error::AppError;

/// What one attempt produced, before pricing.
#[derive(Clone, Debug)]
pub struct AttemptReport {
    pub model: String,
    pub usage: TokenUsage,
    pub latency_ms: u64,
    pub outcome: Outcome,
    pub request_id: Option<String>,
}

pub const DAILY_INSERT: &str = "INSERT INTO usage_daily (day, user_id, deal_id, model, operation, calls, failed_calls, \
     input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls)";
pub const ROLLUP_INSERT: &str = "INSERT INTO usage_rollup (dimension, day, key, calls, failed_calls, input_tokens, \
     output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls)";

/// `ON CONFLICT … DO UPDATE` adding the new sums to an aggregate row of `table`.
macro_rules! add_on_conflict {
    ($table:literal, $key:literal) => {
        concat!(
            "ON CONFLICT (", $key, ") DO UPDATE SET calls = ", $table, ".calls + excluded.calls, ",
            "failed_calls = ", $table, ".failed_calls + excluded.failed_calls, ",
            "input_tokens = ", $table, ".input_tokens + excluded.input_tokens, ",
            "output_tokens = ", $table, ".output_tokens + excluded.output_tokens, ",
            "cache_creation_tokens = ", $table, ".cache_creation_tokens + excluded.cache_creation_tokens, ",
            "cache_read_tokens = ", $table, ".cache_read_tokens + excluded.cache_read_tokens, ",
            "cost_microusd = ", $table, ".cost_microusd + excluded.cost_microusd, ",
            "default_priced_calls = ", $table, ".default_priced_calls + excluded.default_priced_calls"
        )
    };
}
pub const DAILY_ADD: &str = add_on_conflict!("usage_daily", "day, user_id, deal_id, model, operation");
pub const ROLLUP_ADD: &str = add_on_conflict!("usage_rollup", "dimension, day, key");

/// `YYYY-MM-DD` of an epoch-millisecond time in `zone`.
pub fn local_day(millis: i64, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d")
        .to_string()
}

#[derive(Clone, Debug)]
pub struct UsageTracker {
    db: Db,
    prices: Arc<PriceTable>,
    /// Days of the daily aggregates are calendar days here.
    zone: chrono_tz::Tz,
}

impl UsageTracker {
    pub fn new(db: Db, prices: PriceTable, zone: chrono_tz::Tz) -> Self {
        UsageTracker { db, prices: Arc::new(prices), zone }
    }

    /// The rates a call to `model` is priced at.
    pub fn rates_for(&self, model: &str) -> crate::claude::pricing::Rates {
        self.prices.rates_for(model).0
    }

    /// Stores the record, and adds it to its daily aggregate in the same transaction so
    /// the two always agree. Returns the record's id.
    pub async fn record(&self, meta: &CallMeta, report: &AttemptReport) -> Result<i64, AppError> {
        let (rates, default_price) = self.prices.rates_for(&report.model);
        let cost = cost_microusd(&report.usage, &rates);
        let now = now_millis();
        let mut tx = self.db.pool.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO usage_records (user_id, deal_id, operation, model, input_tokens, output_tokens, \
             cache_creation_tokens, cache_read_tokens, estimated_input_tokens, cost_microusd, default_price, \
             latency_ms, outcome, request_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(meta.user_id)
        .bind(meta.deal_id)
        .bind(meta.operation.as_str())
        .bind(&report.model)
        .bind(report.usage.input_tokens as i64)
        .bind(report.usage.output_tokens as i64)
        .bind(report.usage.cache_creation_input_tokens as i64)
        .bind(report.usage.cache_read_input_tokens as i64)
        .bind(meta.estimated_input_tokens as i64)
        .bind(cost)
        .bind(i64::from(default_price))
        .bind(report.latency_ms as i64)
        .bind(report.outcome.as_str())
        .bind(report.request_id.as_deref())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let u = &report.usage;
        let sums = [
            1,
            i64::from(report.outcome != Outcome::Ok),
            u.input_tokens as i64,
            u.output_tokens as i64,
            u.cache_creation_input_tokens as i64,
            u.cache_read_input_tokens as i64,
            cost,
            i64::from(default_price),
        ];
        let day = local_day(now, self.zone);
        let deal = meta.deal_id.unwrap_or(0);
        let daily_sql = format!("{DAILY_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) {DAILY_ADD}");
        let rollup_sql = format!("{ROLLUP_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) {ROLLUP_ADD}");
        let mut daily = sqlx::query(&daily_sql)
            .bind(&day)
            .bind(meta.user_id)
            .bind(deal)
            .bind(&report.model)
            .bind(meta.operation.as_str());
        for value in sums {
            daily = daily.bind(value);
        }
        daily.execute(&mut *tx).await?;
        for (dimension, key) in [
            ("user", meta.user_id.to_string()),
            ("deal", deal.to_string()),
            ("model", report.model.clone()),
            ("operation", meta.operation.as_str().to_string()),
        ] {
            let mut rollup = sqlx::query(&rollup_sql)
                .bind(dimension)
                .bind(&day)
                .bind(key);
            for value in sums {
                rollup = rollup.bind(value);
            }
            rollup.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if default_price {
            tracing::warn!(model = %report.model, "no price configured for model; default rates used");
        }
        Ok(id)
    }

    /// Like `record`, for the call path: a failure to record is logged loudly (with the
    /// numbers, so they can be recovered from the log) but does not fail the call.
    pub async fn record_logged(&self, meta: &CallMeta, report: &AttemptReport) -> Option<i64> {
        match self.record(meta, report).await {
            Ok(id) => Some(id),
            Err(_) => {
                tracing::error!(?meta, ?report, "USAGE RECORD LOST: could not store it");
                None
            }
        }
    }
}
