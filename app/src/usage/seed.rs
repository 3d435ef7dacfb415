//! Synthetic usage history for benchmarks (`server usage seed`), the check that daily
//! aggregates and raw records agree (`server usage check`), and the dashboard benchmark
//! (`server usage bench`). Seeding writes records and aggregates in bulk, computing the
//! aggregates from exactly the records it writes.

use std::collections::HashMap;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::report::{Filter, dashboard};
use super::tracker::{DAILY_ADD, DAILY_INSERT, ROLLUP_ADD, ROLLUP_INSERT, local_day};
use crate::claude::pricing::{TokenUsage, cost_microusd};
use crate::db::{Db, now_millis};
use crate::error::AppError;
use crate::settings::Settings;

const ROWS_PER_INSERT: usize = 1_000;
const MODELS: [(&str, u32); 4] = [("claude-sonnet-4-6", 70), ("claude-haiku-4-5", 20), ("claude-opus-4-7", 8), ("claude-experimental-x", 2)];
const OPERATIONS: [(&str, u32); 3] = [("chat", 70), ("report", 15), ("extraction", 15)];

type Key = (String, i64, i64, String, String);

fn pick<'a>(rng: &mut StdRng, weighted: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = weighted.iter().map(|w| w.1).sum();
    let mut roll = rng.gen_range(0..total);
    for (item, weight) in weighted {
        if roll < *weight {
            return item;
        }
        roll -= weight;
    }
    weighted[0].0
}

/// Seeds `records` usage records over the last `days` days for 40 analysts, 2 admins and
/// 150 deals (created if missing; the seeded accounts cannot sign in).
pub async fn seed(db: &Db, settings: &Settings, records: usize, days: i64) -> Result<(), AppError> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(42);
    let unusable_hash = crate::auth::ssr::hash_password(format!("{:x}", rng.r#gen::<u128>())).await?;
    let mut users = Vec::new();
    for i in 0..42 {
        let (email, role) = if i < 2 { (format!("seed-admin-{i}@seed.dealdesk.test"), "admin") } else { (format!("seed-analyst-{i}@seed.dealdesk.test"), "analyst") };
        sqlx::query("INSERT INTO users (email, password_hash, role, active, created_at) VALUES ($1, $2, $3, 1, $4) ON CONFLICT (email) DO NOTHING")
            .bind(&email).bind(&unusable_hash).bind(role).bind(now_millis())
            .execute(&db.pool).await?;
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(&email).fetch_one(&db.pool).await?;
        users.push(id);
    }
    let mut deals = Vec::new();
    for i in 0..150 {
        let input = crate::deals::DealInput::parse(&format!("Seed deal {i:03}"), "", crate::deals::PROPERTY_TYPES[i % 8], "", "")?;
        deals.push(crate::deals::store::create(db, users[2 + i % 40], &input).await?);
    }
    let prices = settings.pricing.price_table();
    let tz = settings.time.tz();
    let now = now_millis();
    let mut aggregates: HashMap<Key, [i64; 8]> = HashMap::new();
    let mut rows: Vec<(i64, i64, String, String, [i64; 4], i64, i64, i64, &str, i64)> = Vec::with_capacity(ROWS_PER_INSERT);
    for n in 0..records {
        // Heavy users: the square skews towards the first analysts.
        let user = users[2 + ((rng.r#gen::<f64>().powi(2)) * 40.0) as usize % 40];
        let user = if rng.gen_ratio(1, 20) { users[rng.gen_range(0..2)] } else { user };
        let deal = if rng.gen_ratio(1, 20) { 0 } else { deals[rng.gen_range(0..deals.len())] };
        let model = pick(&mut rng, &MODELS).to_string();
        let operation = pick(&mut rng, &OPERATIONS).to_string();
        let outcome = match rng.gen_range(0..100) { 0 => "busy", 1..=4 => "error", _ => "ok" };
        let usage = if outcome == "ok" {
            TokenUsage {
                input_tokens: rng.gen_range(200..20_000),
                output_tokens: rng.gen_range(50..4_000),
                cache_creation_input_tokens: if rng.gen_ratio(1, 10) { rng.gen_range(1_000..8_000) } else { 0 },
                cache_read_input_tokens: if rng.gen_ratio(1, 5) { rng.gen_range(1_000..8_000) } else { 0 },
            }
        } else {
            TokenUsage::default()
        };
        let (rates, default_price) = prices.rates_for(&model);
        let cost = cost_microusd(&usage, &rates);
        let created_at = now - rng.gen_range(0..days * 86_400_000);
        let tokens = [usage.input_tokens as i64, usage.output_tokens as i64, usage.cache_creation_input_tokens as i64, usage.cache_read_input_tokens as i64];
        let sums = aggregates.entry((local_day(created_at, tz), user, deal, model.clone(), operation.clone())).or_default();
        for (slot, value) in sums.iter_mut().zip([1, i64::from(outcome != "ok"), tokens[0], tokens[1], tokens[2], tokens[3], cost, i64::from(default_price)]) {
            *slot += value;
        }
        rows.push((user, deal, model, operation, tokens, cost, i64::from(default_price), created_at, outcome, n as i64));
        if rows.len() == ROWS_PER_INSERT || n + 1 == records {
            insert_records(db, &rows).await?;
            rows.clear();
        }
    }
    let aggregates: Vec<(Key, [i64; 8])> = aggregates.into_iter().collect();
    for chunk in aggregates.chunks(ROWS_PER_INSERT) {
        upsert_aggregates(db, chunk).await?;
    }
    let rollups: Vec<_> = rollups(&aggregates).into_iter().collect();
    for chunk in rollups.chunks(ROWS_PER_INSERT) {
        upsert_rollups(db, chunk).await?;
    }
    println!("seeded {records} usage records ({} daily aggregates) in {:.1} s", aggregates.len(), started.elapsed().as_secs_f64());
    Ok(())
}

async fn insert_records(db: &Db, rows: &[(i64, i64, String, String, [i64; 4], i64, i64, i64, &str, i64)]) -> Result<(), AppError> {
    let mut sql = String::from(
        "INSERT INTO usage_records (user_id, deal_id, operation, model, input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, estimated_input_tokens, cost_microusd, default_price, latency_ms, outcome, request_id, created_at) VALUES ",
    );
    for i in 0..rows.len() {
        let p = i * 15;
        sql.push_str(&format!("{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            if i == 0 { "" } else { ", " }, p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9, p + 10, p + 11, p + 12, p + 13, p + 14, p + 15));
    }
    let mut query = sqlx::query(&sql);
    for (user, deal, model, operation, t, cost, default_price, created_at, outcome, n) in rows {
        query = query
            .bind(*user).bind(if *deal == 0 { None } else { Some(*deal) }).bind(operation.as_str()).bind(model.as_str())
            .bind(t[0]).bind(t[1]).bind(t[2]).bind(t[3]).bind(t[0]).bind(*cost).bind(*default_price)
            .bind(800 + n % 4_000).bind(*outcome).bind(format!("req_seed_{n}")).bind(*created_at);
    }
    query.execute(&db.pool).await?;
    Ok(())
}

async fn upsert_aggregates(db: &Db, chunk: &[(Key, [i64; 8])]) -> Result<(), AppError> {
    let values: Vec<String> = (0..chunk.len()).map(|i| placeholders(i * 13, 13)).collect();
    let sql = format!("{DAILY_INSERT} VALUES {} {DAILY_ADD}", values.join(", "));
    let mut query = sqlx::query(&sql);
    for ((day, user, deal, model, operation), sums) in chunk {
        query = query.bind(day.as_str()).bind(*user).bind(*deal).bind(model.as_str()).bind(operation.as_str());
        for value in sums {
            query = query.bind(*value);
        }
    }
    query.execute(&db.pool).await?;
    Ok(())
}

/// The per-dimension rollups of a set of fine aggregates.
pub fn rollups(aggregates: &[(Key, [i64; 8])]) -> HashMap<(String, String, String), [i64; 8]> {
    let mut out: HashMap<(String, String, String), [i64; 8]> = HashMap::new();
    for ((day, user, deal, model, operation), sums) in aggregates {
        for (dimension, key) in [("user", user.to_string()), ("deal", deal.to_string()), ("model", model.clone()), ("operation", operation.clone())] {
            let entry = out.entry((dimension.to_string(), day.clone(), key)).or_default();
            for (slot, value) in entry.iter_mut().zip(sums) {
                *slot += value;
            }
        }
    }
    out
}

async fn upsert_rollups(db: &Db, chunk: &[((String, String, String), [i64; 8])]) -> Result<(), AppError> {
    let values: Vec<String> = (0..chunk.len()).map(|i| placeholders(i * 11, 11)).collect();
    let sql = format!("{ROLLUP_INSERT} VALUES {} {ROLLUP_ADD}", values.join(", "));
    let mut query = sqlx::query(&sql);
    for ((dimension, day, key), sums) in chunk {
        query = query.bind(dimension.as_str()).bind(day.as_str()).bind(key.as_str());
        for value in sums {
            query = query.bind(*value);
        }
    }
    query.execute(&db.pool).await?;
    Ok(())
}

/// `($first+1, …, $first+count)`.
fn placeholders(first: usize, count: usize) -> String {
    let params: Vec<String> = (1..=count).map(|k| format!("${}", first + k)).collect();
    format!("({})", params.join(", "))
}

/// Recomputes the daily aggregates from the raw records and compares; returns the number
/// of aggregate rows checked, or a description of the first disagreement.
pub async fn check(db: &Db, settings: &Settings) -> Result<usize, String> {
    use futures::TryStreamExt;
    let tz = settings.time.tz();
    let mut expected: HashMap<Key, [i64; 8]> = HashMap::new();
    let mut raw = sqlx::query_as::<_, (i64, Option<i64>, String, String, String, i64, i64, i64, i64, i64, i64, i64)>(
        "SELECT user_id, deal_id, model, operation, outcome, input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, cost_microusd, default_price, created_at FROM usage_records",
    )
    .fetch(&db.pool);
    while let Some((user, deal, model, operation, outcome, i, o, cw, cr, cost, d, at)) = raw.try_next().await.map_err(|e| e.to_string())? {
        let sums = expected.entry((local_day(at, tz), user, deal.unwrap_or(0), model, operation)).or_default();
        for (slot, value) in sums.iter_mut().zip([1, i64::from(outcome != "ok"), i, o, cw, cr, cost, d]) {
            *slot += value;
        }
    }
    let actual: Vec<(String, i64, i64, String, String, i64, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, user_id, deal_id, model, operation, calls, failed_calls, input_tokens, output_tokens, \
         cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls FROM usage_daily",
    )
    .fetch_all(&db.pool)
    .await
    .map_err(|e| e.to_string())?;
    if actual.len() != expected.len() {
        return Err(format!("{} aggregate rows, but the records make {}", actual.len(), expected.len()));
    }
    for (day, user, deal, model, operation, c, f, i, o, cw, cr, cost, d) in actual {
        let key = (day, user, deal, model, operation);
        if expected.get(&key) != Some(&[c, f, i, o, cw, cr, cost, d]) {
            return Err(format!("aggregate {key:?} is {:?}, the records say {:?}", [c, f, i, o, cw, cr, cost, d], expected.get(&key)));
        }
    }
    let expected_rollups = rollups(&expected.into_iter().collect::<Vec<_>>());
    let actual_rollups: Vec<(String, String, String, i64, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT dimension, day, key, calls, failed_calls, input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, cost_microusd, default_priced_calls FROM usage_rollup",
    )
    .fetch_all(&db.pool)
    .await
    .map_err(|e| e.to_string())?;
    if actual_rollups.len() != expected_rollups.len() {
        return Err(format!("{} rollup rows, but the records make {}", actual_rollups.len(), expected_rollups.len()));
    }
    for (dimension, day, key, c, f, i, o, cw, cr, cost, d) in actual_rollups {
        let key = (dimension, day, key);
        if expected_rollups.get(&key) != Some(&[c, f, i, o, cw, cr, cost, d]) {
            return Err(format!("rollup {key:?} disagrees with the records"));
        }
    }
    Ok(expected_rollups.len())
}

/// Times the dashboard (all five groupings and the budget flags) for several ranges.
pub async fn bench(db: &Db, settings: &Settings, runs: usize) -> Result<(), AppError> {
    let (records,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records").fetch_one(&db.pool).await?;
    let today = chrono::Utc::now().with_timezone(&settings.time.tz()).date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).format("%Y-%m-%d").to_string();
    let to = day(0);
    let (heavy,): (i64,) = sqlx::query_as("SELECT user_id FROM usage_daily GROUP BY user_id ORDER BY SUM(calls) DESC LIMIT 1").fetch_one(&db.pool).await?;
    println!("dashboard over {records} usage records ({} engine), {runs} runs each:", if db.engine == crate::db::Engine::Sqlite { "SQLite" } else { "PostgreSQL" });
    for (name, from, filter) in [
        ("today", day(0), Filter::default()),
        ("30 days", day(29), Filter::default()),
        ("90 days", day(89), Filter::default()),
        ("90 days, one user", day(89), Filter { user_id: Some(heavy), deal_id: None }),
    ] {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let d = dashboard(db, settings, &from, &to, filter).await?;
            std::hint::black_box(d);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!("  {name:<18} median {:>8.1} ms   min {:>8.1} ms   max {:>8.1} ms", times[times.len() / 2], times[0], times[times.len() - 1]);
    }
    // For contrast: one grouping computed from the raw records, as a dashboard without
    // aggregates would have to.
    let since = now_millis() - 90 * 86_400_000;
    let started = Instant::now();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT user_id, CAST(SUM(input_tokens + output_tokens) AS BIGINT) FROM usage_records WHERE created_at >= $1 GROUP BY user_id",
    )
    .bind(since)
    .fetch_all(&db.pool)
    .await?;
    std::hint::black_box(rows);
    println!("  (raw-record scan of one grouping over 90 days, for contrast: {:.1} ms)", started.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}
