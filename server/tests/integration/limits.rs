//! Every limit a firm needs, on SQLite and PostgreSQL against the fake Claude: money
//! budgets per user per month with their alerts, the firm-wide caps' three levels, rate
//! limits across two instances, spending a budget's last tokens, and a dated price book
//! (1-hour cache writes at their rate; a price applying from its date only). Admin
//! changes are audited; the operators' `budget` and `prices` commands work on the data.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_claude::Script;
use crate::support::world::{World, settings, usage};
use crate::support::{Engine, TestApp, kind};

async fn alerts(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT scope, period, level FROM budget_alerts ORDER BY id").fetch_all(&app.state.db.pool).await.unwrap()
}

/// The alerts once they settle: they are raised after each reply, off its path.
async fn alerts_settled(app: &TestApp, expected: usize) -> Vec<(String, String, String)> {
    for _ in 0..100 {
        let now = alerts(app).await;
        if now.len() >= expected {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return alerts(app).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alerts(app).await
}

async fn the_monthly_budget_refuses_the_call_that_would_cross_it_and_says_when_it_resets(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, id) = w.analyst("ana@firm.com").await;
    let (status, body) = w.app.post(&w.admin, "/api/admin/users/monthly", &[("user_id", &id.to_string()), ("monthly_usd", "0.045")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"), "budgets are whole cents: {body}");
    w.admin_ok("/api/admin/users/monthly", &[("user_id", &id.to_string()), ("monthly_usd", "0.05")]).await;
    // $2 / $10 per million in and out: 1,000 in and 4,000 out cost $0.042, leaving $0.008.
    w.fake.script([usage(1_000, 4_000)]);
    assert_eq!(w.send(&ana, "What is the cap rate?").await.0, 200);
    let status = w.status(&ana).await;
    assert_eq!((status["monthly"]["used"].as_i64(), status["monthly"]["limit"].as_i64()), (Some(42_000), Some(50_000)));
    // The next call's input and the 512-token useful minimum do not fit in $0.008 - …
    let long = "Please walk me through the NOI normalisation and the exit cap. ".repeat(150);
    let (status, body) = w.send(&ana, &long).await;
    assert_eq!((status, kind(&body)), (403, "monthly_budget_reached"), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("monthly budget") && message.contains("resets at") && message.contains("-01 00:00 UTC"), "{message}");
    assert_eq!(w.fake.requests().len(), 1, "a refused call reaches no one");
    assert_eq!(w.app.count("usage_reservations").await, 0);
    // Admins are exempt from personal budgets.
    w.fake.script([usage(1_000, 4_000)]);
    assert_eq!(w.send(&w.admin, &long).await.0, 200);
}

async fn monthly_alerts_fire_once_each_per_month(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, id) = w.analyst("ana@firm.com").await;
    w.admin_ok("/api/admin/users/monthly", &[("user_id", &id.to_string()), ("monthly_usd", "1")]).await;
    let levels = |alerts: Vec<(String, String, String)>| alerts.into_iter().map(|(_, _, level)| level).collect::<Vec<_>>();
    // Input at $2 per million: 260,000 tokens is 52% of $1.
    for (input, expected) in [
        (260_000, vec!["50%"]),
        (60_000, vec!["50%"]),
        (60_000, vec!["50%", "75%"]),
        (100_000, vec!["50%", "75%", "90%"]),
        (100, vec!["50%", "75%", "90%"]),
    ] {
        w.fake.script([usage(input, 0)]);
        let (status, body) = w.send(&ana, "And now?").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(levels(alerts_settled(&w.app, expected.len()).await), expected, "after {input} input tokens");
    }
    let month = app::time::local_day(app::time::now_millis(), chrono_tz::UTC)[..7].to_string();
    assert!(alerts(&w.app).await.iter().all(|(scope, period, _)| scope == "user" && *period == format!("month:{month}")));
    assert_eq!(w.status(&ana).await["alert"], "You have used 90% of your $1.00 monthly budget.");
}

async fn firm_caps_warn_then_refuse_large_calls_then_every_call(engine: Engine) {
    let mut s = settings();
    s.claude.max_tokens_chat = 1_000;
    let w = World::start(engine, s).await;
    w.set_limits(&[("firm_daily_tokens", "100000"), ("firm_critical_max_request_tokens", "3000")]).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    let flags = || async { w.app.post(&w.admin, "/api/admin/budget/flags", &[]).await.1["firm"].clone() };
    assert_eq!(flags().await, json!([]));

    // 80%: a warning for admins; calls go on.
    w.fake.script([usage(79_000, 1_000)]);
    assert_eq!(w.send(&ana, "one").await.0, 200);
    assert_eq!(flags().await[0][1], "warning");
    let status = w.status(&ana).await;
    assert_eq!((status["firm_day_tokens"]["used"].as_i64(), status["firm_day_tokens"]["limit"].as_i64()), (Some(80_000), Some(100_000)));

    // 95%: requests over 3,000 tokens (input and max_tokens) are refused; small ones pass.
    w.fake.script([usage(14_000, 1_000)]);
    assert_eq!(w.send(&ana, "two").await.0, 200);
    assert_eq!(flags().await[0][1], "critical");
    let large = "Summarise every lease in the rent roll with its term and escalations. ".repeat(150);
    let (status, body) = w.send(&ana, &large).await;
    assert_eq!((status, kind(&body)), (429, "firm_cap_reached"), "{body}");
    assert!(body["message"].as_str().unwrap().contains("requests over 3,000 tokens are refused"), "{body}");
    w.fake.script([usage(2_000, 1_000)]);
    assert_eq!(w.send(&ana, "A short question?").await.0, 200, "small calls still pass at the critical level");

    // 98%: every call is refused, naming the cap and when it resets, with Retry-After.
    let response = ana
        .post(format!("{}/api/chat/send", w.app.base))
        .form(&[("deal_id", w.deal_id.as_str()), ("message", "three")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(kind(&body), "firm_cap_reached");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("the firm's daily token cap") && message.contains("paused until"), "{message}");
    assert!(message.contains("98,000 tokens, $"), "the banner's words, dollars beside tokens: {message}");
    assert_eq!(flags().await[0][1], "stop");
    // Admins' calls count towards the firm's caps, and are refused by them too.
    assert_eq!(kind(&w.send(&w.admin, "four").await.1), "firm_cap_reached");
    assert_eq!(w.fake.requests().len(), 3);
    let fired: Vec<String> = alerts_settled(&w.app, 3).await.into_iter().filter(|(scope, _, _)| scope == "firm").map(|(_, _, level)| level).collect();
    assert_eq!(fired, ["warning", "critical", "stop"], "each level alerts once");
}

async fn an_enforce_ratio_applies_a_cap_below_its_value(engine: Engine) {
    let mut s = settings();
    s.claude.max_tokens_chat = 1_000;
    let w = World::start(engine, s).await;
    w.set_limits(&[("firm_daily_usd", "10"), ("firm_enforce_percent", "70")]).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    let status = w.status(&ana).await;
    assert_eq!(status["firm_day_usd"]["limit"], 7_000_000, "$10 enforced at 70%");
    // $6.86 of input: 98% of the enforced $7.
    w.fake.script([usage(3_430_000, 0)]);
    assert_eq!(w.send(&ana, "one").await.0, 200);
    assert_eq!(kind(&w.send(&ana, "two").await.1), "firm_cap_reached");
}

async fn rate_limits_hold_across_two_instances(engine: Engine) {
    let mut s = settings();
    s.limits.user_requests_per_minute = 5;
    let w = World::start(engine, s.clone()).await;
    let second = w.app.second_instance(s, w.fake.endpoint()).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    // Not across a minute boundary: the window would change mid-test.
    let into_minute = app::time::now_millis() % 60_000;
    if into_minute > 50_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into_minute + 200) as u64)).await;
    }
    w.fake.script((0..12).map(|_| usage(100, 10)));
    let sends = (0..12).map(|i| {
        let base = if i % 2 == 0 { w.app.base.clone() } else { second.base.clone() };
        let (client, deal) = (ana.clone(), w.deal_id.clone());
        async move {
            let response = client.post(format!("{base}/api/chat/send")).form(&[("deal_id", deal.as_str()), ("message", "Cap rate?")]).send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap();
            (status, body["kind"].as_str().unwrap_or_default().to_string(), retry_after, body)
        }
    });
    let answers = futures::future::join_all(sends).await;
    let admitted = answers.iter().filter(|a| a.0 == 200).count();
    assert_eq!(admitted, 5, "{answers:?}");
    for (status, kind, retry_after, body) in answers.iter().filter(|a| a.0 != 200) {
        assert_eq!((*status, kind.as_str()), (429, "rate_limited"), "{body}");
        let seconds: u64 = retry_after.as_deref().expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&seconds));
        assert_eq!(body["retry_after_seconds"].as_u64(), Some(seconds));
        assert!(body["message"].as_str().unwrap().contains("Try again in"), "{body}");
    }
    assert_eq!(w.fake.requests().len(), 5);
    // Per day, through the admin's limits (applied at once on both instances).
    w.set_limits(&[("user_requests_per_minute", "0"), ("user_requests_per_day", "6")]).await;
    w.fake.script([usage(100, 10), usage(100, 10)]);
    assert_eq!(w.send(&ana, "six").await.0, 200);
    let (status, body) = second.post(&ana, "/api/chat/send", &[("deal_id", &w.deal_id), ("message", "seven")]).await;
    assert_eq!((status, kind(&body)), (429, "rate_limited"), "{body}");
    assert!(body["message"].as_str().unwrap().contains("6 requests today"), "{body}");
}

async fn the_per_request_cap_refuses_or_trims_a_call(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.set_limits(&[("max_request_tokens", "3000")]).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    w.fake.script([usage(100, 10)]);
    assert_eq!(w.send(&ana, "A short question?").await.0, 200);
    assert!(w.fake.requests()[0].body["max_tokens"].as_u64().unwrap() <= 3000, "max_tokens trimmed to the cap");
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(350);
    let (status, body) = w.send(&ana, &long).await;
    assert_eq!((status, kind(&body)), (400, "too_long"), "{body}");
    assert_eq!(w.fake.requests().len(), 1);
}

async fn the_last_tokens_are_spent_with_a_lowered_max_tokens(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "6000")]).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    w.fake.script([usage(2_000, 1_000), usage(100, 10)]);
    assert_eq!(w.send(&ana, "one").await.0, 200);
    assert_eq!(w.fake.requests()[0].body["max_tokens"], 4096, "the whole reply fits");
    // 3,000 left: the input and a reply of at least 512 tokens fit, 4,096 do not.
    let (status, body) = w.send(&ana, "two").await;
    assert_eq!(status, 200, "{body}");
    let sent = w.fake.requests()[1].body["max_tokens"].as_u64().unwrap();
    assert!((512..3_000).contains(&sent), "max_tokens lowered to what is left: {sent}");
    let (estimated,): (i64,) = sqlx::query_as("SELECT estimated_input_tokens FROM usage_records ORDER BY id DESC LIMIT 1").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert!(sent + estimated as u64 <= 3_000, "input and reply within the 3,000 left");
    let limited = body["limited"].as_str().unwrap();
    assert!(limited.contains(&app::format::format_tokens(sent)) && limited.contains("this deal's token budget"), "{limited}");
    // With fewer than 512 tokens left for the reply, the call is refused.
    w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "3700")]).await;
    assert_eq!(kind(&w.send(&ana, "three").await.1), "deal_budget_exhausted");
    assert_eq!(w.fake.requests().len(), 2);
}

async fn a_memo_spends_the_last_tokens_and_says_so(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "5000")]).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    w.fake.script([Script::ok("## Summary\nA short memo.", 900, 300)]);
    let (status, memo) = w.app.post(&ana, "/api/reports/generate", &[("deal_id", &w.deal_id)]).await;
    assert_eq!(status, 200, "{memo}");
    let sent = w.fake.requests()[0].body["max_tokens"].as_u64().unwrap();
    assert!((512..5_000).contains(&sent), "max_tokens {sent} lowered from 8,192");
    assert!(memo["limited"].as_str().unwrap().contains("this deal's token budget"), "{memo}");
    let (_, list) = w.app.post(&ana, "/api/reports/list", &[("deal_id", &w.deal_id)]).await;
    assert!(list[0].get("limited").is_none(), "the note belongs to the answer, not the stored memo");
}

async fn one_hour_cache_writes_cost_the_one_hour_rate(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    w.fake.script([Script::Reply {
        text: "Cached.".into(),
        usage: json!({"input_tokens": 1000, "output_tokens": 100, "cache_creation_input_tokens": 4000,
                      "cache_creation": {"ephemeral_5m_input_tokens": 3000, "ephemeral_1h_input_tokens": 1000}}),
    }]);
    let (status, body) = w.send(&ana, "Cap rate?").await;
    assert_eq!(status, 200, "{body}");
    let (cost, one_hour): (i64, i64) = sqlx::query_as("SELECT cost_microusd, cache_creation_1h_tokens FROM usage_records").fetch_one(&w.app.state.db.pool).await.unwrap();
    // Sonnet 5.5: 1000 × $2 + 100 × $10 + 3000 × $2.50 (5 min) + 1000 × $4 (1 h) per MTok.
    assert_eq!((cost, one_hour), (2_000 + 1_000 + 7_500 + 4_000, 1_000));
    assert_eq!(body["reply"]["usage"]["cost_microusd"], cost);
}

async fn a_price_change_applies_only_to_calls_after_its_effective_date(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    let costs = || async {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT cost_microusd FROM usage_records ORDER BY id").fetch_all(&w.app.state.db.pool).await.unwrap();
        rows.into_iter().map(|(c,)| c).collect::<Vec<_>>()
    };
    w.fake.script((0..3).map(|_| usage(1_000_000, 0)));
    assert_eq!(w.send(&ana, "before").await.0, 200);
    let model = app::settings::Settings::default().claude.model;
    // Today (from now): $20 per million input tokens.
    w.admin_ok("/api/admin/prices/add", &[("model", &model), ("effective_date", ""), ("input", "20"), ("output", "10")]).await;
    // Tomorrow: $100. Not yet.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    w.admin_ok("/api/admin/prices/add", &[("model", &model), ("effective_date", &tomorrow), ("input", "100"), ("output", "10")]).await;
    assert_eq!(w.send(&ana, "after").await.0, 200);
    assert_eq!(costs().await, [2_000_000, 20_000_000]);
    // A day already past cannot be priced again; a malformed price changes nothing.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    for form in [
        vec![("model", model.as_str()), ("effective_date", yesterday.as_str()), ("input", "1"), ("output", "1")],
        vec![("model", model.as_str()), ("effective_date", ""), ("input", "-1"), ("output", "1")],
        vec![("model", "bad model"), ("effective_date", ""), ("input", "1"), ("output", "1")],
    ] {
        let (status, body) = w.app.post(&w.admin, "/api/admin/prices/add", &form).await;
        assert_eq!((status, kind(&body)), (400, "invalid"), "{form:?}: {body}");
    }
    let (_, book) = w.app.post(&w.admin, "/api/admin/prices/list", &[]).await;
    let ours: Vec<&Value> = book["prices"].as_array().unwrap().iter().filter(|p| p["model"] == model.as_str()).collect();
    let statuses: Vec<&str> = ours.iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["past", "past", "current", "scheduled"], "two built-in, today's, tomorrow's");
    // Every change is in the audit log, with who made it.
    let (_, audit) = w.app.post(&w.admin, "/api/admin/audit", &[]).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["actor"] == "root@firm.com" && e["subject"].as_str().unwrap().starts_with(&format!("price of {model}"))), "{audit}");
    // Another instance prices with the new book at once.
    let second = w.app.second_instance(settings(), w.fake.endpoint()).await;
    w.admin_ok("/api/admin/prices/add", &[("model", &model), ("effective_date", ""), ("input", "30"), ("output", "10")]).await;
    let (status, _) = second.post(&ana, "/api/chat/send", &[("deal_id", &w.deal_id), ("message", "third")]).await;
    assert_eq!(status, 200);
    assert_eq!(costs().await[2], 30_000_000);
}

async fn a_price_stored_while_a_call_runs_prices_its_record(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    let model = app::settings::Settings::default().claude.model;
    // A second instance admits and calls; while Claude writes, the first stores a price.
    // The second's book never saw it: the record's own write finds it and reprices.
    let second = w.app.second_instance(settings(), w.fake.endpoint()).await;
    w.fake.script([Script::Delayed(Duration::from_millis(1_500), Box::new(usage(1_000_000, 0)))]);
    let form = [("deal_id", w.deal_id.as_str()), ("message", "slow")];
    let send = second.post(&ana, "/api/chat/send", &form);
    let add = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.admin_ok("/api/admin/prices/add", &[("model", &model), ("effective_date", ""), ("input", "40"), ("output", "10")]).await;
    };
    let ((status, body), ()) = tokio::join!(send, add);
    assert_eq!(status, 200, "{body}");
    let (cost,): (i64,) = sqlx::query_as("SELECT cost_microusd FROM usage_records").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(cost, 40_000_000, "1 M input tokens at the price stored during the call");
    assert_eq!(w.app.count("usage_reservations").await, 0, "the reservation was settled");
    app::usage::store::check(&w.app.state.db, w.app.state.settings.time.tz()).await.expect("aggregates agree with the records");
    let (replies,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE role = 'assistant'").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(replies, 1, "the reply is stored once, with the record as priced again");
}

async fn limits_are_validated_audited_and_for_admins_only(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, ana_id) = w.analyst("ana@firm.com").await;
    let (_, before) = w.app.post(&w.admin, "/api/admin/limits/get", &[]).await;
    let form: Vec<(String, String)> = before["form"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ana_id = ana_id.to_string();
    let attempts: [(&str, Vec<(&str, &str)>); 7] = [
        ("/api/admin/limits/get", vec![]),
        ("/api/admin/limits/save", form.clone()),
        ("/api/admin/limits/reset", vec![]),
        ("/api/admin/prices/list", vec![]),
        ("/api/admin/prices/add", vec![("model", "m"), ("effective_date", ""), ("input", "1"), ("output", "1")]),
        ("/api/admin/audit", vec![]),
        ("/api/admin/users/monthly", vec![("user_id", &ana_id), ("monthly_usd", "1000")]),
    ];
    for (path, form) in &attempts {
        let (status, body) = w.app.post(&ana, path, form).await;
        assert_eq!((status, kind(&body)), (403, "forbidden"), "{path}: {body}");
    }
    assert_eq!(w.app.count("model_prices").await + w.app.count("limit_settings").await, 0, "analysts changed nothing");
    assert_eq!(before["saved"], false);
    let (status, body) = w.app.post(&w.admin, "/api/admin/limits/save", &[("firm_warning_percent", "120")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"), "{body}");
    let mut bad = before["form"].as_object().unwrap().clone();
    bad.insert("firm_warning_percent".into(), json!("120"));
    let fields: Vec<(String, String)> = bad.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = w.app.post(&w.admin, "/api/admin/limits/save", &fields).await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    assert!(body["message"].as_str().unwrap().contains("Warning level"), "{body}");
    assert_eq!(w.app.count("limit_settings").await, 0, "nothing saved");
    w.set_limits(&[("firm_daily_usd", "500"), ("user_monthly_usd", "75")]).await;
    let (_, after) = w.app.post(&w.admin, "/api/admin/limits/get", &[]).await;
    assert_eq!((after["saved"].as_bool(), after["form"]["firm_daily_usd"].as_str()), (Some(true), Some("500.00")));
    let (_, audit) = w.app.post(&w.admin, "/api/admin/audit", &[]).await;
    let subjects: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["subject"].as_str().unwrap().to_string(), e["old_value"].as_str().unwrap().to_string(), e["new_value"].as_str().unwrap().to_string()))
        .collect();
    assert!(subjects.contains(&("limits.firm_daily_usd".into(), "0.0".into(), "500.0".into())), "{subjects:?}");
    assert!(subjects.contains(&("limits.user_monthly_usd".into(), "50.0".into(), "75.0".into())), "{subjects:?}");
    assert!(subjects.iter().any(|(s, _, _)| s.starts_with("user ana@firm.com: daily budget")), "{subjects:?}");
    w.admin_ok("/api/admin/limits/reset", &[]).await;
    assert_eq!(w.app.count("limit_settings").await, 0);
    assert_eq!(w.status(&ana).await["monthly"]["limit"], 50_000_000, "back to Leptos.toml's $50");
}

/// Many users share one firm-wide hourly cap; every send is admitted or refused by it,
/// and the firm's usage overshoots the cap by no more than the estimation error of the
/// calls in flight. Two app instances on PostgreSQL.
async fn a_storm_of_many_users_stays_within_the_firm_hourly_cap(engine: Engine) {
    const CAP: i64 = 10_000;
    const USERS: usize = 50;
    const SENDS: usize = 200;
    let mut s = settings();
    s.claude.max_tokens_chat = 100;
    s.limits.firm_critical_ratio = 1.0;
    s.limits.firm_stop_ratio = 1.0;
    s.limits.firm_hourly_tokens = CAP as u64;
    // Every send reaches admission at once: no load shedding (tested in overload.rs).
    s.server.max_busy_requests = SENDS;
    let w = World::start(engine, s.clone()).await;
    let second = match engine {
        Engine::Postgres => Some(w.app.second_instance(s, w.fake.endpoint()).await),
        Engine::Sqlite => None,
    };
    w.fake.script((0..SENDS).map(|_| Script::Delayed(Duration::from_millis(100), Box::new(Script::Counted { output: 100 }))));
    let mut clients = Vec::new();
    for i in 0..USERS {
        clients.push(w.analyst(&format!("firm{i}@firm.com")).await.0);
    }
    let sends = (0..SENDS).map(|i| {
        let client = clients[i % USERS].clone();
        let base = match (&second, i % 2) {
            (Some(other), 1) => other.base.clone(),
            _ => w.app.base.clone(),
        };
        let deal = w.deal_id.clone();
        async move {
            let response = client.post(format!("{base}/api/chat/send")).form(&[("deal_id", deal.as_str()), ("message", "What is the cap rate?")]).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["kind"].as_str().unwrap_or_default().to_string())
        }
    });
    let started = std::time::Instant::now();
    let answers = futures::future::join_all(sends).await;
    let admitted = answers.iter().filter(|a| a.0 == 200).count();
    for (status, kind) in answers.iter().filter(|a| a.0 != 200) {
        assert_eq!((*status, kind.as_str()), (429, "firm_cap_reached"));
    }
    let (used,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) FROM usage_records")
        .fetch_one(&w.app.state.db.pool)
        .await
        .unwrap();
    let (error_bound,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN input_tokens + output_tokens > estimated_input_tokens + 100 \
         THEN input_tokens + output_tokens - estimated_input_tokens - 100 ELSE 0 END), 0) AS BIGINT) FROM usage_records",
    )
    .fetch_one(&w.app.state.db.pool)
    .await
    .unwrap();
    eprintln!(
        "firm-cap storm on {engine:?} ({} instance(s), {USERS} users, {:.1} s): {SENDS} sends, {admitted} admitted, \
         {used} tokens used of the {CAP}-token hourly cap (overshoot {}, in-flight estimation error bound {error_bound})",
        if second.is_some() { 2 } else { 1 },
        started.elapsed().as_secs_f64(),
        (used - CAP).max(0),
    );
    assert!(admitted >= 20 && admitted < SENDS, "{admitted} admitted");
    assert!(used <= CAP + error_bound, "used {used} > cap {CAP} + bound {error_bound}");
    assert_eq!(w.app.count("usage_reservations").await, 0);
    app::usage::store::check(&w.app.state.db, w.app.state.settings.time.tz()).await.expect("counters = records");
}

/// `server budget status|reset` and `server prices list|set` against the app's database.
async fn the_operators_budget_and_price_commands_work_on_the_data(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    w.fake.script([usage(3_000, 500)]);
    assert_eq!(w.send(&ana, "one").await.0, 200);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DEALDESK_CONFIG")
            .env("DATABASE_URL", &w.app.db.url)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let status = run(&["budget", "status", "--user", "ana@firm.com", "--deal", &w.deal_id]);
    assert!(status.contains("your daily token budget") && status.contains("3,500") && status.contains("your monthly budget"), "{status}");
    assert!(status.contains("this deal's token budget") && status.contains("requests today"), "{status}");
    let reset = run(&["budget", "reset", "--user", "ana@firm.com", "--window", "day"]);
    assert!(reset.contains("starts afresh"), "{reset}");
    assert_eq!(w.status(&ana).await["daily"]["used"], 0, "the day starts afresh");
    assert_eq!(w.status(&ana).await["monthly"]["used"], 11_000, "the month is untouched");
    assert_eq!(w.app.count("usage_records").await, 1, "records are never deleted");
    run(&["usage", "check"]);
    let prices = run(&["prices", "list"]);
    assert!(prices.contains("claude-sonnet-5-5") && prices.contains("current"), "{prices}");
    run(&["prices", "set", "--model", "claude-custom-1", "--input", "1.5", "--output", "7"]);
    assert!(run(&["prices", "list"]).contains("claude-custom-1"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE actor = 'cli'").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(n, 2, "the reset and the price are audited");
}

async fn refused_calls_are_recorded_by_kind_and_shown_on_the_dashboard(engine: Engine) {
    let mut s = settings();
    s.chat.cooldown_seconds = 60;
    let w = World::start(engine, s).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    let (bo, bo_id) = w.analyst("bo@firm.com").await;
    w.fake.script([usage(10, 10)]);
    assert_eq!(w.send(&ana, "one").await.0, 200);
    // Within the cooldown: refused twice.
    for _ in 0..2 {
        let (status, body) = w.send(&ana, "two").await;
        assert_eq!((status, kind(&body)), (429, "cooldown"), "{body}");
    }
    // The deal's budget used up: Bo is refused by it.
    w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "20")]).await;
    let (status, body) = w.send(&bo, "three").await;
    assert_eq!((status, kind(&body)), (403, "deal_budget_exhausted"), "{body}");
    assert_eq!(w.fake.requests().len(), 1, "no refused call reached Claude");

    let dashboard = |user: String| {
        let app = &w.app;
        let admin = w.admin.clone();
        async move {
            let (status, d) = app.post(&admin, "/api/admin/usage/dashboard", &[("range", "today"), ("from", ""), ("to", ""), ("user", &user), ("deal", "")]).await;
            assert_eq!(status, 200, "{d}");
            d
        }
    };
    let d = dashboard(String::new()).await;
    let rows: Vec<(String, String, String, i64)> = d["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user"].as_str().unwrap().into(), r["deal"].as_str().unwrap().into(), r["kind"].as_str().unwrap().into(), r["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [("ana@firm.com".into(), "Harbor Point".into(), "cooldown".into(), 2), ("bo@firm.com".into(), "Harbor Point".into(), "deal_budget_exhausted".into(), 1)],
        "{d}"
    );
    // Refusals are events, not usage: one call was made and billed.
    assert_eq!(d["by_day"]["totals"]["calls"], 1, "{d}");
    // Narrowed to Bo, only his.
    let d = dashboard(bo_id.to_string()).await;
    assert_eq!(d["refusals"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["refusals"][0]["kind"], "deal_budget_exhausted");
}

async fn spend_against_budget_lists_analysts_and_deals_most_used_first(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, ana_id) = w.analyst_with_monthly("ana@firm.com", "1").await;
    let (_bo, _) = w.analyst_with_monthly("bo@firm.com", "10").await;
    w.seed(ana_id, Some(w.deal), 0, 1_000, 600_000).await;
    w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "4000")]).await;
    let (status, uses) = w.app.post(&w.admin, "/api/admin/budget/uses", &[]).await;
    assert_eq!(status, 200, "{uses}");
    let users: Vec<(String, u64, u64)> =
        uses["users"].as_array().unwrap().iter().map(|u| (u["name"].as_str().unwrap().into(), u["used"].as_u64().unwrap(), u["limit"].as_u64().unwrap())).collect();
    assert_eq!(users, [("ana@firm.com".into(), 600_000, 1_000_000), ("bo@firm.com".into(), 0, 10_000_000)], "most used first: {uses}");
    let deal = &uses["deals"][0];
    assert_eq!((deal["name"].as_str(), deal["used"].as_u64(), deal["limit"].as_u64(), deal["unit"].as_str()), (Some("Harbor Point"), Some(1_000), Some(4_000), Some("tokens")), "{uses}");
    let (status, body) = w.app.post(&ana, "/api/admin/budget/uses", &[]).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"));
    // A budget of $0 allows nothing: first, and full. Without a firm monthly budget an
    // analyst with none of their own has no budget at all.
    let (_, cy_id) = w.analyst_with_monthly("cy@firm.com", "0").await;
    w.set_limits(&[("user_monthly_usd", "0")]).await;
    let (_, dee_id) = w.analyst("dee@firm.com").await;
    let (_, uses) = w.app.post(&w.admin, "/api/admin/budget/uses", &[]).await;
    let users = uses["users"].as_array().unwrap();
    assert_eq!((users[0]["id"].as_i64(), users[0]["limit"].as_u64()), (Some(cy_id), Some(0)), "{uses}");
    let dee = users.iter().find(|u| u["id"] == dee_id).unwrap();
    assert!(dee["limit"].is_null(), "{uses}");
}

async fn the_users_list_shows_spend_this_month_last_use_and_the_defaults(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (_, ana_id) = w.analyst("ana@firm.com").await;
    w.seed(ana_id, Some(w.deal), 0, 1_000, 600_000).await;
    let (_, users) = w.app.post(&w.admin, "/api/admin/users/list", &[]).await;
    let ana = users.as_array().unwrap().iter().find(|u| u["email"] == "ana@firm.com").unwrap();
    let today = app::time::local_day(app::time::now_millis(), chrono_tz::UTC);
    assert_eq!((ana["spent_this_month_microusd"].as_u64(), ana["last_used_on"].as_str()), (Some(600_000), Some(today.as_str())), "{ana}");
    let root = users.as_array().unwrap().iter().find(|u| u["email"] == "root@firm.com").unwrap();
    assert_eq!((root["spent_this_month_microusd"].as_u64(), root["last_used_on"].as_str()), (Some(0), None), "{root}");
    w.set_limits(&[("user_monthly_usd", "12.50")]).await;
    let (status, defaults) = w.app.post(&w.admin, "/api/admin/users/defaults", &[]).await;
    assert_eq!(status, 200, "{defaults}");
    let daily = w.app.state.settings.budget.user_daily_tokens;
    assert_eq!(defaults, serde_json::json!({"daily_tokens": daily, "monthly_microusd": 12_500_000}), "the monthly default in force");
}

on_both_engines!(
    the_monthly_budget_refuses_the_call_that_would_cross_it_and_says_when_it_resets,
    monthly_alerts_fire_once_each_per_month,
    firm_caps_warn_then_refuse_large_calls_then_every_call,
    an_enforce_ratio_applies_a_cap_below_its_value,
    rate_limits_hold_across_two_instances,
    the_per_request_cap_refuses_or_trims_a_call,
    the_last_tokens_are_spent_with_a_lowered_max_tokens,
    a_memo_spends_the_last_tokens_and_says_so,
    one_hour_cache_writes_cost_the_one_hour_rate,
    a_price_change_applies_only_to_calls_after_its_effective_date,
    a_price_stored_while_a_call_runs_prices_its_record,
    limits_are_validated_audited_and_for_admins_only,
    a_storm_of_many_users_stays_within_the_firm_hourly_cap,
    the_operators_budget_and_price_commands_work_on_the_data,
    refused_calls_are_recorded_by_kind_and_shown_on_the_dashboard,
    spend_against_budget_lists_analysts_and_deals_most_used_first,
    the_users_list_shows_spend_this_month_last_use_and_the_defaults,
);
