//! The operators' limit tools: `budget status` (every limit that applies to a user or
//! a deal: used, reserved, remaining, when it resets), `budget reset` (a window started
//! afresh by an audited adjustment; usage records are never changed) and `prices list`
//! and `prices set` (the price book, a dated price added with its audit entry).

use app::audit::Actor;
use app::auth::UserRole;
use app::budget::store::Overrides;
use app::budget::{Limit, LimitKind, Unit};
use app::db::Db;
use app::format::{format_dollars, format_rate, format_tokens};
use app::prices::PriceStatus;
use app::settings::Settings;
use app::time::{local_day, now_millis};
use app::usage::CounterKey;
use app::usage::store::{Adjustment, counter, insert_adjustment};

/// A user as the tools name them: id and role, from an email.
async fn find_user(db: &Db, email: &str) -> Result<(i64, UserRole), String> {
    let email = app::auth::normalize_email(email);
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, role FROM users WHERE email = $1").bind(&email).fetch_optional(&db.pool).await.map_err(|e| e.to_string())?;
    row.map(|(id, role)| (id, UserRole::parse(&role).unwrap_or(UserRole::Analyst))).ok_or(format!("no user with email {email}"))
}

/// Prints every limit that applies to the user's calls (on the deal, if given), or the
/// deal's and the firm's when no user is given, with the user's rate limits.
pub async fn status(db: &Db, settings: &Settings, email: Option<&str>, deal: Option<i64>) -> Result<(), String> {
    let now = now_millis();
    let zone = settings.time.tz();
    let user = match email {
        Some(email) => Some(find_user(db, email).await?),
        None => None,
    };
    let (user_id, is_admin) = user.map_or((0, true), |(id, role)| (id, role == UserRole::Admin));
    let mut conn = db.pool.acquire().await.map_err(|e| e.to_string())?;
    let limits = app::budget::service::limits_in_force(&mut conn, &settings.limits).await.map_err(|e| e.to_string())?;
    let overrides = match deal {
        Some(deal_id) => app::budget::store::read_overrides(&mut conn, user_id, deal_id).await.map_err(|e| e.to_string())?.ok_or(format!("no deal {deal_id}"))?,
        None => app::budget::store::read_user_overrides(&mut conn, user_id)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(Overrides { user_daily: None, user_monthly: None, deal: None, model_choice: None }),
    };
    let standing = app::usage::store::standing(&mut conn, user_id, deal.unwrap_or(0), &local_day(now, zone), now).await.map_err(|e| e.to_string())?;
    let all = app::budget::service::limits_of(&standing, &overrides, is_admin, settings, &limits, now);
    let levels = app::budget::service::firm_levels(&limits);
    println!("{:<34} {:>16} {:>16} {:>16} {:>16}  resets", "limit", "used", "reserved", "remaining", "of");
    for limit in all.iter().filter(|l| deal.is_some() || l.kind != LimitKind::DealTokens) {
        print_limit(limit, &levels);
    }
    if let Some((id, role)) = user {
        if role == UserRole::Admin {
            println!("(an admin: no personal budgets)");
        }
        print_rate_limits(&mut conn, id, &limits, now, zone).await?;
    }
    println!("largest request: {} tokens (input and reply)", format_tokens(limits.max_request_tokens));
    Ok(())
}

fn print_limit(limit: &Limit, levels: &app::budget::FirmLevels) {
    let amount = |v: u64| match limit.kind.unit() {
        Unit::Tokens => format_tokens(v),
        Unit::MicroUsd => format_dollars(v as i64),
    };
    let m = limit.meter;
    let level = if limit.kind.is_firm() { format!(" [{:?}]", levels.level(&m)).to_lowercase() } else { String::new() };
    println!(
        "{:<34} {:>16} {:>16} {:>16} {:>16}  {}{level}",
        limit.kind.describe(),
        amount(m.used),
        amount(m.reserved),
        amount(m.remaining()),
        amount(m.limit),
        limit.resets.clone().unwrap_or_else(|| "never (lifetime)".into())
    );
}

async fn print_rate_limits(conn: &mut sqlx::AnyConnection, user_id: i64, limits: &app::limits::Limits, now: i64, zone: chrono_tz::Tz) -> Result<(), String> {
    let minute = format!("minute:{}", now.div_euclid(60_000));
    let day = format!("day:{}", local_day(now, zone));
    let counts = app::budget::store::requests_in(conn, user_id, &[&minute, &day]).await.map_err(|e| e.to_string())?;
    let allowed = |n: u32| if n == 0 { "no limit".to_string() } else { n.to_string() };
    println!("requests this minute: {} of {}", counts[0], allowed(limits.user_requests_per_minute));
    println!("requests today: {} of {}", counts[1], allowed(limits.user_requests_per_day));
    Ok(())
}

/// Starts a user's daily or monthly window afresh: an adjustment of minus what the
/// window's counter holds, with its audit entry, in one transaction.
pub async fn reset(db: &Db, settings: &Settings, email: &str, window: &str) -> Result<(), String> {
    let (user_id, _) = find_user(db, email).await?;
    let now = now_millis();
    let day = local_day(now, settings.time.tz());
    let key = match window {
        "day" => CounterKey::user_day(user_id, &day),
        "month" => CounterKey::user_month(user_id, &day),
        other => return Err(format!("--window must be day or month, not {other}")),
    };
    let mut tx = db.begin_write().await.map_err(|e| e.to_string())?;
    let (tokens, cost) = counter(&mut tx, &key).await.map_err(|e| e.to_string())?;
    let actor = Actor::cli();
    let adjustment = Adjustment { key: key.clone(), tokens: -tokens, cost_microusd: -cost, reason: format!("{window} budget reset"), actor: actor.name.clone(), at: now };
    insert_adjustment(&mut tx, &adjustment).await.map_err(|e| e.to_string())?;
    let subject = format!("user {}: {window} budget window ({})", app::auth::normalize_email(email), key.period);
    let before = format!("{} tokens, {}", format_tokens(tokens.max(0) as u64), format_dollars(cost));
    app::audit::store::record(&mut tx, &actor, now, &subject, &before, "started afresh (0)").await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!("{subject}: {before} set aside; the window starts afresh");
    Ok(())
}

/// Prints the price book: every dated price, current ones marked.
pub async fn prices_list(db: &Db, settings: &Settings) -> Result<(), String> {
    let book = settings.pricing.price_book();
    app::prices::service::refresh(db, &book).await.map_err(|e| e.to_string())?;
    let view = app::prices::service::view(&book, &settings.claude.model, now_millis());
    println!("{:<24} {:<17} {:<9} {:>10} {:>10} {:>10} {:>10} {:>10}  source", "model", "from (UTC)", "status", "input", "output", "write 5m", "write 1h", "read");
    for p in &view.prices {
        let status = match p.status {
            PriceStatus::Current => "current",
            PriceStatus::Scheduled => "scheduled",
            PriceStatus::Past => "past",
        };
        let r = p.rates;
        let long = p.long_prompt.map(|t| format!("; over {} tokens: {} / {}", t.above_tokens, format_rate(t.rates.input), format_rate(t.rates.output))).unwrap_or_default();
        println!(
            "{:<24} {:<17} {:<9} {:>10} {:>10} {:>10} {:>10} {:>10}  {}{long}",
            p.model,
            p.from,
            status,
            format_rate(r.input),
            format_rate(r.output),
            format_rate(r.cache_write_5m),
            format_rate(r.cache_write_1h),
            format_rate(r.cache_read),
            p.source
        );
    }
    println!("USD per million tokens; a model with no price is charged {} in / {} out and flagged.", format_rate(view.fallback.input), format_rate(view.fallback.output));
    Ok(())
}

/// The fields of `prices set`, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceArgs {
    pub model: String,
    pub from: String,
    pub input: String,
    pub output: String,
    pub cache_write_5m: String,
    pub cache_write_1h: String,
    pub cache_read: String,
    pub long_above: String,
    pub long: [String; 5],
}

/// Adds a dated price (audited as the command line's change).
pub async fn prices_set(db: &Db, settings: &Settings, args: PriceArgs) -> Result<(), String> {
    let book = settings.pricing.price_book();
    app::prices::service::refresh(db, &book).await.map_err(|e| e.to_string())?;
    let [li, lo, l5, l1, lr] = &args.long;
    let price = app::prices::service::NewPrice {
        model: app::prices::parse_model(&args.model).map_err(|e| e.message)?,
        rates: app::prices::parse_rates(&args.input, &args.output, &args.cache_write_5m, &args.cache_write_1h, &args.cache_read, "").map_err(|e| e.message)?,
        long_prompt: app::prices::parse_long_prompt(&args.long_above, [li, lo, l5, l1, lr]).map_err(|e| e.message)?,
        effective_from: app::prices::service::effective_from(&args.from, settings.time.tz(), now_millis()).map_err(|e| e.message)?,
    };
    let model = price.model.clone();
    app::prices::service::add(db, &book, &Actor::cli(), price).await.map_err(|e| e.message)?;
    println!("price of {model} added");
    Ok(())
}
