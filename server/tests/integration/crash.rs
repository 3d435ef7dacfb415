//! Kill -9 under load: several real `server` processes on one database take a storm of
//! chat, memo and extraction calls; one is killed with SIGKILL mid-storm and restarted.
//! Afterwards every reply a client received has its usage record, the ledger's
//! aggregates and counters agree with the records (`server usage check`), the calls
//! the dead process had in flight are settled as unknown usage, and the deal's budget
//! is exceeded by no more than the estimation error of the calls in flight.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU16;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use app::auth::UserRole;
use app::auth::service::upsert_user;
use app::passwords::Passwords;
use app::db::Db;
use futures::StreamExt;
use serde_json::Value;

use crate::support::fake_claude::FakeClaude;
use crate::support::{Engine, TestDb};

const DEAL_BUDGET: i64 = 30_000;
const MAX_TOKENS: [(&str, &str); 3] = [("APP_CLAUDE__MAX_TOKENS_CHAT", "300"), ("APP_CLAUDE__MAX_TOKENS_REPORT", "600"), ("APP_CLAUDE__MAX_TOKENS_EXTRACTION", "400")];

struct Instance {
    port: u16,
    child: Child,
    stderr: std::path::PathBuf,
}

/// A failed assertion must not leave servers running.
impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Starts a server on a port the system picks (port 0), so no other test or
/// connection can take its port between choosing and binding it, and returns once it
/// says which port it listens on and answers `/healthz`. A server that exits instead
/// fails the test with what it printed to stderr.
async fn start(db_url: &str, claude_url: &str) -> Instance {
    let stderr = std::env::temp_dir().join(format!("dealdesk-crash-server-{}.log", rand::random::<u64>()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DEALDESK_CONFIG")
        .env("DATABASE_URL", db_url)
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", claude_url)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("APP_DEMO__SEED", "false")
        .env("APP_CHAT__COOLDOWN_SECONDS", "0")
        .env("APP_CLAUDE__MAX_RETRIES", "0")
        .env("APP_CLAUDE__TIMEOUT_SECONDS", "2")
        .env("APP_CLAUDE__RETRY_AFTER_CAP_SECONDS", "1")
        .env("APP_CLAUDE__BACKOFF_MAX_MS", "1000")
        .env("APP_CLAUDE__RESERVATION_MARGIN_SECONDS", "1")
        .env("APP_SERVER__REQUEST_TIMEOUT_SECONDS", "30")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    for (key, value) in MAX_TOKENS {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().expect("server starts");
    let stdout = child.stdout.take().unwrap();
    // The first line naming the address; the rest of stdout is drained so the server
    // never writes to a closed pipe.
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("DealDesk is listening on http://127.0.0.1:").and_then(|p| p.parse::<u16>().ok()));
        std::thread::spawn(move || lines.for_each(drop));
        port
    });
    let port = match tokio::time::timeout(Duration::from_secs(60), port).await {
        Ok(Ok(Some(port))) => port,
        _ => {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let printed = std::fs::read_to_string(&stderr).unwrap_or_default();
            let _ = std::fs::remove_file(&stderr);
            panic!("the server did not start ({status}): {printed}");
        }
    };
    let instance = Instance { port, child, stderr };
    wait_until_up(port).await;
    instance
}

async fn wait_until_up(port: u16) {
    for _ in 0..600 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance on port {port} did not answer /healthz within 30 s");
}

/// What a client got back for one request.
enum Answer {
    Chat { message_id: i64 },
    Report { report_id: i64 },
    Extraction,
    Refused,
    Failed,
}

async fn killed_instances_lose_no_usage(engine: Engine) {
    let test_db = TestDb::create(engine).await;
    let fake = FakeClaude::start().await;
    fake.answer_by_shape_after(Duration::from_millis(300));
    // Accounts and a deal, before any instance starts.
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let passwords = Passwords::new(2).await.unwrap();
    let mut emails = Vec::new();
    for i in 0..10 {
        let email = format!("storm{i}@firm.com");
        upsert_user(&db, &passwords, &email, "correct horse battery", UserRole::Analyst).await.unwrap();
        emails.push(email);
    }
    let owner = app::auth::store::find_user_by_email(&db, &emails[0]).await.unwrap().unwrap().id;
    let input = app::deals::DealInput::parse("Harbor Point", "", "Office", "", "84% leased").unwrap();
    let deal = app::deals::store::create(&db, owner, &input).await.unwrap();
    sqlx::query("UPDATE deals SET token_budget = $1 WHERE id = $2").bind(DEAL_BUDGET).bind(deal).execute(&db.pool).await.unwrap();

    let count = if engine == Engine::Postgres { 4 } else { 1 };
    let mut instances = Vec::new();
    for _ in 0..count {
        instances.push(start(&test_db.url, &fake.base_url).await);
    }
    // Each instance's port, which the restarted instance's replaces.
    let ports: std::sync::Arc<Vec<AtomicU16>> = std::sync::Arc::new(instances.iter().map(|i| AtomicU16::new(i.port)).collect());
    let mut clients = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let client = reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(20)).build().unwrap();
        let port = ports[i % ports.len()].load(SeqCst);
        let response = client.post(format!("http://127.0.0.1:{port}/api/login")).form(&[("email", email.as_str()), ("password", "correct horse battery")]).send().await.unwrap();
        assert_eq!(response.status(), 200);
        clients.push(client);
    }

    // The storm: 240 requests, 24 at a time, spread over every instance; one instance
    // (the last) is killed once 40 answers have come back (so calls are in flight on
    // it), and restarted 1 s later on a new port, which its clients then use.
    let victim = count - 1;
    let started = Instant::now();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deal_id = deal.to_string();
    let storm = futures::stream::iter(0..240usize)
        .map(|n| {
            let client = clients[n % clients.len()].clone();
            let ports = ports.clone();
            let deal_id = deal_id.clone();
            let answered = answered.clone();
            async move {
                let answer = async {
                let (path, form): (&str, Vec<(&str, String)>) = match n % 7 {
                    0 => ("/api/reports/generate", vec![("deal_id", deal_id)]),
                    1 => ("/api/comps/extract", vec![("deal_id", deal_id), ("text", "Bayview Commons sold for $24,500,000.".into())]),
                    _ => ("/api/chat/send", vec![("deal_id", deal_id), ("message", format!("What is the cap rate, take {n}?"))]),
                };
                // A client whose instance is down (connection refused) tries again, as a
                // person reloading would; a request cut off mid-flight counts as failed.
                let mut tries = 0;
                let response = loop {
                    let port = ports[n % ports.len()].load(SeqCst);
                    match client.post(format!("http://127.0.0.1:{port}{path}")).form(&form).send().await {
                        Ok(response) => break response,
                        Err(err) if err.is_connect() && tries < 60 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => return Answer::Failed,
                    }
                };
                let status = response.status().as_u16();
                let Ok(body) = response.json::<Value>().await else { return Answer::Failed };
                match (status, path) {
                    (200, "/api/chat/send") => Answer::Chat { message_id: body["reply"]["id"].as_i64().unwrap() },
                    (200, "/api/reports/generate") => Answer::Report { report_id: body["id"].as_i64().unwrap() },
                    (200, _) => Answer::Extraction,
                    (403, _) => Answer::Refused,
                    _ => Answer::Failed,
                }
                }
                .await;
                answered.fetch_add(1, SeqCst);
                answer
            }
        })
        .buffer_unordered(24);
    let killer = async {
        while answered.load(SeqCst) < 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        instances[victim].child.kill().expect("SIGKILL");
        instances[victim].child.wait().unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        instances[victim] = start(&test_db.url, &fake.base_url).await;
        ports[victim].store(instances[victim].port, SeqCst);
    };
    let (answers, ()) = tokio::join!(storm.collect::<Vec<Answer>>(), killer);
    let storm_seconds = started.elapsed().as_secs_f64();

    // Every reply received has its usage record.
    let (mut chats, mut reports, mut extractions, mut refused, mut failed) = (0, 0, 0, 0, 0);
    for answer in &answers {
        match answer {
            Answer::Chat { message_id } => {
                chats += 1;
                let (usage,): (Option<i64>,) = sqlx::query_as("SELECT usage_id FROM chat_messages WHERE id = $1").bind(message_id).fetch_one(&db.pool).await.unwrap();
                let usage = usage.expect("the reply has a usage record");
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records WHERE id = $1").bind(usage).fetch_one(&db.pool).await.unwrap();
                assert_eq!(n, 1);
            }
            Answer::Report { report_id } => {
                reports += 1;
                let (usage,): (Option<i64>,) = sqlx::query_as("SELECT usage_id FROM reports WHERE id = $1").bind(report_id).fetch_one(&db.pool).await.unwrap();
                assert!(usage.is_some(), "the memo has a usage record");
            }
            Answer::Extraction => extractions += 1,
            Answer::Refused => refused += 1,
            Answer::Failed => failed += 1,
        }
    }
    let (ok_extractions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records WHERE operation = 'extraction' AND outcome = 'ok'").fetch_one(&db.pool).await.unwrap();
    assert!(ok_extractions >= extractions, "{extractions} extractions answered, {ok_extractions} recorded");

    // The dead process's calls: their reservations expire (lifetime here about 4 s) and
    // are settled, by the restarted instance's reaper or this one, as unknown usage.
    let orphaned = app_count(&db, "usage_reservations").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let defaults = app::settings::Settings::default();
    let ledger = app::usage::ledger::Ledger::new(db.clone(), defaults.pricing.price_book(), defaults.time.tz(), Default::default(), Default::default());
    ledger.settle_expired().await.unwrap();
    assert_eq!(app_count(&db, "usage_reservations").await, 0, "no reservation is left");
    let (unknown,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records WHERE usage_unknown = 1").fetch_one(&db.pool).await.unwrap();

    // `server usage check` passes.
    let check = Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DEALDESK_CONFIG")
        .env("DATABASE_URL", &test_db.url)
        .args(["usage", "check"])
        .output()
        .unwrap();
    assert!(check.status.success(), "usage check: {}", String::from_utf8_lossy(&check.stderr));

    // The budget holds within the estimation error of the calls in flight: Claude never
    // writes more than a call's (possibly lowered) max_tokens, so a call can only use
    // more than it reserved by reading more input than estimated.
    let (used,): (i64,) = sqlx::query_as("SELECT tokens FROM usage_counters WHERE scope = 'deal' AND scope_id = $1 AND period = 'life'").bind(deal).fetch_one(&db.pool).await.unwrap();
    let (error_bound,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN input_tokens + cache_creation_tokens + cache_read_tokens > estimated_input_tokens \
         THEN input_tokens + cache_creation_tokens + cache_read_tokens - estimated_input_tokens ELSE 0 END), 0) AS BIGINT) \
         FROM usage_records WHERE deal_id = $1 AND usage_unknown = 0",
    )
    .bind(deal)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    eprintln!(
        "kill -9 storm on {engine:?} ({count} instance(s), {storm_seconds:.1} s): {} requests — {chats} chat, {reports} memo, \
         {extractions} extraction replies, {refused} refused by the budget, {failed} failed (killed instance); \
         {orphaned} reservations orphaned, {unknown} settled as unknown usage; deal used {used} of {DEAL_BUDGET} \
         (over by {}, in-flight estimation error bound {error_bound})",
        answers.len(),
        (used - DEAL_BUDGET).max(0)
    );
    assert!(chats + reports + extractions > 20, "the storm got through");
    assert!(failed > 0, "the kill cut calls off mid-flight");
    assert!(used <= DEAL_BUDGET + error_bound, "used {used} > {DEAL_BUDGET} + {error_bound}");
    drop(instances); // before the test database is dropped
}

async fn app_count(db: &Db, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&db.pool).await.unwrap();
    n
}

on_both_engines!(killed_instances_lose_no_usage);
