//! `TokenBudget` in the database. The check and the reservation happen in one
//! transaction that first takes a write lock on the user's and the deal's rows (a row
//! lock on PostgreSQL, the database write lock on SQLite), so concurrent reservations
//! for the same budgets — from any number of app instances — are serialised and each
//! sees the others' reservations. After the call the reservation is deleted: the usage
//! records of its attempts have replaced it. A crashed process's reservations expire.

use super::{Meter, Refusal, admit, reservation_tokens};
use crate::auth::ssr::Ctx;
use crate::claude::client::{CallMeta, ClaudeReply, ClaudeRequest};
use crate::claude::estimate::{calibration_factor, corrected};
use crate::claude::Operation;
use crate::db::{Db, now_millis};
use crate::error::{AppError, ErrorKind};
use crate::state::AppState;

/// Budget tokens of a usage record, in SQL.
const RECORD_TOKENS: &str = "input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens";
/// Calls sampled for the estimator's calibration.
const CALIBRATION_SAMPLES: i64 = 50;

/// A reservation held for one call; release it when the call is over.
#[derive(Debug)]
pub struct Reservation {
    pub id: i64,
    pub tokens: u64,
}

/// A call admitted within both budgets, holding its reservation until it is made.
#[must_use = "an admitted call holds a reservation until `call` or `cancel`"]
pub struct AdmittedCall {
    reservation: Reservation,
    meta: CallMeta,
}

/// The one way an operation reaches Claude, step one: calibrate the estimate and
/// reserve within both budgets, or refuse without calling.
pub async fn admit_call(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
) -> Result<AdmittedCall, AppError> {
    let model = state.claude.answering_model(&request.model);
    let factor = calibration(&state.db, model).await?;
    let tokens = reservation_tokens(corrected(raw_input_estimate, factor), request.max_tokens);
    let reservation = reserve(state, ctx, deal_id, tokens).await?;
    let meta = CallMeta { user_id: ctx.user_id, deal_id: Some(deal_id), operation, estimated_input_tokens: raw_input_estimate };
    Ok(AdmittedCall { reservation, meta })
}

impl AdmittedCall {
    /// Step two: call with retries and tracking, then release the reservation (the
    /// usage records now stand in its place).
    pub async fn call(self, state: &AppState, request: &ClaudeRequest) -> Result<ClaudeReply, AppError> {
        let result = state.claude.call(&state.tracker, &self.meta, request).await;
        self.cancel(state).await;
        result
    }

    /// Gives the reservation back without calling.
    pub async fn cancel(self, state: &AppState) {
        if let Err(err) = release(&state.db, &self.reservation).await {
            // It expires on its own; until then the budget is merely conservative.
            tracing::warn!(reservation = ?self.reservation, message = %err.message, "could not release a budget reservation");
        }
    }
}

/// Admits and makes a call, for operations with nothing to store in between.
pub async fn call_claude(
    state: &AppState,
    ctx: &Ctx,
    deal_id: i64,
    operation: Operation,
    request: &ClaudeRequest,
    raw_input_estimate: u64,
) -> Result<ClaudeReply, AppError> {
    admit_call(state, ctx, deal_id, operation, request, raw_input_estimate).await?.call(state, request).await
}

/// Checks both budgets and reserves `tokens`, atomically; refuses with
/// `daily_limit_reached` or `deal_budget_exhausted`.
pub async fn reserve(state: &AppState, ctx: &Ctx, deal_id: i64, tokens: u64) -> Result<Reservation, AppError> {
    let now = now_millis();
    let mut tx = state.db.pool.begin().await?;
    // Lock order user → deal everywhere, so two transactions never wait on each other.
    let user_limit: Option<(Option<i64>,)> =
        sqlx::query_as("UPDATE users SET active = active WHERE id = $1 RETURNING daily_token_budget")
            .bind(ctx.user_id)
            .fetch_optional(&mut *tx)
            .await?;
    let deal_limit: Option<(Option<i64>,)> =
        sqlx::query_as("UPDATE deals SET token_budget = token_budget WHERE id = $1 RETURNING token_budget")
            .bind(deal_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (Some((user_limit,)), Some((deal_limit,))) = (user_limit, deal_limit) else {
        return Err(AppError::not_found("deal"));
    };
    let deal = deal_meter(&mut tx, deal_id, deal_limit, state, now).await?;
    let daily = match ctx.is_admin() {
        true => None,
        false => Some(daily_meter(&mut tx, ctx.user_id, user_limit, state, now).await?),
    };
    if let Err(refusal) = admit(tokens, daily.as_ref(), &deal) {
        tx.rollback().await?;
        return Err(refusal_error(refusal, &deal, daily.as_ref(), state, now));
    }
    let expires_at = now + reservation_lifetime_ms(state);
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO budget_reservations (user_id, deal_id, tokens, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(ctx.user_id)
    .bind(deal_id)
    .bind(tokens as i64)
    .bind(now)
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Reservation { id, tokens })
}

pub async fn release(db: &Db, reservation: &Reservation) -> Result<(), AppError> {
    sqlx::query("DELETE FROM budget_reservations WHERE id = $1").bind(reservation.id).execute(&db.pool).await?;
    Ok(())
}

/// Longest a call can take with every retry, plus a margin: after this a reservation
/// can only belong to a process that died.
fn reservation_lifetime_ms(state: &AppState) -> i64 {
    let c = &state.settings.claude;
    let attempts = i64::from(c.max_retries) + 1;
    let per_attempt = c.timeout_seconds as i64 * 1000 + c.retry_after_cap_seconds.max(c.backoff_max_ms / 1000) as i64 * 1000;
    attempts * per_attempt + 60_000
}

fn refusal_error(refusal: Refusal, deal: &Meter, daily: Option<&Meter>, state: &AppState, now: i64) -> AppError {
    use super::format_tokens;
    match refusal {
        Refusal::DailyLimit => {
            let limit = daily.map_or(0, |d| d.limit);
            AppError::new(
                ErrorKind::DailyLimitReached,
                format!(
                    "You have reached your daily limit of {} tokens. It resets at {}.",
                    format_tokens(limit),
                    super::day::resets_in(now, state.settings.time.tz())
                ),
            )
        }
        Refusal::DealBudget { exhausted: true } => AppError::new(
            ErrorKind::DealBudgetExhausted,
            format!("This deal's budget of {} tokens is used up. An admin can raise it.", format_tokens(deal.limit)),
        ),
        Refusal::DealBudget { exhausted: false } => AppError::new(
            ErrorKind::DealBudgetExhausted,
            format!(
                "This deal has {} tokens left, not enough for this request. An admin can raise its budget.",
                format_tokens(deal.remaining())
            ),
        ),
    }
}

fn sum_of(expr: &str) -> String {
    // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both engines return BIGINT.
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

async fn sum(conn: &mut sqlx::AnyConnection, sql: &str, binds: &[i64]) -> Result<u64, AppError> {
    let mut query = sqlx::query_as::<_, (i64,)>(sql);
    for value in binds {
        query = query.bind(*value);
    }
    let (total,) = query.fetch_one(conn).await?;
    Ok(total.max(0) as u64)
}

/// The estimator's correction for `model`, from its recent successful calls.
pub async fn calibration(db: &Db, model: &str) -> Result<f64, AppError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT estimated_input_tokens, input_tokens + cache_creation_tokens + cache_read_tokens \
         FROM usage_records WHERE model = $1 AND outcome = 'ok' AND estimated_input_tokens > 0 \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(model)
    .bind(CALIBRATION_SAMPLES)
    .fetch_all(&db.pool)
    .await?;
    let samples: Vec<(u64, u64)> = rows.into_iter().map(|(e, a)| (e.max(0) as u64, a.max(0) as u64)).collect();
    Ok(calibration_factor(&samples))
}

/// Both meters as they stand now, for the chat tab.
pub async fn meters(state: &AppState, ctx: &Ctx, deal_id: i64) -> Result<(Option<Meter>, Meter), AppError> {
    let now = now_millis();
    let mut conn = state.db.pool.acquire().await?;
    let deal_limit: Option<(Option<i64>,)> = sqlx::query_as("SELECT token_budget FROM deals WHERE id = $1")
        .bind(deal_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((deal_limit,)) = deal_limit else { return Err(AppError::not_found("deal")) };
    let deal = deal_meter(&mut conn, deal_id, deal_limit, state, now).await?;
    if ctx.is_admin() {
        return Ok((None, deal));
    }
    let (user_limit,): (Option<i64>,) = sqlx::query_as("SELECT daily_token_budget FROM users WHERE id = $1")
        .bind(ctx.user_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok((Some(daily_meter(&mut conn, ctx.user_id, user_limit, state, now).await?), deal))
}

/// The deal's lifetime meter; `limit` is its override, if an admin set one.
async fn deal_meter(conn: &mut sqlx::AnyConnection, deal_id: i64, limit: Option<i64>, state: &AppState, now: i64) -> Result<Meter, AppError> {
    Ok(Meter {
        used: sum(conn, &format!("SELECT {} FROM usage_records WHERE deal_id = $1", sum_of(RECORD_TOKENS)), &[deal_id]).await?,
        reserved: sum(conn, &format!("SELECT {} FROM budget_reservations WHERE deal_id = $1 AND expires_at > $2", sum_of("tokens")), &[deal_id, now]).await?,
        limit: limit.map_or(state.settings.budget.deal_tokens, |l| l.max(0) as u64),
    })
}

/// The user's meter for today in `time.zone`; `limit` is their override, if any.
async fn daily_meter(conn: &mut sqlx::AnyConnection, user_id: i64, limit: Option<i64>, state: &AppState, now: i64) -> Result<Meter, AppError> {
    let (day_start, day_end) = super::day::day_bounds(now, state.settings.time.tz());
    Ok(Meter {
        used: sum(
            conn,
            &format!("SELECT {} FROM usage_records WHERE user_id = $1 AND created_at >= $2 AND created_at < $3", sum_of(RECORD_TOKENS)),
            &[user_id, day_start, day_end],
        )
        .await?,
        reserved: sum(conn, &format!("SELECT {} FROM budget_reservations WHERE user_id = $1 AND expires_at > $2", sum_of("tokens")), &[user_id, now]).await?,
        limit: limit.map_or(state.settings.budget.user_daily_tokens, |l| l.max(0) as u64),
    })
}
