//! Operators' usage tools: `server usage seed` (synthetic history for benchmarks),
//! `server usage check` (the ledger's aggregates and counters against its records) and
//! `server usage bench` (the dashboard's and the admission's cost).

use std::collections::HashMap;
use std::time::Instant;

use app::auth::service::Ctx;
use app::claude::Operation;
use app::claude::history::Turn;
use app::claude::pricing::TokenUsage;
use app::claude::types::ClaudeRequest;
use app::db::Db;
use app::settings::Settings;
use app::state::AppState;
use app::time::{local_day, now_millis};
use app::usage::CounterKey;
use app::usage::service::{Filter, dashboard};
use app::usage::store::{self, DailyKey, NewRecord, Sums};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Records per bulk insert (20 parameters each; SQLite allows 32,766 in a statement).
const ROWS_PER_INSERT: usize = 1_000;
/// Records per transaction when seeding.
const RECORDS_PER_TRANSACTION: usize = 100_000;
const MODELS: [(&str, u32); 4] = [("claude-sonnet-5-5", 70), ("claude-haiku-5-5", 20), ("claude-opus-5-5", 8), ("claude-experimental-x", 2)];
const OPERATIONS: [(&str, u32); 3] = [("chat", 70), ("report", 15), ("extraction", 15)];
const SEED_ANALYSTS: usize = 40;
const SEED_DEALS: usize = 150;

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

/// The seeded accounts (2 admins, then analysts; none can sign in) and deals, created
/// when missing.
async fn seed_people(db: &Db) -> Result<(Vec<i64>, Vec<i64>), String> {
    let passwords = app::passwords::Passwords::new(1).await.map_err(|e| e.message)?;
    let unusable = passwords.hash(format!("{:x}", rand::random::<u128>())).await.map_err(|e| e.message)?;
    let mut users = Vec::new();
    for i in 0..SEED_ANALYSTS + 2 {
        let (email, role) = if i < 2 { (format!("seed-admin-{i}@seed.dealdesk.test"), "admin") } else { (format!("seed-analyst-{i}@seed.dealdesk.test"), "analyst") };
        sqlx::query("INSERT INTO users (email, password_hash, role, active, created_at) VALUES ($1, $2, $3, 1, $4) ON CONFLICT (email) DO NOTHING")
            .bind(&email)
            .bind(&unusable)
            .bind(role)
            .bind(now_millis())
            .execute(&db.pool)
            .await
            .map_err(|e| e.to_string())?;
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(&email).fetch_one(&db.pool).await.map_err(|e| e.to_string())?;
        users.push(id);
    }
    let mut deals = Vec::new();
    for i in 0..SEED_DEALS {
        let name = format!("Seed deal {i:03}");
        let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM deals WHERE name = $1").bind(&name).fetch_optional(&db.pool).await.map_err(|e| e.to_string())?;
        let id = match existing {
            Some((id,)) => id,
            None => {
                let input = app::deals::DealInput::parse(&name, "", app::deals::PropertyType::ALL[i % 8].label(), "", "").map_err(|e| e.message)?;
                app::deals::store::create(db, users[2 + i % SEED_ANALYSTS], &input).await.map_err(|e| e.message)?
            }
        };
        deals.push(id);
    }
    Ok((users, deals))
}

/// Adds `records` synthetic usage records over the last `days` days for 40
/// analysts and 2 admins on 150 deals (`one_deal`: all on the first; `user`: all that
/// user's, on no deal), with their daily aggregates, rollups and counters computed in
/// memory and written in bulk.
pub async fn seed(db: &Db, settings: &Settings, records: usize, days: i64, one_deal: bool, user: Option<&str>) -> Result<(), String> {
    let started = Instant::now();
    let only = match user {
        Some(email) => {
            let email = app::auth::normalize_email(email);
            let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(&email).fetch_optional(&db.pool).await.map_err(|e| e.to_string())?;
            Some(row.ok_or(format!("no user with email {email}"))?.0)
        }
        None => None,
    };
    let (users, deals) = if only.is_some() { (Vec::new(), Vec::new()) } else { seed_people(db).await? };
    let mut rng = StdRng::seed_from_u64(42 ^ records as u64);
    let prices = settings.pricing.price_book().current();
    let zone = settings.time.tz();
    let now = now_millis();
    let mut daily: HashMap<DailyKey, Sums> = HashMap::new();
    let mut counters: HashMap<CounterKey, [i64; 3]> = HashMap::new();
    let mut batch: Vec<NewRecord> = Vec::with_capacity(ROWS_PER_INSERT);
    // Many inserts per transaction: a commit per insert made 1,000,000 records take
    // minutes on SQLite (each commit a sync).
    let mut open: Option<app::db::WriteTx> = None;
    let mut in_transaction = 0;
    for n in 0..records {
        // Heavy users: the square skews towards the first analysts.
        let user = match only {
            Some(id) => id,
            None if rng.gen_ratio(1, 20) => users[rng.gen_range(0..2)],
            None => users[2 + ((rng.r#gen::<f64>().powi(2)) * SEED_ANALYSTS as f64) as usize % SEED_ANALYSTS],
        };
        let deal = if only.is_some() {
            None
        } else if one_deal {
            Some(deals[0])
        } else if rng.gen_ratio(1, 20) {
            None
        } else {
            Some(deals[rng.gen_range(0..deals.len())])
        };
        let model = pick(&mut rng, &MODELS).to_string();
        let operation = pick(&mut rng, &OPERATIONS).to_string();
        let outcome = match rng.gen_range(0..100) {
            0 => "busy",
            1..=4 => "error",
            _ => "ok",
        };
        let usage = if outcome == "ok" {
            TokenUsage {
                input_tokens: rng.gen_range(200..20_000),
                output_tokens: rng.gen_range(50..4_000),
                cache_creation_input_tokens: if rng.gen_ratio(1, 10) { rng.gen_range(1_000..8_000) } else { 0 },
                cache_read_input_tokens: if rng.gen_ratio(1, 5) { rng.gen_range(1_000..8_000) } else { 0 },
                cache_creation_1h_input_tokens: 0,
            }
        } else {
            TokenUsage::default()
        };
        // In time order, evenly over the span with a jitter inside each step: the
        // indexes on time (by user, by deal) then grow at their ends, where their pages
        // are cached, not at random places a table of millions no longer caches.
        let span = days * 86_400_000;
        let step = (span / records as i64).max(1);
        let created_at = (now - span + (n as i64 * span) / records as i64 + rng.gen_range(0..step)).min(now);
        let priced = prices.cost(&model, created_at, &usage);
        let record = NewRecord {
            user_id: user,
            deal_id: deal,
            operation,
            model,
            cost_microusd: priced.cost_microusd,
            usage,
            estimated_input_tokens: usage.input_tokens,
            default_price: priced.unpriced,
            requested_model: String::new(),
            savings_microusd: 0,
            latency_ms: 800 + n as u64 % 4_000,
            outcome: outcome.to_string(),
            request_id: Some(format!("req_seed_{n}")),
            usage_unknown: false,
            stopped: false,
            created_at,
            day: local_day(created_at, zone),
        };
        let key = DailyKey { day: record.day.clone(), user_id: user, deal_id: deal.unwrap_or(0), model: record.model.clone(), operation: record.operation.clone() };
        let sums = daily.entry(key).or_default();
        for (slot, value) in sums.iter_mut().zip(record.sums()) {
            *slot += value;
        }
        for key in record.counters() {
            let c = counters.entry(key).or_default();
            c[0] += usage.budget_tokens() as i64;
            c[1] += record.cost_microusd;
            c[2] += 1;
        }
        batch.push(record);
        if batch.len() == ROWS_PER_INSERT || n + 1 == records {
            if open.is_none() {
                open = Some(db.begin_write().await.map_err(|e| e.to_string())?);
            }
            let tx = open.as_mut().expect("opened above");
            store::insert_records_bulk(tx, &batch).await.map_err(|e| e.to_string())?;
            batch.clear();
            in_transaction += 1;
            if in_transaction * ROWS_PER_INSERT >= RECORDS_PER_TRANSACTION || n + 1 == records {
                open.take().expect("opened above").commit().await.map_err(|e| e.to_string())?;
                in_transaction = 0;
            }
        }
    }
    let records_done = started.elapsed().as_secs_f64();
    // The aggregates in one transaction, each table's rows in its primary key's order (so
    // they go in at the end of their index, page after page).
    let mut tx = db.begin_write().await.map_err(|e| e.to_string())?;
    let mut daily: Vec<(DailyKey, Sums)> = daily.into_iter().collect();
    daily.sort_unstable_by(|(a, _), (b, _)| (&a.day, a.user_id, a.deal_id, &a.model, &a.operation).cmp(&(&b.day, b.user_id, b.deal_id, &b.model, &b.operation)));
    for chunk in daily.chunks(ROWS_PER_INSERT) {
        store::upsert_daily(&mut tx, chunk).await.map_err(|e| e.to_string())?;
    }
    let mut rollups = store::rollups_of(daily.iter().cloned());
    rollups.sort_unstable_by(|(a, _), (b, _)| {
        (a.scope.as_str(), a.scope_id, a.dimension.as_str(), &a.day, &a.key).cmp(&(b.scope.as_str(), b.scope_id, b.dimension.as_str(), &b.day, &b.key))
    });
    for chunk in rollups.chunks(ROWS_PER_INSERT) {
        store::upsert_rollups(&mut tx, chunk).await.map_err(|e| e.to_string())?;
    }
    let mut counters: Vec<(CounterKey, [i64; 3])> = counters.into_iter().collect();
    counters.sort_unstable_by(|(a, _), (b, _)| (a.scope, a.scope_id, &a.period).cmp(&(b.scope, b.scope_id, &b.period)));
    for chunk in counters.chunks(ROWS_PER_INSERT) {
        store::add_to_counters(&mut tx, chunk).await.map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    println!(
        "seeded {records} usage records in {records_done:.1} s, then {} daily aggregates, {} rollups and {} counters in {:.1} s",
        daily.len(),
        rollups.len(),
        counters.len(),
        started.elapsed().as_secs_f64() - records_done
    );
    Ok(())
}

/// The ledger's aggregates and counters against its records; an error on any difference.
pub async fn check(db: &Db, settings: &Settings) -> Result<(), String> {
    let rows = store::check(db, settings.time.tz()).await?;
    println!("daily aggregates, rollups and counters agree with the raw records ({rows} rows checked)");
    Ok(())
}

/// Times the dashboard (all five groupings, the refusals and the month's projection)
/// for several ranges, narrowed to the heaviest user and deal too, and the admission of
/// a call on the deal with the most history.
pub async fn bench(state: &AppState, runs: usize) -> Result<(), String> {
    let db = &state.db;
    let settings = &state.settings;
    let err = |e: app::error::AppError| e.message;
    let records = store::record_count(db).await.map_err(|e| e.to_string())?;
    let today = chrono::Utc::now().with_timezone(&settings.time.tz()).date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).format("%Y-%m-%d").to_string();
    let to = day(0);
    let (heavy_user, heavy_deal) = store::heaviest(db).await.map_err(|e| e.to_string())?;
    let heavy = heavy_user.ok_or("no usage to benchmark: seed first")?;
    let engine = engine_name(db);
    println!("dashboard over {records} usage records ({engine}), {runs} runs each:");
    let mut views = vec![
        ("today", day(0), Filter::default()),
        ("30 days", day(29), Filter::default()),
        ("90 days", day(89), Filter::default()),
        ("90 days, one user", day(89), Filter { user_id: Some(heavy), deal_id: None }),
    ];
    if let Some((deal, _)) = heavy_deal {
        views.push(("90 days, one deal", day(89), Filter { user_id: None, deal_id: Some(deal) }));
    }
    for (name, from, filter) in views {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let d = dashboard(state, &from, &to, filter).await.map_err(err)?;
            std::hint::black_box(d);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        report(&format!("dash.{engine}.{records} records.{name}"), name, &mut times);
    }
    bench_admission(state, runs.max(50) * 4).await
}

/// The cost of admitting (and cancelling) a call on the deal with the most history: it
/// reads running counters, so it must not grow with the history.
pub async fn bench_admission(state: &AppState, runs: usize) -> Result<(), String> {
    // No per-user rate limit: the bench admits one user's calls back to back.
    let mut settings = (*state.settings).clone();
    settings.limits.user_requests_per_minute = 0;
    settings.limits.user_requests_per_day = 0;
    let state = &AppState { settings: std::sync::Arc::new(settings), ..state.clone() };
    let db = &state.db;
    let (deal, deal_records) = store::heaviest(db).await.map_err(|e| e.to_string())?.1.ok_or("no deal has usage: seed first")?;
    let (user,): (i64,) = sqlx::query_as("SELECT id FROM users WHERE role = 'analyst' ORDER BY id LIMIT 1").fetch_one(&db.pool).await.map_err(|e| e.to_string())?;
    // Limits high enough that every admission goes through.
    sqlx::query("UPDATE deals SET token_budget = $1 WHERE id = $2").bind(i64::MAX / 4).bind(deal).execute(&db.pool).await.map_err(|e| e.to_string())?;
    sqlx::query("UPDATE users SET daily_token_budget = $1, monthly_budget_microusd = $1 WHERE id = $2")
        .bind(i64::MAX / 4)
        .bind(user)
        .execute(&db.pool)
        .await
        .map_err(|e| e.to_string())?;
    let ctx = Ctx { user_id: user, email: String::new(), role: app::auth::UserRole::Analyst };
    let request = ClaudeRequest {
        model: state.settings.claude.model.clone(),
        max_tokens: 1024,
        system: "bench".into(),
        messages: vec![Turn { role: app::claude::Speaker::User, content: "What is the cap rate?".into() }],
        tool: None,
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let admitted = app::gateway::admit(state, &ctx, deal, Operation::Chat, &request, 500).await.map_err(|e| e.message)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        admitted.cancel().await;
    }
    report(&format!("admission.{}.{deal_records} records", engine_name(db)), &format!("admission, {deal_records} records on the deal"), &mut times);
    Ok(())
}

fn engine_name(db: &Db) -> &'static str {
    if db.engine == app::db::Engine::Sqlite { "SQLite" } else { "PostgreSQL" }
}

/// Prints a timing's median, min and max; with `BENCH_RECORD` set (by `make bench`),
/// also appends `<figure>.median_ms<TAB>value` to that file for the next run to compare.
fn report(figure: &str, name: &str, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("  {name:<40} median {median:>8.2} ms   min {:>8.2} ms   max {:>8.2} ms", times[0], times[times.len() - 1]);
    if let Some(file) = std::env::var_os("BENCH_RECORD") {
        use std::io::Write;
        let figure = figure.to_lowercase().replace([' ', ','], "_");
        let written = std::fs::OpenOptions::new().create(true).append(true).open(&file).and_then(|mut f| writeln!(f, "{figure}.median_ms\t{median:.3}"));
        if let Err(e) = written {
            eprintln!("cannot record {figure} in {}: {e}", file.to_string_lossy());
        }
    }
}
