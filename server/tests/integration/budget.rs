//! Budgets and the chat cooldown, on SQLite and PostgreSQL, against the fake Claude
//! server — including a concurrency storm through two app instances.


use std::time::Duration;

use app::auth::UserRole;
use app::settings::Settings;
use serde_json::{Value, json};
use crate::support::fake_claude::{FakeClaude, Script};
use crate::support::{Engine, TestApp, kind, test_settings};

fn settings() -> Settings {
    let mut s = test_settings();
    s.chat.cooldown_seconds = 0;
    s.claude.max_tokens_chat = 100;
    s
}

fn usage(input: u64, output: u64) -> Script {
    Script::Reply { text: "ok".into(), usage: json!({"input_tokens": input, "output_tokens": output}) }
}

struct World {
    app: TestApp,
    fake: FakeClaude,
    deal_id: String,
}

impl World {
    async fn start(engine: Engine, settings: Settings) -> World {
        let fake = FakeClaude::start().await;
        let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
        let owner = app.signed_in("owner@firm.com", UserRole::Analyst).await;
        let (_, id) = app
            .post(&owner, "/api/deals/create", &[("name", "Harbor Point"), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")])
            .await;
        World { app, fake, deal_id: id.as_i64().unwrap().to_string() }
    }

    async fn send(&self, client: &reqwest::Client, message: &str) -> (u16, Value) {
        self.app.post(client, "/api/chat/send", &[("deal_id", &self.deal_id), ("message", message)]).await
    }

    /// The caller's meters on the deal, by limit (`support::meters`).
    async fn status(&self, client: &reqwest::Client) -> Value {
        let (status, body) = self.app.post(client, "/api/budget/status", &[("deal_id", &self.deal_id)]).await;
        assert_eq!(status, 200, "{body}");
        crate::support::meters(&body)
    }

    async fn set_deal_budget(&self, tokens: &str) {
        let admin = self.app.signed_in(&format!("admin{}@firm.com", rand::random::<u32>()), UserRole::Admin).await;
        let (status, body) = self.app.post(&admin, "/api/admin/deals/budget", &[("deal_id", &self.deal_id), ("tokens", tokens)]).await;
        assert_eq!(status, 200, "{body}");
    }

    async fn recorded_tokens(&self) -> i64 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), 0) AS BIGINT) FROM usage_records",
        )
        .fetch_one(&self.app.state.db.pool)
        .await
        .unwrap();
        n
    }
}

async fn daily_limit_reached_makes_no_upstream_call(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    w.fake.script([usage(300, 100)]);
    let (status, _) = w.send(&analyst, "first").await;
    assert_eq!(status, 200);
    // An admin lowers Ana's daily budget below what she has used today.
    let admin = w.app.signed_in("root@firm.com", UserRole::Admin).await;
    let ana = app::auth::store::find_user_by_email(&w.app.state.db, "ana@firm.com").await.unwrap().unwrap().id;
    let (status, _) = w.app.post(&admin, "/api/admin/users/budget", &[("user_id", &ana.to_string()), ("daily_tokens", "450")]).await;
    assert_eq!(status, 200);

    let before = w.fake.requests().len();
    let (status, body) = w.send(&analyst, "second").await;
    assert_eq!((status, kind(&body)), (403, "daily_limit_reached"));
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("450") && message.contains("resets at midnight UTC, in"), "{message}");
    assert_eq!(w.fake.requests().len(), before, "no call was made");
    assert_eq!(w.app.count("chat_messages").await, 2, "the refused message was not stored");
    let status = w.status(&analyst).await;
    assert_eq!(status["daily"]["used"], 400);
    assert_eq!(status["daily"]["limit"], 450);
}

async fn admins_are_exempt_from_the_daily_limit(engine: Engine) {
    let mut s = settings();
    s.budget.user_daily_tokens = 50;
    let w = World::start(engine, s).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (status, body) = w.send(&analyst, "hello").await;
    assert_eq!((status, kind(&body)), (403, "daily_limit_reached"));
    let admin = w.app.signed_in("root@firm.com", UserRole::Admin).await;
    for _ in 0..3 {
        let (status, body) = w.send(&admin, "hello").await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(w.status(&admin).await["daily"].is_null(), "admins have no daily meter");
}

async fn deal_warns_at_80_percent_and_blocks_at_100_for_everyone(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.set_deal_budget("10,000").await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    w.fake.script([usage(7_900, 100)]);
    assert_eq!(w.send(&analyst, "one").await.0, 200);
    let status = w.status(&analyst).await;
    assert_eq!(status["deal_state"], "warning");
    assert_eq!(status["deal"]["used"], 8_000);
    let (_, deals) = w.app.post(&analyst, "/api/deals/list", &[]).await;
    assert_eq!(deals[0]["budget"]["state"], "warning");

    w.fake.script([usage(1_900, 100)]);
    assert_eq!(w.send(&analyst, "two").await.0, 200);
    assert_eq!(w.status(&analyst).await["deal_state"], "blocked");
    let (_, deals) = w.app.post(&analyst, "/api/deals/list", &[]).await;
    assert_eq!(deals[0]["budget"]["state"], "blocked");

    let calls = w.fake.requests().len();
    let (status, body) = w.send(&analyst, "three").await;
    assert_eq!((status, kind(&body)), (403, "deal_budget_exhausted"));
    let admin = w.app.signed_in("root@firm.com", UserRole::Admin).await;
    let (status, body) = w.send(&admin, "admin too").await;
    assert_eq!((status, kind(&body)), (403, "deal_budget_exhausted"), "the deal budget binds admins too");
    assert_eq!(w.fake.requests().len(), calls, "no call was made");

    // Raising the budget unblocks the deal.
    w.set_deal_budget("20000").await;
    assert_eq!(w.send(&analyst, "four").await.0, 200);
}

async fn a_send_inside_the_cooldown_is_refused(engine: Engine) {
    let mut s = settings();
    s.chat.cooldown_seconds = 2;
    let w = World::start(engine, s).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    assert_eq!(w.send(&analyst, "first").await.0, 200);
    let (status, body) = w.send(&analyst, "too soon").await;
    assert_eq!((status, kind(&body)), (429, "cooldown"));
    assert!(body["message"].as_str().unwrap().contains("wait"));
    assert_eq!(w.fake.requests().len(), 1);
    // The refused send stored nothing: not its question, not a conversation for it.
    assert_eq!((w.app.count("chat_threads").await, w.app.count("chat_messages").await), (1, 2), "the first exchange only");
    // Another user is not held up by Ana's cooldown.
    let bo = w.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    assert_eq!(w.send(&bo, "hello").await.0, 200);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, later) = w.send(&analyst, "later").await;
    assert_eq!(status, 200, "{later}");
    // Continuing a conversation is held to the cooldown the same way.
    let thread = later["thread_id"].as_i64().unwrap().to_string();
    let form = [("deal_id", w.deal_id.as_str()), ("thread_id", thread.as_str()), ("message", "follow-up")];
    let (status, body) = w.app.post(&analyst, "/api/chat/send", &form).await;
    assert_eq!((status, kind(&body)), (429, "cooldown"));
    let messages = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE thread_id = $1").bind(later["thread_id"].as_i64().unwrap()).fetch_one(&w.app.state.db.pool).await.unwrap();
        n
    };
    assert_eq!(messages().await, 2, "the refused follow-up is not stored");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, body) = w.app.post(&analyst, "/api/chat/send", &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["thread_id"], later["thread_id"]);
    assert_eq!(messages().await, 4);
}

async fn only_admins_set_budgets_and_bad_values_change_nothing(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (status, body) = w.app.post(&analyst, "/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "5")]).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"));
    let (status, body) = w.app.post(&analyst, "/api/admin/users/budget", &[("user_id", "1"), ("daily_tokens", "5")]).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"));
    let admin = w.app.signed_in("root@firm.com", UserRole::Admin).await;
    for bad in ["-1", "0", "lots", "1e6"] {
        let (status, body) = w.app.post(&admin, "/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", bad)]).await;
        assert_eq!((status, kind(&body)), (400, "invalid"), "{bad}");
    }
    let (status, body) = w.app.post(&admin, "/api/admin/deals/budget", &[("deal_id", "999"), ("tokens", "5")]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    assert_eq!(w.status(&analyst).await["deal"]["limit"], 1_000_000, "the default still applies");
}

async fn expired_reservations_hold_their_budget_until_settled_as_unknown_usage(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let ana = app::auth::store::find_user_by_email(&w.app.state.db, "ana@firm.com").await.unwrap().unwrap().id;
    let now = app::time::now_millis();
    // One reservation left by a crashed process (expired), one held by a call in flight.
    for (tokens, expires_at) in [(900_000i64, now - 1), (1_000, now + 60_000)] {
        sqlx::query(
            "INSERT INTO usage_reservations (user_id, deal_id, tokens, input_tokens, output_tokens, operation, model, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 0, 'chat', 'claude-sonnet-5-5', $5, $6)",
        )
        .bind(ana)
        .bind(w.deal_id.parse::<i64>().unwrap())
        .bind(tokens)
        .bind(tokens)
        .bind(now - 600_000)
        .bind(expires_at)
        .execute(&w.app.state.db.pool)
        .await
        .unwrap();
    }
    // Until it is settled, the expired reservation holds its budget: its settlement will
    // charge it, so a call admitted into its room would take the day past its 500,000.
    let status = w.status(&analyst).await;
    assert_eq!(status["deal"]["reserved"], 901_000, "an expired reservation holds budget until settled");
    assert_eq!(status["daily"]["reserved"], 901_000);
    let (code, body) = w.send(&analyst, "hello").await;
    assert_eq!(code, 403, "the day's budget is held: {body}");
    assert_eq!(w.app.count("usage_reservations").await, 2, "nothing more was reserved");
    let used_before = w.status(&analyst).await["deal"]["used"].as_i64().unwrap();
    // The crashed call may have been billed: it is settled at its reservation, flagged.
    assert_eq!(app::usage::ledger::Ledger::of(&w.app.state).settle_expired().await.unwrap(), 1);
    assert_eq!(app::usage::ledger::Ledger::of(&w.app.state).settle_expired().await.unwrap(), 0, "settled once");
    assert_eq!(w.app.count("usage_reservations").await, 1, "the live call's reservation stays");
    assert_eq!(w.status(&analyst).await["deal"]["reserved"], 1_000, "the settled one holds nothing now");
    let (unknown, tokens): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) FROM usage_records WHERE usage_unknown = 1",
    )
    .fetch_one(&w.app.state.db.pool)
    .await
    .unwrap();
    assert_eq!((unknown, tokens), (1, 900_000));
    assert_eq!(w.status(&analyst).await["deal"]["used"].as_i64().unwrap(), used_before + 900_000);
    app::usage::store::check(&w.app.state.db, w.app.state.settings.time.tz()).await.expect("counters agree");
}

/// 200 simultaneous sends against a deal budget that fits about 20 calls. The fake
/// counts input tokens from the request text with its own rule, as Claude's tokenizer
/// would, so the only possible overshoot is the estimator's error on the calls in flight.
async fn concurrency_storm_stays_within_the_budget(engine: Engine) {
    const LIMIT: i64 = 5_000;
    const SENDS: usize = 200;
    // Every send reaches admission at once: no load shedding (tested in overload.rs).
    let mut s = settings();
    s.server.max_busy_requests = SENDS;
    let w = World::start(engine, s.clone()).await;
    w.set_deal_budget(&LIMIT.to_string()).await;
    w.fake.script((0..SENDS).map(|_| Script::Delayed(Duration::from_millis(150), Box::new(Script::Counted { output: 100 }))));
    // PostgreSQL: two app instances on one database, as behind a load balancer.
    let second = match engine {
        Engine::Postgres => Some(w.app.second_instance(s, w.fake.endpoint()).await),
        Engine::Sqlite => None,
    };
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(w.app.signed_in(&format!("storm{i}@firm.com"), UserRole::Analyst).await);
    }
    let mut sends = Vec::new();
    for i in 0..SENDS {
        let client = clients[i % clients.len()].clone();
        // Sessions live in the database: the same cookie works on either instance.
        let base = match (&second, i % 2) {
            (Some(other), 1) => other.base.clone(),
            _ => w.app.base.clone(),
        };
        let deal = w.deal_id.clone();
        sends.push(tokio::spawn(async move {
            let response = client
                .post(format!("{base}/api/chat/send"))
                .form(&[("deal_id", deal.as_str()), ("message", "What is the cap rate?")])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("HTTP {status}: {text}"));
            (status, body["kind"].as_str().unwrap_or("").to_string())
        }));
    }
    let mut ok = 0;
    for send in sends {
        match send.await.unwrap() {
            (200, _) => ok += 1,
            (403, kind) => assert_eq!(kind, "deal_budget_exhausted"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let used = w.recorded_tokens().await;
    // Upper bound of the in-flight estimation error: per admitted call, what it really
    // used beyond its uncorrected reservation (raw input estimate + max_tokens).
    let (error_bound,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(input_tokens + output_tokens - estimated_input_tokens - 100), 0) AS BIGINT) \
         FROM usage_records WHERE outcome = 'ok'",
    )
    .fetch_one(&w.app.state.db.pool)
    .await
    .unwrap();
    let overshoot = used - LIMIT;
    eprintln!(
        "storm on {engine:?}: {SENDS} sends, {ok} admitted, {used} tokens used of {LIMIT} \
         (overshoot {overshoot}, in-flight estimation error bound {error_bound})"
    );
    assert!(ok >= 10, "the budget was not refused wholesale: {ok} admitted");
    assert!(ok < SENDS / 4, "most sends were refused: {ok} admitted");
    assert!(used <= LIMIT + error_bound.max(0), "used {used} > limit {LIMIT} + error bound {error_bound}");
    assert_eq!(w.app.count("usage_reservations").await, 0, "every reservation was released");
    // The running counters admission read are exactly the sum of the records.
    app::usage::store::check(&w.app.state.db, w.app.state.settings.time.tz()).await.expect("counters = sum of records");
    let (counted,): (i64,) = sqlx::query_as("SELECT tokens FROM usage_counters WHERE scope = 'deal' AND scope_id = $1 AND period = 'life'")
        .bind(w.deal_id.parse::<i64>().unwrap())
        .fetch_one(&w.app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(counted, used);
}

async fn calibration_corrects_the_estimate_from_recorded_calls(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    assert_eq!(chat_calibration(&w, &analyst).await, 1.0, "no data yet: uncorrected");
    w.fake.script((0..5).map(|_| Script::Counted { output: 50 }));
    for i in 0..5 {
        assert_eq!(w.send(&analyst, &format!("What is the cap rate, take {i}?")).await.0, 200);
    }
    let (estimated, actual): (i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(estimated_input_tokens) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT) FROM usage_records",
    )
    .fetch_one(&w.app.state.db.pool)
    .await
    .unwrap();
    let factor = chat_calibration(&w, &analyst).await;
    assert!(estimated > 0 && actual != estimated);
    assert!((factor - actual as f64 / estimated as f64).abs() < 1e-9, "factor {factor} = {actual}/{estimated}");
}

/// Calls do not read the calibration's samples from the ledger each time: they are kept
/// in memory, with this instance's records added as they are written (above), and read
/// again after a second, when what other instances wrote since joins them.
async fn calibration_samples_are_read_at_most_once_a_second(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let analyst = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    w.fake.script((0..3).map(|_| Script::Counted { output: 50 }));
    for i in 0..3 {
        assert_eq!(w.send(&analyst, &format!("What is the cap rate, take {i}?")).await.0, 200);
    }
    // Read from the ledger (the samples in memory are over a second old by now): the
    // checks below come within the second after.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let factor = chat_calibration(&w, &analyst).await;
    assert_ne!(factor, 1.0, "the fake counts differently from the estimate");
    // Another writer makes every estimate exact.
    sqlx::query("UPDATE usage_records SET input_tokens = estimated_input_tokens, cache_creation_tokens = 0, cache_read_tokens = 0")
        .execute(&w.app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(chat_calibration(&w, &analyst).await, factor, "the samples were read again at once");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(chat_calibration(&w, &analyst).await, 1.0, "the samples were not read again after a second");
}

/// An admission's checks count the request in each period and read the overrides,
/// holding the user's and the deal's rows; for a deal gone since its page was read, or
/// a user gone, they find nothing, and the admission's rollback leaves nothing counted
/// (on PostgreSQL one statement locks and counts, and counts nothing then).
async fn admission_checks_count_only_for_a_deal_that_exists(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.set_deal_budget("5000").await;
    let db = &w.app.state.db;
    let user_id = app::auth::store::find_user_by_email(db, "owner@firm.com").await.unwrap().unwrap().id;
    let deal_id: i64 = w.deal_id.parse().unwrap();
    let (periods, now) = (["minute:1", "day:2026-12-07"], app::time::now_millis());
    let check = |user_id: i64, deal_id: i64| async move {
        let mut tx = db.begin_new_work().await.unwrap();
        let checks = app::budget::store::admission_checks(&mut tx, db.engine, user_id, deal_id, &periods, "2026-12-07", now).await.unwrap();
        let (counted,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM request_counters").fetch_one(&mut *tx).await.unwrap();
        // As the admission does: a deal not found ends it.
        match checks {
            Some(_) => tx.commit().await.unwrap(),
            None => tx.rollback().await.unwrap(),
        }
        (checks.map(|(overrides, counts, _)| (overrides.deal, counts)), counted)
    };
    // SQLite's batch counts before it finds the deal missing; the rollback undoes it.
    let uncounted = if engine == Engine::Postgres { 0 } else { 2 };
    assert_eq!(check(user_id, deal_id + 1).await, (None, uncounted));
    assert_eq!(check(user_id + 1000, deal_id).await, (None, uncounted));
    assert_eq!(w.app.count("request_counters").await, 0, "nothing counted for a deal or a user that does not exist");
    assert_eq!(check(user_id, deal_id).await, (Some((Some(5000), vec![1, 1])), 2));
    assert_eq!(check(user_id, deal_id).await, (Some((Some(5000), vec![2, 2])), 2));
    assert_eq!(check(user_id, deal_id + 1).await.0, None);
    let counted: Vec<(String, i64)> = sqlx::query_as("SELECT period, requests FROM request_counters WHERE user_id = $1 ORDER BY period")
        .bind(user_id)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(counted, vec![("day:2026-12-07".to_string(), 2), ("minute:1".to_string(), 2)]);
}

/// The estimator's correction the chat tab's pre-flight uses.
async fn chat_calibration(w: &World, client: &reqwest::Client) -> f64 {
    w.app.post(client, "/api/chat/context", &[("deal_id", &w.deal_id)]).await.1["calibration"].as_f64().unwrap()
}

on_both_engines!(
    calibration_corrects_the_estimate_from_recorded_calls,
    calibration_samples_are_read_at_most_once_a_second,
    admission_checks_count_only_for_a_deal_that_exists,
    daily_limit_reached_makes_no_upstream_call,
    admins_are_exempt_from_the_daily_limit,
    deal_warns_at_80_percent_and_blocks_at_100_for_everyone,
    a_send_inside_the_cooldown_is_refused,
    only_admins_set_budgets_and_bad_values_change_nothing,
    expired_reservations_hold_their_budget_until_settled_as_unknown_usage,
    concurrency_storm_stays_within_the_budget,
);
