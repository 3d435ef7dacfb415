//! The ledger: the `UsageRecorder` the Claude client is built with. Each attempt's record
//! is priced with the rates then in force and written with its aggregates and counters
//! in one transaction; the last attempt's transaction also deletes the call's
//! reservation and, for a successful call, stores what its operation keeps of the reply
//! (`record_with`; written alone, without the reply, when the two cannot be written
//! together). A write is retried on transient errors; if it still fails, nothing of it
//! is kept — and the reservation stays, to be settled when it expires as unknown usage
//! (`settle_expired`), so billed spend never disappears from budgets or dashboards.
//! A call's last record names its reservation and is written only while no other
//! record does: a write sent again after its answer was lost, or one that finds the
//! reservation settled on expiry, finds that record instead of counting the call twice.
//! An attempt after which the call is retried names the reservation and its number in
//! the call, and is written once in the same way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::store::{self, Claim, NewRecord};
use crate::claude::calibration::Calibrations;
use crate::claude::price_book::{PriceBook, SharedPriceBook};
use crate::claude::pricing::TokenUsage;
use crate::claude::recorder::{Alongside, AttemptRecord, CallEnd, RecordError, UsageRecorder, WrittenRecord};
use crate::claude::types::{CallMeta, ModelSwap};
use crate::db::{Db, Engine};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::time::{local_day, now_millis};

/// Attempts at writing one record before giving up.
const WRITE_ATTEMPTS: u32 = 4;

#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
    prices: SharedPriceBook,
    /// Days of aggregates and daily counters are calendar days here.
    zone: chrono_tz::Tz,
    metrics: Arc<Metrics>,
    /// Records that calibrate the estimate join these as they are written.
    calibrations: Arc<Calibrations>,
}

impl Ledger {
    pub fn new(db: Db, prices: SharedPriceBook, zone: chrono_tz::Tz, metrics: Arc<Metrics>, calibrations: Arc<Calibrations>) -> Self {
        Ledger { db, prices, zone, metrics, calibrations }
    }

    /// The ledger of the running app.
    pub fn of(state: &AppState) -> Self {
        Ledger::new(state.db.clone(), state.prices.clone(), state.settings.time.tz(), state.metrics.clone(), state.calibrations.clone())
    }

    /// Counts a written record in this instance's metrics.
    fn count(&self, r: &NewRecord) {
        let u = &r.usage;
        let tokens = [("input", u.input_tokens), ("output", u.output_tokens), ("cache_write", u.cache_creation_input_tokens), ("cache_read", u.cache_read_input_tokens)];
        self.metrics.attempt(&r.operation, &r.outcome, &r.model, tokens, r.cost_microusd, r.latency_ms);
    }

    /// Brings the price book up to date with prices another instance may have added.
    /// Called before a transaction is opened, never inside one (it takes a connection).
    /// False when the prices could not be read (the book in memory then prices).
    async fn refresh_prices(&self) -> bool {
        let read = crate::prices::service::refresh(&self.db, &self.prices).await;
        if let Err(err) = &read {
            tracing::warn!(%err, "could not check for new prices; pricing with the book in memory");
        }
        read.is_ok()
    }

    /// A record of `usage` for a call, priced with `book`'s price in force now.
    fn priced(&self, book: &PriceBook, base: RecordBase, usage: TokenUsage, outcome: &str) -> NewRecord {
        let now = now_millis();
        let priced = book.cost(&base.model, now, &usage);
        // What the cheaper model saved: the same usage at the asked-for model's price.
        let savings = base.swap.as_ref().map_or(0, |swap| book.cost(&swap.asked, now, &usage).cost_microusd - book.cost(&swap.chosen, now, &usage).cost_microusd);
        if priced.unpriced {
            tracing::warn!(model = ?base.model, "no price for model; charged at the fallback rates and flagged");
        }
        NewRecord {
            user_id: base.user_id,
            deal_id: base.deal_id,
            operation: base.operation,
            model: base.model,
            cost_microusd: priced.cost_microusd,
            usage,
            estimated_input_tokens: base.estimated_input_tokens,
            default_price: priced.unpriced,
            requested_model: base.swap.map(|s| s.asked).unwrap_or_default(),
            savings_microusd: savings,
            latency_ms: base.latency_ms,
            outcome: outcome.to_string(),
            request_id: base.request_id,
            usage_unknown: base.usage_unknown,
            stopped: base.stopped,
            created_at: now,
            day: local_day(now, self.zone),
        }
    }

    /// Prices a record with the newest stored prices and writes it with its `claim`
    /// (deleting the reservation it settles) and what `with` stores, in one transaction.
    /// The write itself checks that no newer price is stored (one statement fewer than
    /// reading the prices' version first); when another instance has added one, the
    /// book is reloaded and the record priced again. If the prices cannot be read, the
    /// book in memory prices it, as before. Returns the id of the record that stands for
    /// the attempt and of `with`'s row, and the record as priced when it is the one
    /// written (None: another record held the claim).
    async fn price_and_write(
        &self,
        base: RecordBase,
        usage: TokenUsage,
        outcome: &str,
        claim: Option<Claim>,
        mut with: Option<&mut Alongside<'_>>,
    ) -> Result<((i64, Option<i64>), Option<NewRecord>), sqlx::Error> {
        let (mut checked, mut attempts) = (true, 0);
        loop {
            attempts += 1;
            let book = self.prices.current();
            let record = self.priced(&book, base.clone(), usage, outcome);
            // Unchecked when the prices could not be read, or changed under every attempt.
            let priced_with = (checked && attempts <= PRICING_ATTEMPTS).then_some(book.version);
            match self.write_retrying(&record, priced_with, claim, with.as_deref_mut()).await? {
                Written::NewerPrices => checked = self.refresh_prices().await,
                Written::Record { id, stored } => return Ok(((id, stored), Some(record))),
                Written::Claimed { id, stored } => return Ok(((id, stored), None)),
            }
        }
    }

    /// Writes `record` — if `priced_with` is given, only when no newer price is stored,
    /// and only while no other record holds its `claim` — deletes the reservation it
    /// settles and stores what `with` stores, all or nothing: on PostgreSQL in one
    /// statement, committed as it runs (when `with` has an insert to send with the
    /// record, `ReplyWrite::insert`), else in one transaction.
    async fn write(&self, record: &NewRecord, priced_with: Option<i64>, claim: Option<Claim>, mut with: Option<&mut Alongside<'_>>) -> Result<Written, sqlx::Error> {
        let cost_microusd = record.cost_microusd;
        if self.db.engine == Engine::Postgres {
            let insert = with.as_deref_mut().map(|with| with.write.insert(with.reply));
            // A reply with no insert of its own is written in a transaction, below.
            if !matches!(insert, Some(None)) {
                let insert = insert.flatten();
                let written = {
                    let mut conn = self.db.writer().await?;
                    let written = store::write_record(&mut conn, record, priced_with, claim, insert.as_ref()).await?;
                    conn.ended_well();
                    written
                };
                // Nothing was written: every part of the statement waits on the record's.
                let Some((id, stored)) = written else { return self.unwritten(claim, with).await };
                if let (Some(with), Some(stored)) = (with, stored) {
                    with.write.inserted(stored, WrittenRecord { id, cost_microusd }, with.reply);
                }
                return Ok(self.written(record, id, stored));
            }
        }
        let mut tx = self.db.begin_write().await?;
        let Some((id, _)) = store::write_record(&mut tx, record, priced_with, claim, None).await? else {
            // Its aggregates and the reservation's delete went with it: undone.
            tx.rollback().await?;
            return self.unwritten(claim, with).await;
        };
        let stored = match with {
            Some(with) => Some(with.write.write(&mut tx, WrittenRecord { id, cost_microusd }, with.reply).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(self.written(record, id, stored))
    }

    /// Why a record with `claim` was not written (without one, only newer prices refuse
    /// it). Held by another record — this write's own, sent before and committed though
    /// its answer was lost, or for a reservation `settle_expired`'s — that record stands
    /// for the call or the attempt, with the reply `with` finds stored with it.
    async fn unwritten(&self, claim: Option<Claim>, with: Option<&mut Alongside<'_>>) -> Result<Written, sqlx::Error> {
        let Some(claim) = claim else { return Ok(Written::NewerPrices) };
        // The writer's connection: on SQLite the batch of writes open on it (group
        // commit), where an expiry's settlement may wait, is committed first — a read on
        // another connection would not see it, and the write would be tried again and
        // again until the batch ended.
        let mut conn = self.db.writer().await?;
        let written = match store::claimed_by(&mut conn, claim).await? {
            None => Written::NewerPrices,
            Some(id) => {
                let stored = match with {
                    Some(with) => with.write.find(&mut conn, id).await?,
                    None => None,
                };
                Written::Claimed { id, stored }
            }
        };
        conn.ended_well();
        Ok(written)
    }

    /// A record committed as `id` (with what was stored with it as `stored`): it joins
    /// the calibration's samples if it is one.
    fn written(&self, record: &NewRecord, id: i64, stored: Option<i64>) -> Written {
        if let Some((estimated, actual)) = store::calibration_sample(record) {
            self.calibrations.add(id, &record.model, &record.operation, estimated, actual);
        }
        Written::Record { id, stored }
    }

    /// `write`, retried with a short backoff when the database is busy or unreachable.
    async fn write_retrying(&self, record: &NewRecord, priced_with: Option<i64>, claim: Option<Claim>, mut with: Option<&mut Alongside<'_>>) -> Result<Written, sqlx::Error> {
        let mut attempt = 1;
        loop {
            match self.write(record, priced_with, claim, with.as_deref_mut()).await {
                Ok(written) => return Ok(written),
                Err(err) if attempt < WRITE_ATTEMPTS && is_transient(&err) => {
                    tracing::warn!(%err, attempt, "usage record write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Records `attempt` of the call `meta` describes, with its `claim`, and what `with`
    /// stores — or, when that cannot be written with it, alone.
    async fn record_attempt(&self, meta: &CallMeta, attempt: &AttemptRecord, claim: Option<Claim>, with: Option<&mut Alongside<'_>>) -> Result<(i64, Option<i64>), RecordError> {
        let base = RecordBase {
            user_id: meta.user_id,
            deal_id: meta.deal_id,
            operation: meta.operation.as_str().to_string(),
            model: attempt.model.clone(),
            estimated_input_tokens: meta.estimated_input_tokens,
            latency_ms: attempt.latency_ms,
            request_id: attempt.request_id.clone(),
            usage_unknown: attempt.usage_unknown,
            stopped: attempt.stopped,
            swap: meta.swap.clone(),
        };
        let outcome = attempt.outcome.as_str();
        let written = match with {
            Some(with) => match self.price_and_write(base.clone(), attempt.usage, outcome, claim, Some(&mut *with)).await {
                Err(err) => {
                    // The record matters more than the reply: the operation stores the reply.
                    tracing::warn!(%err, "could not store the reply with its usage record; writing the record alone");
                    match self.price_and_write(base, attempt.usage, outcome, claim, None).await {
                        // Settled already: by a write of the record with the reply, perhaps,
                        // that committed though its answer was lost. Then the reply is there.
                        Ok(((id, None), None)) => self.found_with(with, id).await.map(|stored| ((id, stored), None)),
                        written => written,
                    }
                }
                written => written,
            },
            None => self.price_and_write(base, attempt.usage, outcome, claim, None).await,
        };
        let (ids, record) = written.map_err(|e| RecordError(e.to_string()))?;
        match record {
            Some(record) => self.count(&record),
            // Counted where it was written (or, after a lost answer, in no instance's metrics).
            None => tracing::warn!(?claim, record = ids.0, "another record holds this one's claim; it is not written again"),
        }
        Ok(ids)
    }

    /// What `with` finds already stored with record `id` (`ReplyWrite::find`).
    async fn found_with(&self, with: &mut Alongside<'_>, id: i64) -> Result<Option<i64>, sqlx::Error> {
        let mut conn = self.db.read().await?;
        let found = with.write.find(&mut conn, id).await?;
        conn.ended_well();
        Ok(found)
    }

    /// Gives a reservation back without a record: its call never reached Claude.
    pub async fn release(&self, reservation: i64) -> Result<(), sqlx::Error> {
        let mut conn = self.db.writer().await?;
        store::delete_reservation(&mut conn, reservation).await?;
        Ok(())
    }

    /// Settles every reservation expired by now — left by a process that died, or by a
    /// call whose last record could not be written — as a record of unknown usage at the
    /// reserved amount. Safe with several instances: each reservation is taken by one.
    /// Returns how many were settled.
    pub async fn settle_expired(&self) -> Result<usize, sqlx::Error> {
        let mut settled = 0;
        let expired = store::expired_reservations(&self.db, now_millis(), 500).await?;
        if !expired.is_empty() {
            self.refresh_prices().await;
        }
        for id in expired {
            let mut tx = self.db.begin_write().await?;
            let Some(held) = store::reservation(&mut tx, id).await? else {
                continue; // settled or released since
            };
            let base = RecordBase {
                user_id: held.user_id,
                deal_id: Some(held.deal_id),
                operation: held.operation,
                model: held.model,
                estimated_input_tokens: held.estimated_input_tokens,
                latency_ms: (now_millis() - held.created_at).max(0) as u64,
                request_id: None,
                usage_unknown: true,
                stopped: false,
                swap: None,
            };
            let usage = TokenUsage { input_tokens: held.input_tokens, output_tokens: held.output_tokens, ..Default::default() };
            let record = self.priced(&self.prices.current(), base, usage, "error");
            // Another instance, or the call's own last record, may have settled it since.
            if store::write_record(&mut tx, &record, None, Some(Claim::Settles(id)), None).await?.is_none() {
                tx.rollback().await?;
                continue;
            }
            tx.commit().await?;
            self.count(&record);
            tracing::warn!(reservation = id, tokens = usage.budget_tokens(), "expired reservation settled as unknown usage");
            settled += 1;
        }
        Ok(settled)
    }
}

/// What a record says besides its usage and outcome.
#[derive(Clone)]
struct RecordBase {
    user_id: i64,
    deal_id: Option<i64>,
    operation: String,
    model: String,
    estimated_input_tokens: u64,
    latency_ms: u64,
    request_id: Option<String>,
    usage_unknown: bool,
    stopped: bool,
    swap: Option<ModelSwap>,
}

/// How often a record is priced again because another instance stored newer prices
/// while it was being written, before the book as last read prices it unchecked.
const PRICING_ATTEMPTS: u32 = 3;

/// What a checked write did.
enum Written {
    /// The record's id, and the id of what was stored with it.
    Record { id: i64, stored: Option<i64> },
    /// Newer prices are stored than the record was priced with: nothing was written.
    NewerPrices,
    /// Another record, `id` (with `stored` stored with it), holds the record's claim —
    /// settled the reservation it settles, or is its attempt: nothing was written.
    Claimed { id: i64, stored: Option<i64> },
}

fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        // SQLite busy/locked, PostgreSQL serialization failure or deadlock.
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            matches!(code.as_ref(), "5" | "6" | "40001" | "40P01") || db.message().contains("locked")
        }
        _ => false,
    }
}

#[async_trait]
impl UsageRecorder for Ledger {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        let claim = meta.reservation.map(|r| match end {
            CallEnd::Final => Claim::Settles(r.id),
            CallEnd::Retrying { attempt } => Claim::Attempt { reservation: r.id, number: attempt },
        });
        Ok(self.record_attempt(meta, attempt, claim, None).await?.0)
    }

    async fn record_with(&self, meta: &CallMeta, attempt: &AttemptRecord, mut with: Alongside<'_>) -> Result<(i64, Option<i64>), RecordError> {
        self.record_attempt(meta, attempt, meta.reservation.map(|r| Claim::Settles(r.id)), Some(&mut with)).await
    }
}
