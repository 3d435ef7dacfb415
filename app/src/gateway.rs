//! The gateway: the only way an operation reaches Claude. Admit → call → settle.
//!
//! 1. **Admit**: estimate the input (calibrated per model and operation, never below the
//!    raw estimate) and price it with the book; then — in one transaction — lock the
//!    firm's row (when a firm-wide cap is set), the user's and the deal's rows (on
//!    SQLite the transaction's write lock holds them all); count the request and check
//!    the user's rate limits (one statement); read every budget's used and reserved
//!    amounts in one statement (on SQLite these two and the overrides' read go as one
//!    batch: `budget::store::admission_checks`); decide with the pure rules of `budget`
//!    (lowering `max_tokens` to spend a budget's last tokens); reserve tokens and
//!    dollars and store what the operation stores with the call (`AdmissionWrite`) — or
//!    refuse without calling, rolling all of it back. What it reads before the
//!    transaction is one statement, and the calibration one per model it may ask for.
//! 2. **Call**: the client retries where safe and records every attempt through the
//!    ledger; the last attempt's record deletes the reservation in the same transaction,
//!    and stores what the operation keeps of the reply with it (`ReplyWrite`).
//! 3. **Settle on every exit**: `Admitted` is a guard. A call that never reached Claude
//!    gives its reservation back; one dropped or panicking gives it back too; one whose
//!    last record could not be written keeps it, to be settled at expiry as unknown
//!    usage (`Ledger::settle_expired`). Thresholds the call crossed raise their alerts.

use std::time::Duration;

use crate::auth::service::Ctx;
use crate::budget::{Admission, CallSize, LimitKind, admit as decide};
use crate::claude::estimate::{calibration_factor, corrected};
use crate::claude::pricing::{TokenUsage, cost_microusd};
use crate::claude::recorder::ReplyWrite;
use crate::claude::types::{CallMeta, ClaudeReply, ClaudeRequest, ModelSwap, Reservation, Settlement, Streaming};
use crate::claude::Operation;
use crate::error::{AppError, ErrorKind};
use crate::format::format_tokens;
use crate::limits::Limits;
use crate::state::AppState;
use crate::time::{day_bounds, local_day, now_millis, wait};
use crate::usage::ledger::Ledger;
use crate::usage::store::{self, NewReservation};

/// The estimator's correction for a model and operation, from its latest calls whose
/// usage is known (`usage::calibration`: in memory, read from the ledger at most once a
/// second, where an index on (model, operation, id) makes it a short read).
pub async fn calibration(state: &AppState, model: &str, operation: Operation) -> Result<f64, AppError> {
    let mut conn = state.db.read().await?;
    let factor = calibration_on(state, &mut conn, model, operation).await?;
    conn.ended_well();
    Ok(factor)
}

/// `calibration`, read (when it is read) on a connection the caller already holds.
async fn calibration_on(state: &AppState, conn: &mut sqlx::AnyConnection, model: &str, operation: Operation) -> Result<f64, AppError> {
    let op = operation.as_str();
    let read = store::calibration_samples(conn, model, op, crate::claude::calibration::SAMPLES as i64);
    let samples = state.calibrations.samples(model, op, read).await?;
    Ok(calibration_factor(&samples))
}

/// A call admitted within every limit, holding its reservation until it is settled.
#[must_use = "an admitted call holds a reservation until `call` or `cancel`"]
pub struct Admitted {
    meta: CallMeta,
    ledger: Ledger,
    /// The model the call asks for: the request's, or the tier model choice picked.
    model: String,
    /// The call's `max_tokens`: the request's, or lower to fit a budget's last tokens.
    max_tokens: u32,
    lowered_by: Option<LimitKind>,
    /// Still holds a reservation this guard must give back if it ends unsettled.
    armed: bool,
}

/// Which model a call asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelRequest {
    /// The request's model, or — with budget-aware model choice — the tier the budgets
    /// allow (a cheaper one before a refusal).
    #[default]
    Budgeted,
    /// The best tier, for one send, if the budgets allow it.
    Best,
}

/// Estimates, calibrates, prices and reserves within every limit that applies to the
/// caller on this deal, atomically; refuses (with the limit's kind and, where a window
/// resets, when to try again) without calling. Timed, and refusals counted, in the
/// instance's metrics.
pub async fn admit(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
) -> Result<Admitted, AppError> {
    admit_as(state, ctx, deal_id, operation, request, raw_input_estimate, ModelRequest::Budgeted, None).await
}

/// What an operation stores with its admission (a chat send: the analyst's message),
/// written in the admission's transaction: kept only when the call is admitted — a
/// refusal stores nothing — and at no commit of its own.
#[async_trait::async_trait]
pub trait AdmissionWrite: Send {
    async fn write(&mut self, conn: &mut sqlx::AnyConnection, now: i64) -> Result<(), AppError>;
}

/// `admit`, asking for a model as `model` says, with `with` written in the admission's
/// transaction.
#[allow(clippy::too_many_arguments)]
pub async fn admit_as(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
    model: ModelRequest,
    with: Option<&mut dyn AdmissionWrite>,
) -> Result<Admitted, AppError> {
    let started = std::time::Instant::now();
    let admitted = admit_within_limits(state, ctx, deal_id, operation, request, raw_input_estimate, model, with).await;
    match &admitted {
        Ok(_) => state.metrics.admission(started.elapsed().as_secs_f64()),
        Err(refusal) => {
            state.metrics.refused(refusal.kind.as_str());
            crate::usage::service::record_refusal(state, ctx.user_id, Some(deal_id), operation.as_str(), refusal.kind).await;
        }
    }
    admitted
}

/// A call as the admission would see it now, without reserving anything: the model it
/// would ask for, its size, and whether the caller's budgets would take it. The
/// pre-flight of a one-shot operation (the memo); the admission still decides for real.
pub struct Preflight {
    pub model: String,
    pub call: CallSize,
    pub admitted: Result<Admission, crate::budget::Refusal>,
    pub status: crate::budget::BudgetStatus,
}

/// The pre-flight of `request`: estimated, calibrated and priced as `admit` does, for the
/// model tier the budgets allow (a cheaper one before a refusal), decided against the
/// caller's budgets as they stand. A request over the per-request cap is an error, as
/// it would be at admission.
pub async fn preflight(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
) -> Result<Preflight, AppError> {
    let now = now_millis();
    let (status, limits) = crate::budget::service::status_and_limits(state, ctx, deal_id).await?;
    let (names, first) = match &status.model_choice {
        Some(choice) => (choice.tiers.clone(), choice.pick(&status.limits).0.min(choice.tiers.len().saturating_sub(1))),
        None => (vec![request.model.clone()], 0),
    };
    let mut best = None;
    let mut conn = state.db.read().await?;
    for name in &names[first..] {
        let mut c = candidate(state, &mut conn, name, operation, request, raw_input_estimate, now).await?;
        conn.ended_well();
        c.call.output_tokens = within_request_cap(&c.call, &limits)?;
        let admitted = status.admits(&c.call);
        let done = admitted.is_ok();
        if done || best.is_none() {
            best = Some(Preflight { model: c.answering, call: c.call, admitted, status: status.clone() });
        }
        if done {
            break;
        }
    }
    best.ok_or_else(|| AppError::internal("gateway", "no model to estimate"))
}

/// A model a call may ask for, priced and estimated for it.
struct Candidate {
    /// What the request names.
    model: String,
    /// What answers (the offline model when there is no API key).
    answering: String,
    call: CallSize,
}

/// The call as `model` would make it: calibrated input and its price, `max_tokens` out
/// (the calibration read on `conn`).
async fn candidate(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    model: &str,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
    now: i64,
) -> Result<Candidate, AppError> {
    let answering = state.claude.answering_model(model).to_string();
    let factor = calibration_on(state, conn, &answering, operation).await?;
    // Calibration may raise a reservation, never lower it below the raw estimate.
    let input_tokens = corrected(raw_input_estimate, factor).max(raw_input_estimate);
    let (rates, _) = state.prices.current().rates_at(&answering, now, input_tokens);
    let input_microusd = cost_microusd(&TokenUsage { input_tokens, ..Default::default() }, &rates).max(0) as u64;
    let call = CallSize { input_tokens, output_tokens: u64::from(request.max_tokens), input_microusd, output_rate: rates.output };
    Ok(Candidate { model: model.to_string(), answering, call })
}

#[allow(clippy::too_many_arguments)]
async fn admit_within_limits(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
    model: ModelRequest,
    with: Option<&mut dyn AdmissionWrite>,
) -> Result<Admitted, AppError> {
    let now = now_millis();
    let zone = state.settings.time.tz();
    // The reads before the transaction (new prices too, when another instance changed
    // them) share one connection, given back before the transaction takes its own: a
    // call never holds one connection while it waits for another (that could exhaust
    // the pool).
    let mut conn = state.db.read().await?;
    let (prices, stored_limits, own) = crate::budget::store::admission_reads(&mut conn, ctx.user_id).await?;
    if let Err(err) = crate::prices::service::refresh_to(&mut conn, &state.prices, prices).await {
        tracing::warn!(%err, "could not load new prices; reserving with the book in memory");
    }
    let limits = crate::budget::service::limits_of_stored(stored_limits, &state.settings.limits);
    let choice = own.as_ref().and_then(|o| crate::budget::service::model_choice(&limits, o));
    let names = choice.as_ref().map_or_else(|| vec![request.model.clone()], |c| c.tiers.clone());
    let mut candidates = Vec::with_capacity(names.len());
    for name in &names {
        let mut c = candidate(state, &mut conn, name, operation, request, raw_input_estimate, now).await?;
        conn.ended_well();
        c.call.output_tokens = within_request_cap(&c.call, &limits)?;
        candidates.push(c);
    }
    drop(conn);

    // A write transaction from its start (row locks on PostgreSQL; on SQLite the write
    // lock, taken at BEGIN IMMEDIATE, so its reads never need to upgrade to writing).
    let mut tx = state.db.begin_new_work().await?;
    if crate::budget::service::any_firm_cap(&limits) {
        crate::budget::store::lock_firm(&mut tx, state.db.engine).await?;
    }
    let periods = request_periods(now, zone);
    let periods: Vec<&str> = periods.iter().map(String::as_str).collect();
    // Counted first and checked after (the count includes this call): a refusal, by
    // these limits or by a budget, rolls the count back with the transaction.
    let checks = crate::budget::store::admission_checks(&mut tx, state.db.engine, ctx.user_id, deal_id, &periods, &local_day(now, zone), now).await?;
    let Some((overrides, counts, standing)) = checks else {
        return Err(AppError::not_found("deal"));
    };
    if let Err(refusal) = check_rate_limits(&counts, &limits, now, zone) {
        tx.rollback().await?;
        return Err(refusal);
    }
    let all = crate::budget::service::limits_of(&standing, &overrides, ctx.is_admin(), &state.settings, &limits, now);
    let firm = crate::budget::service::firm_levels(&limits);
    let min_useful = u64::from(limits.min_useful_output_tokens);
    // With model choice, the tier the budgets allow (the best on request), then each
    // cheaper one before refusing.
    let first = match (&choice, model) {
        (Some(_), ModelRequest::Best) | (None, _) => 0,
        (Some(c), ModelRequest::Budgeted) => c.pick(&all).0.min(candidates.len() - 1),
    };
    let last = if model == ModelRequest::Best { 0 } else { candidates.len() - 1 };
    let mut decision = Err(crate::budget::Refusal::DealBudget { exhausted: false });
    let mut index = first;
    for i in first..=last {
        index = i;
        decision = decide(&candidates[i].call, &all, &firm, min_useful);
        if decision.is_ok() {
            break;
        }
    }
    let chosen = &candidates[index];
    let Admission { output_tokens, lowered_by } = match decision {
        Ok(admission) => admission,
        Err(refusal) => {
            tx.rollback().await?;
            return Err(crate::budget::service::refusal_error(refusal, &all, &candidates[first].call, &firm, now, zone));
        }
    };
    let call = chosen.call;
    let input_tokens = call.input_tokens;
    let id = store::insert_reservation(
        &mut tx,
        &NewReservation {
            user_id: ctx.user_id,
            deal_id,
            operation: operation.as_str().to_string(),
            model: chosen.answering.clone(),
            input_tokens,
            output_tokens,
            estimated_input_tokens: raw_input_estimate,
            cost_microusd: i64::try_from(call.cost(output_tokens)).unwrap_or(i64::MAX),
            created_at: now,
            expires_at: now + reservation_lifetime_ms(state),
        },
    )
    .await?;
    if let Some(with) = with {
        // On an error the transaction rolls back: no reservation, nothing stored.
        with.write(&mut tx, now).await?;
    }
    tx.commit().await?;
    let swap = (index > 0).then(|| ModelSwap { asked: candidates[0].model.clone(), chosen: chosen.model.clone() });
    let meta = CallMeta {
        user_id: ctx.user_id,
        deal_id: Some(deal_id),
        operation,
        estimated_input_tokens: raw_input_estimate,
        reservation: Some(Reservation { id, input_tokens, output_tokens }),
        swap,
    };
    let max_tokens = u32::try_from(output_tokens).unwrap_or(request.max_tokens);
    Ok(Admitted { meta, ledger: Ledger::of(state), model: chosen.model.clone(), max_tokens, lowered_by, armed: true })
}

/// The call's output within `limits.max_request_tokens` (input plus `max_tokens`):
/// lowered to fit when at least the useful minimum still does, else refused.
fn within_request_cap(call: &CallSize, limits: &Limits) -> Result<u64, AppError> {
    let cap = limits.max_request_tokens;
    let room = cap.saturating_sub(call.input_tokens);
    if room >= call.output_tokens {
        return Ok(call.output_tokens);
    }
    if room >= u64::from(limits.min_useful_output_tokens).min(call.output_tokens) {
        return Ok(room);
    }
    Err(AppError::new(
        ErrorKind::TooLong,
        format!(
            "This request needs about {} tokens with its reply; one request may use at most {}. Shorten it.",
            format_tokens(call.input_tokens + call.output_tokens),
            format_tokens(cap)
        ),
    ))
}

/// The rate-limit windows a call now counts in: its minute and its local day.
fn request_periods(now: i64, zone: chrono_tz::Tz) -> [String; 2] {
    [format!("minute:{}", now.div_euclid(60_000)), format!("day:{}", local_day(now, zone))]
}

/// Refuses with `rate_limited` (and when to try again) if the user has started more
/// calls than allowed this minute or today, counting this one (`counts`, of
/// `request_periods`). Exact across instances: the caller holds the user's row lock.
fn check_rate_limits(counts: &[u64], limits: &Limits, now: i64, zone: chrono_tz::Tz) -> Result<(), AppError> {
    let per_minute = u64::from(limits.user_requests_per_minute);
    let per_day = u64::from(limits.user_requests_per_day);
    let (refused, ends_at) = if per_minute > 0 && counts[0] > per_minute {
        (format!("You have started {per_minute} requests this minute, the most allowed"), (now.div_euclid(60_000) + 1) * 60_000)
    } else if per_day > 0 && counts[1] > per_day {
        (format!("You have started {per_day} requests today, the most allowed"), day_bounds(now, zone).1)
    } else {
        return Ok(());
    };
    let seconds = ((ends_at - now).max(1) as u64).div_ceil(1000);
    Err(AppError::new(ErrorKind::RateLimited, format!("{refused}. Try again in {}.", wait(ends_at - now))).retry_after(Some(seconds)))
}

impl Admitted {
    /// The model the call asks for, and the one it would have without model choice.
    pub fn model(&self) -> (&str, Option<&str>) {
        (&self.model, self.meta.swap.as_ref().map(|s| s.asked.as_str()))
    }

    /// What to tell the user when a budget's last tokens lowered the call's `max_tokens`.
    pub fn limited_note(&self) -> Option<String> {
        self.lowered_by.map(|kind| {
            format!("This reply was limited to {} tokens: that is what {} had left.", format_tokens(u64::from(self.max_tokens)), kind.describe())
        })
    }

    /// Calls Claude with the admitted `max_tokens`; the reservation is settled however
    /// the call ends, and the thresholds the call crossed raise their alerts.
    pub async fn call(self, state: &AppState, ctx: &Ctx, request: &ClaudeRequest) -> Result<ClaudeReply, AppError> {
        self.call_streamed(state, ctx, request, None, None).await
    }

    /// `call`, with the reply streamed to `streaming` when given, and what `with` stores
    /// of it written in its record's transaction (see `ClaudeClient::call_streamed`).
    pub async fn call_streamed(
        mut self,
        state: &AppState,
        ctx: &Ctx,
        request: &ClaudeRequest,
        streaming: Option<Streaming>,
        with: Option<&mut dyn ReplyWrite>,
    ) -> Result<ClaudeReply, AppError> {
        let mut request = request.clone();
        request.max_tokens = self.max_tokens;
        request.model = self.model.clone();
        // Admitted and reserved: the rest is Claude's time, which holds no server place.
        crate::load::waiting_on_claude();
        let outcome = state.claude.call_streamed(&self.meta, &request, streaming, with).await;
        match outcome.settlement {
            // The last record released the reservation with it.
            Settlement::Settled => self.armed = false,
            // The spend is unknown to the ledger: the reservation stays and expires into
            // an unknown-usage record.
            Settlement::RecordFailed => self.armed = false,
            Settlement::NotReached => self.release().await,
        }
        if let (Settlement::Settled, Some(deal_id)) = (outcome.settlement, self.meta.deal_id) {
            // Off the reply's path: the caller has its answer while alerts are checked.
            let (state, ctx) = (state.clone(), ctx.clone());
            tokio::spawn(async move {
                if let Err(err) = crate::budget::service::fire_alerts(&state, &ctx, deal_id).await {
                    tracing::warn!(message = %err.message, "could not check budget alerts");
                }
            });
        }
        outcome.result
    }

    /// Gives the reservation back without calling.
    pub async fn cancel(mut self) {
        self.release().await;
    }

    async fn release(&mut self) {
        if let Some(reservation) = self.meta.reservation.filter(|_| self.armed) {
            self.armed = false;
            if let Err(err) = self.ledger.release(reservation.id).await {
                // It expires on its own; until then the budget is merely conservative.
                tracing::warn!(%err, reservation = reservation.id, "could not release a budget reservation");
            }
        }
    }
}

impl Drop for Admitted {
    /// Dropped while still holding its reservation — a panic, or a future dropped
    /// mid-call: the reservation is given back on a task of its own.
    fn drop(&mut self) {
        let Some(reservation) = self.meta.reservation.filter(|_| self.armed) else { return };
        let ledger = self.ledger.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = ledger.release(reservation.id).await {
                        tracing::warn!(%err, reservation = reservation.id, "could not release the reservation of an abandoned call");
                    }
                });
            }
            Err(_) => tracing::warn!(reservation = reservation.id, "abandoned call's reservation left to expire"),
        }
    }
}

/// Admits and makes a call, for operations with nothing to store in between; with the
/// note for the user when a budget's last tokens lowered its `max_tokens`.
pub async fn call_claude(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
) -> Result<(ClaudeReply, Option<String>), AppError> {
    let admitted = admit(state, ctx, deal_id, operation, request, raw_input_estimate).await?;
    let limited = admitted.limited_note();
    Ok((admitted.call(state, ctx, request).await?, limited))
}

/// Longest a call can take with every retry, plus `claude.reservation_margin_seconds`:
/// after this a reservation can only belong to a process that died (or a call whose
/// record was lost).
pub fn reservation_lifetime_ms(state: &AppState) -> i64 {
    let c = &state.settings.claude;
    let attempts = i64::from(c.max_retries) + 1;
    let per_attempt = c.timeout_seconds as i64 * 1000 + c.retry_after_cap_seconds.max(c.backoff_max_ms / 1000) as i64 * 1000;
    attempts * per_attempt + c.reservation_margin_seconds as i64 * 1000
}

/// Settles expired reservations every `every`, for as long as the server runs (and once
/// at start, for those a previous run left behind).
pub fn spawn_expiry_settlement(ledger: Ledger, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match ledger.settle_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(settled = n, "expired reservations settled as unknown usage"),
                Err(err) => tracing::warn!(%err, "could not settle expired reservations"),
            }
        }
    });
}
