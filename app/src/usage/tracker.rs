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
        sqlx::query(
            "INSERT INTO usage_daily (day, user_id, deal_id, model, operation, calls, failed_calls, input_tokens, \
             output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (day, user_id, deal_id, model, operation) DO UPDATE SET \
             calls = usage_daily.calls + 1, \
             failed_calls = usage_daily.failed_calls + excluded.failed_calls, \
             input_tokens = usage_daily.input_tokens + excluded.input_tokens, \
             output_tokens = usage_daily.output_tokens + excluded.output_tokens, \
             cache_creation_tokens = usage_daily.cache_creation_tokens + excluded.cache_creation_tokens, \
             cache_read_tokens = usage_daily.cache_read_tokens + excluded.cache_read_tokens, \
             cost_microusd = usage_daily.cost_microusd + excluded.cost_microusd, \
             default_priced_calls = usage_daily.default_priced_calls + excluded.default_priced_calls",
        )
        .bind(local_day(now, self.zone))
        .bind(meta.user_id)
        .bind(meta.deal_id.unwrap_or(0))
        .bind(&report.model)
        .bind(meta.operation.as_str())
        .bind(i64::from(report.outcome != Outcome::Ok))
        .bind(u.input_tokens as i64)
        .bind(u.output_tokens as i64)
        .bind(u.cache_creation_input_tokens as i64)
        .bind(u.cache_read_input_tokens as i64)
        .bind(cost)
        .bind(i64::from(default_price))
        .execute(&mut *tx)
        .await?;
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
