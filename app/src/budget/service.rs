//! Budgets and limits for people: which limits apply to a call and where they stand
//! (the gateway admits against them; the deal page shows them), the words of a refusal,
//! the limits in force (an admin's over the configured ones), alerts when thresholds are
//! crossed, and the flags of the usage dashboard. Reads the ledger's counters and
//! reservations (`usage::store`) and the overrides (`budget::store`).

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::store::{self, Overrides, analyst_daily_limits, deal_limits};
use super::{BudgetFlags, BudgetState, BudgetStatus, CallSize, DealBudget, FirmLevel, FirmLevels, Limit, LimitKind, Meter, Refusal, Unit};
use crate::audit::Actor;
use crate::auth::service::Ctx;
use crate::error::{AppError, ErrorKind};
use crate::format::{format_dollars, format_tokens};
use crate::limits::Limits;
use crate::settings::{BudgetSettings, Settings};
use crate::state::AppState;
use crate::time::{day_bounds, hour_end, local_day, month_bounds, now_millis, resets_at, resets_in};
use crate::alerts::store::NewAlert;
use crate::usage::store::Standing;
use crate::usage::{CounterKey, Window, month_of};

/// Micro-dollars of a USD amount from the settings.
pub fn micro(usd: f64) -> u64 {
    (usd * 1_000_000.0).round().max(0.0) as u64
}

/// The limits in force: what an admin saved on /admin/limits, else the configured ones.
pub async fn limits_in_force(conn: &mut AnyConnection, configured: &Limits) -> Result<Limits, sqlx::Error> {
    Ok(limits_of_stored(store::stored_limits(conn).await?, configured))
}

/// The limits in force, from what `store::stored_limits` read.
pub fn limits_of_stored(stored: Option<String>, configured: &Limits) -> Limits {
    let Some(json) = stored else { return configured.clone() };
    match serde_json::from_str::<Limits>(&json) {
        Ok(limits) if limits.validate().is_ok() => limits,
        _ => {
            tracing::error!("the limits saved on /admin/limits cannot be read; the configured ones apply");
            configured.clone()
        }
    }
}

/// Whether any firm-wide cap is set (admissions are then serialised firm-wide).
pub fn any_firm_cap(limits: &Limits) -> bool {
    [limits.firm_hourly_tokens, limits.firm_daily_tokens, limits.firm_monthly_tokens].iter().any(|v| *v > 0)
        || [limits.firm_hourly_usd, limits.firm_daily_usd, limits.firm_monthly_usd].iter().any(|v| *v > 0.0)
}

pub fn firm_levels(limits: &Limits) -> FirmLevels {
    FirmLevels {
        warning: limits.firm_warning_ratio,
        critical: limits.firm_critical_ratio,
        stop: limits.firm_stop_ratio,
        critical_max_request_tokens: limits.firm_critical_max_request_tokens,
    }
}

/// When a window that contains `now` ends.
fn window_end(window: Window, now: i64, zone: chrono_tz::Tz) -> i64 {
    match window {
        Window::Hour => hour_end(now),
        Window::Day => day_bounds(now, zone).1,
        Window::Month => month_bounds(now, zone).1,
    }
}

/// When a limit's window resets (None for a deal's lifetime budget).
pub fn limit_end(kind: LimitKind, now: i64, zone: chrono_tz::Tz) -> Option<i64> {
    match kind {
        LimitKind::DealTokens => None,
        LimitKind::UserDailyTokens => Some(window_end(Window::Day, now, zone)),
        LimitKind::UserMonthlyUsd => Some(window_end(Window::Month, now, zone)),
        LimitKind::FirmTokens(w) | LimitKind::FirmUsd(w) => Some(window_end(w, now, zone)),
    }
}

/// Every limit a call by `ctx` on a deal is admitted against, where each stands.
/// Admins have no personal budgets; the deal's budget and the firm's caps bind everyone.
pub fn limits_of(standing: &Standing, overrides: &Overrides, is_admin: bool, settings: &Settings, limits: &Limits, now: i64) -> Vec<Limit> {
    let b: &BudgetSettings = &settings.budget;
    let zone = settings.time.tz();
    let meter = |amount: crate::usage::store::Amount, limit: u64| (Meter { used: amount.used, reserved: amount.reserved, limit }, amount.cost_microusd);
    let with_reset = |kind: LimitKind, (meter, cost): (Meter, u64)| {
        let resets = match kind {
            LimitKind::UserDailyTokens => Some(resets_in(now, zone)),
            _ => limit_end(kind, now, zone).map(|end| resets_at(end, now, zone)),
        };
        let cost_microusd = (kind.unit() == Unit::Tokens).then_some(cost);
        Limit { kind, meter, resets, forecast: None, cost_microusd }
    };
    let mut out = vec![with_reset(LimitKind::DealTokens, meter(standing.deal_tokens, overrides.deal.unwrap_or(b.deal_tokens)))];
    if !is_admin {
        out.push(with_reset(LimitKind::UserDailyTokens, meter(standing.user_day_tokens, overrides.user_daily.unwrap_or(b.user_daily_tokens))));
        let monthly = overrides.user_monthly.unwrap_or(micro(limits.user_monthly_usd));
        if overrides.user_monthly.is_some() || limits.user_monthly_usd > 0.0 {
            out.push(with_reset(LimitKind::UserMonthlyUsd, meter(standing.user_month_microusd, monthly)));
        }
    }
    let enforce = |nominal: u64| (nominal as f64 * limits.firm_enforce_ratio).floor() as u64;
    let token_caps = [limits.firm_hourly_tokens, limits.firm_daily_tokens, limits.firm_monthly_tokens];
    let usd_caps = [limits.firm_hourly_usd, limits.firm_daily_usd, limits.firm_monthly_usd];
    for (i, window) in Window::ALL.into_iter().enumerate() {
        if token_caps[i] > 0 {
            out.push(with_reset(LimitKind::FirmTokens(window), meter(standing.firm_tokens[i], enforce(token_caps[i]))));
        }
        if usd_caps[i] > 0.0 {
            out.push(with_reset(LimitKind::FirmUsd(window), meter(standing.firm_microusd[i], enforce(micro(usd_caps[i])))));
        }
    }
    out
}

/// The caller's budgets on a deal as they stand now.
pub async fn status(state: &AppState, ctx: &Ctx, deal_id: i64) -> Result<BudgetStatus, AppError> {
    Ok(status_and_limits(state, ctx, deal_id).await?.0)
}

/// `status`, and the firm's limits in force it was decided with (for a pre-flight that
/// must apply the same per-request cap).
pub async fn status_and_limits(state: &AppState, ctx: &Ctx, deal_id: i64) -> Result<(BudgetStatus, Limits), AppError> {
    let now = now_millis();
    let settings = &state.settings;
    let day = local_day(now, settings.time.tz());
    let mut conn = state.db.read().await?;
    let (stored, read) = store::limits_and_standing(&mut conn, ctx.user_id, deal_id, &day, now).await?;
    conn.ended_well();
    drop(conn);
    let limits = limits_of_stored(stored, &settings.limits);
    let Some((overrides, standing)) = read else {
        return Err(AppError::not_found("deal"));
    };
    let mut all = limits_of(&standing, &overrides, ctx.is_admin(), settings, &limits, now);
    with_forecasts(state, &mut all, ctx.user_id, deal_id, now).await?;
    let deal = all.iter().find(|l| l.kind == LimitKind::DealTokens).map(|l| l.meter).unwrap_or_default();
    let c = &settings.claude;
    let alert = latest_alert_message(state, ctx, &day).await?;
    let status = BudgetStatus {
        deal_state: deal.state(settings.budget.warn_ratio),
        limits: all,
        warn_ratio: settings.budget.warn_ratio,
        firm: firm_levels(&limits),
        min_useful_output_tokens: u64::from(limits.min_useful_output_tokens),
        smallest_call_tokens: u64::from(c.max_tokens_chat.min(c.max_tokens_report).min(c.max_tokens_extraction).min(limits.min_useful_output_tokens)),
        alert,
        model_choice: model_choice(&limits, &overrides),
    };
    Ok((status, limits))
}

/// Budget-aware model choice for a user, when it applies: their own setting, else the firm's.
pub fn model_choice(limits: &Limits, overrides: &Overrides) -> Option<super::ModelChoice> {
    overrides
        .model_choice
        .unwrap_or(limits.model_choice)
        .then(|| super::ModelChoice { tiers: limits.model_tiers.clone(), shares: limits.model_tier_shares.clone() })
}

/// The caller's own usage this month and every limit on their calls (deals' aside).
pub async fn my_usage(state: &AppState, ctx: &Ctx) -> Result<super::MyUsage, AppError> {
    let now = now_millis();
    let settings = &state.settings;
    let day = local_day(now, settings.time.tz());
    let mut conn = state.db.read().await?;
    let limits = limits_in_force(&mut conn, &settings.limits).await?;
    let overrides = store::read_user_overrides(&mut conn, ctx.user_id).await?.ok_or_else(|| AppError::not_found("user"))?;
    let standing = crate::usage::store::standing(&mut conn, ctx.user_id, 0, &day, now).await?;
    let month_key = CounterKey::user_month(ctx.user_id, &day);
    let (tokens, spent, calls) = crate::usage::store::counter_with_calls(&mut conn, &month_key).await?;
    conn.ended_well();
    drop(conn);
    let mut all: Vec<Limit> = limits_of(&standing, &overrides, ctx.is_admin(), settings, &limits, now).into_iter().filter(|l| l.kind != LimitKind::DealTokens).collect();
    with_forecasts(state, &mut all, ctx.user_id, 0, now).await?;
    let n = |v: i64| v.max(0) as u64;
    // Where the month is heading whatever the limits: the pace of the last days.
    let zone = settings.time.tz();
    let window = settings.alerts.burn_window_days;
    let history = crate::usage::service::past_days(state, "user", ctx.user_id, &crate::time::days_before(now, zone, window)).await?;
    let month_end = Some(window_end(Window::Month, now, zone));
    let pace = |used: u64, of_day: fn(&(u64, u64)) -> u64| {
        let days: Vec<u64> = history.iter().map(of_day).collect();
        crate::forecast::forecast(used, u64::MAX, &days, window, now, month_end, zone)
    };
    let month_tokens = pace(n(tokens), |d| d.0);
    let month_usd = pace(n(spent), |d| d.1);
    Ok(super::MyUsage {
        month: month_of(&day).to_string(),
        tokens: n(tokens),
        spent_microusd: n(spent),
        calls: n(calls),
        month_tokens,
        month_usd,
        window_days: window,
        limits: all,
        warn_ratio: settings.budget.warn_ratio,
    })
}

/// "You have used 75% of your $50.00 monthly budget." — the caller's latest alert this month.
async fn latest_alert_message(state: &AppState, ctx: &Ctx, day: &str) -> Result<Option<String>, AppError> {
    if ctx.is_admin() {
        return Ok(None);
    }
    let period = CounterKey::user_month(ctx.user_id, day).period;
    let alert = crate::alerts::store::latest(&state.db, "user", ctx.user_id, &period).await?;
    Ok(alert.map(|(level, used, budget)| match level.as_str() {
        crate::alerts::PROJECTED_OVERRUN => {
            format!("At this pace you will use about {} this month, over your {} monthly budget.", format_dollars(used), format_dollars(budget))
        }
        share => format!("You have used {share} of your {} monthly budget.", format_dollars(budget)),
    }))
}

/// Spend against budget: each active analyst's spend this month against their monthly
/// budget, each deal's tokens against its lifetime budget, most used first.
pub async fn budget_uses(state: &AppState) -> Result<super::BudgetUses, AppError> {
    let now = now_millis();
    let day = local_day(now, state.settings.time.tz());
    let mut conn = state.db.read().await?;
    let limits = limits_in_force(&mut conn, &state.settings.limits).await?;
    conn.ended_well();
    drop(conn);
    let spent = crate::usage::store::spend_of_period(&state.db, "user", &CounterKey::user_month(0, &day).period).await?;
    let used = crate::usage::store::deals_used(&state.db).await?;
    let by_share = |a: &super::BudgetUse, b: &super::BudgetUse| b.share().total_cmp(&a.share()).then(b.used.cmp(&a.used));
    let mut users: Vec<super::BudgetUse> = store::analyst_monthly_limits(&state.db)
        .await?
        .into_iter()
        .map(|(id, name, limit)| super::BudgetUse {
            id,
            name,
            used: spent.get(&id).copied().unwrap_or(0),
            // As the gateway reads it: the analyst's own, else the firm's when it has one.
            limit: limit.or((limits.user_monthly_usd > 0.0).then(|| micro(limits.user_monthly_usd))),
            unit: super::Unit::MicroUsd,
        })
        .collect();
    users.sort_by(by_share);
    let mut deals: Vec<super::BudgetUse> = store::named_deal_limits(&state.db)
        .await?
        .into_iter()
        .map(|(id, name, limit)| super::BudgetUse {
            id,
            name,
            used: used.get(&id).copied().unwrap_or(0),
            limit: Some(limit.unwrap_or(state.settings.budget.deal_tokens)),
            unit: super::Unit::Tokens,
        })
        .collect();
    deals.sort_by(by_share);
    Ok(super::BudgetUses { month: month_of(&day).to_string(), users, deals, warn_ratio: state.settings.budget.warn_ratio })
}

/// Every deal's lifetime budget as lists show it, by deal id.
pub async fn deal_budgets(state: &AppState) -> Result<HashMap<i64, DealBudget>, AppError> {
    let used = crate::usage::store::deals_used(&state.db).await?;
    let b = &state.settings.budget;
    Ok(deal_limits(&state.db)
        .await?
        .into_iter()
        .map(|(id, limit)| (id, deal_budget(used.get(&id).copied().unwrap_or(0), limit, b)))
        .collect())
}

pub fn deal_budget(used: u64, limit: Option<u64>, b: &BudgetSettings) -> DealBudget {
    let meter = Meter { used, reserved: 0, limit: limit.unwrap_or(b.deal_tokens) };
    DealBudget { used: meter.used, limit: meter.limit, state: meter.state(b.warn_ratio) }
}

/// Analysts at or over their daily budget's warning level today, deals at or over their
/// lifetime budget's, keyed by id as report rows are; and the firm's caps at or past
/// their warning level.
pub async fn flags(state: &AppState) -> Result<BudgetFlags, AppError> {
    let b = &state.settings.budget;
    let now = now_millis();
    let day = local_day(now, state.settings.time.tz());
    let today = CounterKey::user_day(0, &day).period;
    let used_today = crate::usage::store::counters_of_period(&state.db, "user", &today).await?;
    let users = analyst_daily_limits(&state.db).await?.into_iter().filter_map(|(id, limit)| {
        let meter = Meter { used: used_today.get(&id).copied()?, reserved: 0, limit: limit.unwrap_or(b.user_daily_tokens) };
        let state = meter.state(b.warn_ratio);
        (state != BudgetState::Ok).then(|| (id.to_string(), state))
    });
    let users = users.collect();
    let deals = deal_budgets(state).await?.into_iter().filter(|(_, d)| d.state != BudgetState::Ok).map(|(id, d)| (id.to_string(), d.state)).collect();
    let (caps, levels) = firm_caps(state, now).await?;
    let firm = caps.into_iter().filter(|(_, level)| *level != FirmLevel::Normal).collect();
    let firm_month = Some(firm_month(state, now).await?);
    Ok(BudgetFlags { users, deals, firm, firm_critical_max_request_tokens: levels.critical_max_request_tokens, firm_month })
}

/// The firm's monthly spending cap in force (as set: the enforce ratio aside) against the
/// month's spend so far, from the firm's month counter.
pub async fn firm_month(state: &AppState, now: i64) -> Result<super::FirmMonthBudget, AppError> {
    let settings = &state.settings;
    let day = local_day(now, settings.time.tz());
    let mut conn = state.db.read().await?;
    let limits = limits_in_force(&mut conn, &settings.limits).await?;
    let (_, spent) = crate::usage::store::counter(&mut conn, &CounterKey::firm(Window::Month, now, &day)).await?;
    conn.ended_well();
    Ok(super::FirmMonthBudget {
        month: month_of(&day).to_string(),
        spent_microusd: spent.max(0) as u64,
        cap_microusd: (limits.firm_monthly_usd > 0.0).then(|| micro(limits.firm_monthly_usd)),
    })
}

/// The firm's caps that are set, where they stand, and their levels.
pub async fn firm_caps(state: &AppState, now: i64) -> Result<(Vec<(Limit, FirmLevel)>, FirmLevels), AppError> {
    let settings = &state.settings;
    let day = local_day(now, settings.time.tz());
    let mut conn = state.db.read().await?;
    let limits = limits_in_force(&mut conn, &settings.limits).await?;
    conn.ended_well();
    let levels = firm_levels(&limits);
    if !any_firm_cap(&limits) {
        return Ok((Vec::new(), levels));
    }
    let standing = crate::usage::store::standing(&mut conn, 0, 0, &day, now).await?;
    conn.ended_well();
    let none = Overrides { user_daily: None, user_monthly: None, deal: None, model_choice: None };
    let caps = limits_of(&standing, &none, true, settings, &limits, now)
        .into_iter()
        .filter(|l| l.kind.is_firm())
        .map(|l| {
            let level = levels.level(&l.meter);
            (l, level)
        })
        .collect();
    Ok((caps, levels))
}

/// A limit not among those read (cannot happen: a refusal names a limit that applies).
fn unknown(kind: LimitKind) -> Limit {
    Limit { kind, meter: Meter::default(), resets: None, forecast: None, cost_microusd: None }
}

/// The refusal, in words the user can act on (for a budget that is used up, the deal
/// page's banner), with when to try again where a window resets.
pub fn refusal_error(refusal: Refusal, limits: &[Limit], call: &CallSize, firm: &FirmLevels, now: i64, zone: chrono_tz::Tz) -> AppError {
    let find = |kind: LimitKind| limits.iter().find(|l| l.kind == kind);
    let amount = |kind: LimitKind, value: u64| match kind.unit() {
        super::Unit::Tokens => format!("{} tokens", format_tokens(value)),
        super::Unit::MicroUsd => format_dollars(value as i64),
    };
    let retry = |kind: LimitKind| limit_end(kind, now, zone).map(|end| ((end - now).max(1000) as u64).div_ceil(1000));
    match refusal {
        Refusal::DailyLimit => {
            let limit = find(LimitKind::UserDailyTokens).cloned().unwrap_or_else(|| unknown(LimitKind::UserDailyTokens));
            AppError::new(ErrorKind::DailyLimitReached, super::wording::daily_used_up(&limit, &resets_in(now, zone)))
        }
        Refusal::DealBudget { exhausted } => {
            let limit = find(LimitKind::DealTokens).cloned().unwrap_or_else(|| unknown(LimitKind::DealTokens));
            let deal = limit.meter;
            let message = if exhausted {
                super::wording::deal_used_up(&limit)
            } else {
                format!("This deal has {} tokens left, not enough for this request. An admin can raise its budget.", format_tokens(deal.remaining()))
            };
            AppError::new(ErrorKind::DealBudgetExhausted, message)
        }
        Refusal::MonthlyBudget => {
            let meter = find(LimitKind::UserMonthlyUsd).map(|l| l.meter).unwrap_or_default();
            let resets = limit_end(LimitKind::UserMonthlyUsd, now, zone).map(|end| resets_at(end, now, zone)).unwrap_or_default();
            AppError::new(
                ErrorKind::MonthlyBudgetReached,
                format!(
                    "This request could cost up to {}, more than the {} left of your {} monthly budget. It resets at {resets}.",
                    format_dollars(call.cost(call.output_tokens.min(u64::from(u32::MAX))) as i64),
                    format_dollars(meter.remaining() as i64),
                    format_dollars(meter.limit as i64),
                ),
            )
        }
        Refusal::FirmCap { kind, level } => {
            let full = find(kind).cloned().unwrap_or_else(|| unknown(kind));
            let limit = full.meter;
            let resets = limit_end(kind, now, zone).map(|end| resets_at(end, now, zone)).unwrap_or_default();
            let cap = kind.describe();
            let banner = super::wording::firm(&full, level, firm.critical_max_request_tokens, &resets);
            let message = match (level, banner) {
                (FirmLevel::Stop, Some(banner)) => banner,
                (FirmLevel::Critical, Some(banner)) => {
                    format!("{banner} This one needs {}. Shorten it or try later.", format_tokens(call.input_tokens + call.output_tokens))
                }
                _ => format!("This request would pass {cap} ({} left). It resets at {resets}.", amount(kind, limit.remaining())),
            };
            AppError::new(ErrorKind::FirmCapReached, message).retry_after(retry(kind))
        }
    }
}

/// Fills in the forecasts of the limits people plan by: the deal's budget, the user's
/// month, the firm's day and month. One short read per scope, from the daily counters.
pub async fn with_forecasts(state: &AppState, limits: &mut [Limit], user_id: i64, deal_id: i64, now: i64) -> Result<(), AppError> {
    forecasts_of(state, limits, user_id, deal_id, now, |_| true).await
}

/// Whether a limit alerts on a projected overrun (`crossed`): only these need a forecast
/// after a call.
fn alerts_on_overrun(kind: LimitKind) -> bool {
    matches!(kind, LimitKind::UserMonthlyUsd | LimitKind::FirmTokens(_) | LimitKind::FirmUsd(_))
}

/// `with_forecasts` for the limits of the kinds `wanted` says (the history of the others
/// is not read).
async fn forecasts_of(state: &AppState, limits: &mut [Limit], user_id: i64, deal_id: i64, now: i64, wanted: fn(LimitKind) -> bool) -> Result<(), AppError> {
    let zone = state.settings.time.tz();
    let window = state.settings.alerts.burn_window_days;
    let days = crate::time::days_before(now, zone, window);
    let (Some(first), Some(last)) = (days.first(), days.last()) else { return Ok(()) };
    let wants = |kind: LimitKind| wanted(kind) && limits.iter().any(|l| l.kind == kind);
    let user = if wants(LimitKind::UserMonthlyUsd) { crate::usage::service::past_days(state, "user", user_id, &days).await? } else { Vec::new() };
    let firm_wanted = limits.iter().any(|l| wanted(l.kind) && matches!(l.kind, LimitKind::FirmTokens(Window::Day | Window::Month) | LimitKind::FirmUsd(Window::Day | Window::Month)));
    let firm = if firm_wanted { crate::usage::service::past_days(state, "firm", 0, &days).await? } else { Vec::new() };
    let deal = if wants(LimitKind::DealTokens) { crate::usage::store::deal_daily_tokens(&state.db, deal_id, first, last).await? } else { Vec::new() };
    for limit in limits.iter_mut().filter(|l| wanted(l.kind)) {
        let history: Vec<u64> = match limit.kind {
            LimitKind::DealTokens => deal.clone(),
            LimitKind::UserMonthlyUsd => user.iter().map(|d| d.1).collect(),
            LimitKind::FirmTokens(Window::Day | Window::Month) => firm.iter().map(|d| d.0).collect(),
            LimitKind::FirmUsd(Window::Day | Window::Month) => firm.iter().map(|d| d.1).collect(),
            _ => continue,
        };
        let end = limit_end(limit.kind, now, zone);
        limit.forecast = Some(crate::forecast::forecast(limit.meter.used, limit.meter.limit, &history, window, now, end, zone));
    }
    Ok(())
}

/// Records the alerts the caller's latest call may have crossed: their monthly budget at
/// each configured share, the deal's budget at its warning level and used up, the
/// firm's caps at their warning, critical and stop levels, and a projected overrun of
/// the month's budget or a firm cap's day or month. Each fires once per threshold and
/// period, whichever instance sees it first. Runs after the reply, off its path.
pub async fn fire_alerts(state: &AppState, ctx: &Ctx, deal_id: i64) -> Result<(), AppError> {
    let now = now_millis();
    let settings = &state.settings;
    let day = local_day(now, settings.time.tz());
    let mut conn = state.db.read().await?;
    let (stored, read) = store::limits_and_standing(&mut conn, ctx.user_id, deal_id, &day, now).await?;
    conn.ended_well();
    drop(conn);
    let limits = limits_of_stored(stored, &settings.limits);
    let Some((overrides, standing)) = read else { return Ok(()) };
    let mut all = limits_of(&standing, &overrides, ctx.is_admin(), settings, &limits, now);
    forecasts_of(state, &mut all, ctx.user_id, deal_id, now, alerts_on_overrun).await?;
    let reached = crossed(&all, &limits, ctx.user_id, deal_id, settings.budget.warn_ratio, now, &day);
    // Most calls cross nothing new: then nothing is written (no write lock is taken).
    let alerts = crate::alerts::store::not_yet_fired(&state.db, reached).await?;
    if alerts.is_empty() {
        return Ok(());
    }
    let deliver = !settings.alerts.webhook_url.is_empty();
    let mut tx = state.db.begin_write().await?;
    for alert in &alerts {
        if crate::alerts::store::insert(&mut tx, alert, deliver).await?.is_some() {
            tracing::warn!(scope = alert.scope, id = alert.scope_id, period = %alert.period, level = %alert.level, "budget alert");
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The thresholds `limits` stand past now (the store keeps each once).
fn crossed(all: &[Limit], limits: &Limits, user_id: i64, deal_id: i64, warn_ratio: f64, now: i64, day: &str) -> Vec<NewAlert> {
    let levels = firm_levels(limits);
    let mut alerts = Vec::new();
    for limit in all {
        let (used, budget) = (limit.meter.used, limit.meter.limit);
        let unit = if limit.kind.unit() == super::Unit::Tokens { "tokens" } else { "microusd" };
        let alert = |scope: &'static str, scope_id: i64, period: String, level: String, used: u64| NewAlert {
            scope,
            scope_id,
            period,
            level,
            used: used as i64,
            budget: budget as i64,
            unit,
            at: now,
        };
        let overrun = limit.forecast.as_ref().filter(|f| f.overruns(budget)).and_then(|f| f.at_period_end);
        match limit.kind {
            LimitKind::UserMonthlyUsd if budget > 0 => {
                let period = format!("month:{}", month_of(day));
                for ratio in &limits.user_monthly_alert_ratios {
                    if used as f64 >= budget as f64 * ratio {
                        alerts.push(alert("user", user_id, period.clone(), format!("{:.0}%", ratio * 100.0), used));
                    }
                }
                if let Some(projected) = overrun {
                    alerts.push(alert("user", user_id, period, crate::alerts::PROJECTED_OVERRUN.into(), projected));
                }
            }
            LimitKind::DealTokens => {
                if used >= budget {
                    alerts.push(alert("deal", deal_id, "life".into(), "blocked".into(), used));
                }
                if used as f64 >= budget as f64 * warn_ratio {
                    alerts.push(alert("deal", deal_id, "life".into(), "warning".into(), used));
                }
            }
            LimitKind::FirmTokens(window) | LimitKind::FirmUsd(window) => {
                let reached = Meter { used, reserved: 0, limit: budget };
                let crossed: &[FirmLevel] = match levels.level(&reached) {
                    FirmLevel::Normal => &[],
                    FirmLevel::Warning => &[FirmLevel::Warning],
                    FirmLevel::Critical => &[FirmLevel::Warning, FirmLevel::Critical],
                    FirmLevel::Stop => &[FirmLevel::Warning, FirmLevel::Critical, FirmLevel::Stop],
                };
                let period = format!("{}:{}", CounterKey::firm(window, now, day).period, unit);
                for level in crossed {
                    let name = serde_json::to_value(level).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                    alerts.push(alert("firm", 0, period.clone(), name, used));
                }
                if let Some(projected) = overrun {
                    alerts.push(alert("firm", 0, period, crate::alerts::PROJECTED_OVERRUN.into(), projected));
                }
            }
            _ => {}
        }
    }
    alerts
}

/// Sets (or with None, clears) a budget override, with its audit entry, in one transaction.
pub async fn set_override(state: &AppState, actor: &Actor, which: store::Override, id: i64, value: Option<i64>) -> Result<(), AppError> {
    let (noun, what, show): (&str, &str, fn(Option<i64>) -> String) = match which {
        store::Override::UserDaily => ("user", "daily budget", |v| v.map_or("default".into(), |t| format!("{} tokens", format_tokens(t.max(0) as u64)))),
        store::Override::UserMonthly => ("user", "monthly budget", |v| v.map_or("default".into(), format_dollars)),
        store::Override::UserModelChoice => ("user", "model choice", |v| match v {
            None => "as the firm".into(),
            Some(0) => "off".into(),
            Some(_) => "on".into(),
        }),
        store::Override::Deal => ("deal", "budget", |v| v.map_or("default".into(), |t| format!("{} tokens", format_tokens(t.max(0) as u64)))),
    };
    let mut tx = state.db.begin_write().await?;
    let Some((old, name)) = store::current_override(&mut tx, which, id).await? else {
        return Err(AppError::not_found(noun));
    };
    store::set_override(&mut tx, which, id, value).await?;
    crate::audit::store::record(&mut tx, actor, now_millis(), &format!("{noun} {name}: {what}"), &show(old), &show(value)).await?;
    tx.commit().await?;
    Ok(())
}

/// The limits in force as the admin form shows them.
pub async fn limits_view(state: &AppState) -> Result<super::LimitsView, AppError> {
    let mut conn = state.db.read().await?;
    let saved = store::stored_limits(&mut conn).await?.is_some();
    let limits = limits_in_force(&mut conn, &state.settings.limits).await?;
    conn.ended_well();
    Ok(super::LimitsView { form: super::LimitsForm::of(&limits), saved })
}

/// Saves an admin's limits (None: back to the configured ones), auditing every field
/// that changes, in one transaction.
pub async fn save_limits(state: &AppState, actor: &Actor, limits: Option<Limits>) -> Result<(), AppError> {
    let now = now_millis();
    let mut tx = state.db.begin_write().await?;
    let before = limits_in_force(&mut tx, &state.settings.limits).await?;
    let after = limits.clone().unwrap_or_else(|| state.settings.limits.clone());
    let json = match &limits {
        Some(l) => Some(serde_json::to_string(l).map_err(|e| AppError::internal("limits json", e))?),
        None => None,
    };
    let by = actor.id.unwrap_or(0);
    store::save_limits(&mut tx, json.as_deref(), by, now).await?;
    for (key, old, new) in changed_fields(&before, &after) {
        crate::audit::store::record(&mut tx, actor, now, &format!("limits.{key}"), &old, &new).await?;
    }
    if limits.is_none() {
        crate::audit::store::record(&mut tx, actor, now, "limits", "set on /admin/limits", "the values in Leptos.toml").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The fields that differ between two sets of limits: name, before, after.
fn changed_fields(before: &Limits, after: &Limits) -> Vec<(String, String, String)> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(before), serde_json::to_value(after)) else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|(key, old)| {
            let new = b.get(key)?;
            (old != new).then(|| (key.clone(), old.to_string(), new.to_string()))
        })
        .collect()
}
