//! Foresight, on SQLite and PostgreSQL against the fake Claude: alerts once per
//! threshold and period under a storm across two instances, the webhook (signed, retried
//! after a 500, delivered once), projections of a steady history, budget-aware model
//! choice switching tiers at 70/30/10% left with the one-send override, the alerts API
//! and acknowledgement, My usage, and `/metrics` in the Prometheus text format.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::settings::Secret;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::support::fake_claude::Script;
use crate::support::world::{DAY, World, settings, usage};
use crate::support::{Engine, TestApp, kind, meters};

type AlertKey = (String, i64, String, String);

async fn alert_keys(app: &TestApp) -> Vec<AlertKey> {
    sqlx::query_as("SELECT scope, scope_id, period, level FROM budget_alerts ORDER BY id").fetch_all(&app.state.db.pool).await.unwrap()
}

/// Waits until `done` holds of the alerts (they are raised after each reply, off its path).
async fn alerts_until(app: &TestApp, done: impl Fn(&[AlertKey]) -> bool) -> Vec<AlertKey> {
    for _ in 0..200 {
        let alerts = alert_keys(app).await;
        if done(&alerts) {
            return alerts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alert_keys(app).await
}

async fn each_threshold_alerts_once_under_a_storm_across_two_instances(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let second = w.app.second_instance(settings(), w.fake.endpoint()).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(w.analyst_with_monthly(&format!("storm{i}@firm.com"), "0.30").await);
    }
    // $0.041 a call: each user crosses 50, 75 and 90% of $0.30 within 20 calls.
    w.fake.script((0..100).map(|_| Script::Delayed(Duration::from_millis(30), Box::new(usage(20_000, 100)))));
    let sends = (0..100).map(|i| {
        let (client, _) = users[i % users.len()].clone();
        let base = if i % 2 == 0 { w.app.base.clone() } else { second.base.clone() };
        let deal = w.deal_id.clone();
        async move {
            let response = client.post(format!("{base}/api/chat/send")).form(&[("deal_id", deal.as_str()), ("message", "Cap rate?")]).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["kind"].as_str().unwrap_or_default().to_string())
        }
    });
    let answers = futures::future::join_all(sends).await;
    for (status, kind) in answers.iter().filter(|a| a.0 != 200) {
        assert_eq!((*status, kind.as_str()), (403, "monthly_budget_reached"));
    }
    let month = format!("month:{}", &app::time::local_day(app::time::now_millis(), chrono_tz::UTC)[..7]);
    let shares = |alerts: &[AlertKey], user: i64| {
        let mut levels: Vec<String> = alerts.iter().filter(|a| a.0 == "user" && a.1 == user && a.2 == month && a.3.ends_with('%')).map(|a| a.3.clone()).collect();
        levels.sort();
        levels
    };
    let ids: Vec<i64> = users.iter().map(|u| u.1).collect();
    let alerts = alerts_until(&w.app, |a| ids.iter().all(|id| shares(a, *id).len() == 3)).await;
    for id in &ids {
        assert_eq!(shares(&alerts, *id), ["50%", "75%", "90%"], "user {id}");
    }
    let mut keys = alerts.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), alerts.len(), "no alert twice: {alerts:?}");
}

/// After a call, only thresholds not yet recorded are written (most calls write none and
/// take no write lock): the check tells recorded alerts from new ones by every part of
/// their key.
async fn only_alerts_not_yet_recorded_are_written_again(engine: Engine) {
    use app::alerts::store::{NewAlert, insert, not_yet_fired};
    let w = World::start(engine, settings()).await;
    let db = &w.app.state.db;
    let alert = |scope_id: i64, period: &str, level: &str| NewAlert {
        scope: "user",
        scope_id,
        period: period.into(),
        level: level.into(),
        used: 10,
        budget: 20,
        unit: "microusd",
        at: 1,
    };
    assert_eq!(not_yet_fired(db, Vec::new()).await.unwrap(), []);
    let recorded = alert(7, "month:2026-12", "50%");
    let mut tx = db.begin_write().await.unwrap();
    assert!(insert(&mut tx, &recorded, false).await.unwrap().is_some());
    tx.commit().await.unwrap();
    let others = [alert(8, "month:2026-12", "50%"), alert(7, "month:2027-01", "50%"), alert(7, "month:2026-12", "75%")];
    let mut asked = vec![recorded.clone()];
    asked.extend(others.iter().cloned());
    assert_eq!(not_yet_fired(db, asked).await.unwrap(), others);
    assert_eq!(not_yet_fired(db, vec![recorded]).await.unwrap(), []);
}

/// A receiver that answers 500 to the first post and 200 after, keeping every post.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let posts: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let kept = posts.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let mut posts = kept.lock().unwrap();
                posts.push((headers, body));
                if posts.len() == 1 { axum::http::StatusCode::INTERNAL_SERVER_ERROR } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, posts)
}

async fn the_webhook_gets_each_alert_once_signed_and_retried_after_a_500(engine: Engine) {
    let (url, posts) = webhook_receiver().await;
    let mut s = settings();
    s.alerts.webhook_url = url;
    s.alerts.webhook_retry_base_ms = 200;
    s.env.alert_webhook_secret = Some(Secret::new("webhook-test-secret"));
    let w = World::start(engine, s).await;
    let (ana, _) = w.analyst_with_monthly("ana@firm.com", "0.05").await;
    // $0.03 of $0.05: the 50% alert, and only it.
    w.fake.script([usage(10_000, 1_000)]);
    assert_eq!(w.send(&ana, "Cap rate?").await.0, 200);
    for _ in 0..100 {
        if posts.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await; // nothing more should come
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 2, "one failed post, one delivered, no more");
    let (first, second) = (&posts[0], &posts[1]);
    assert_eq!(first.1, second.1, "the retry posts the same alert");
    let alert: Value = serde_json::from_str(&second.1).unwrap();
    assert_eq!((alert["scope"].as_str(), alert["level"].as_str()), (Some("user"), Some("50%")), "{alert}");
    assert!(alert["message"].as_str().unwrap().contains("ana@firm.com's monthly budget: 50% used"), "{alert}");
    let header = |name: &str| second.0.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("x-dealdesk-alert"), alert["id"].to_string());
    let timestamp: i64 = header("x-dealdesk-timestamp").parse().unwrap();
    assert_eq!(header("x-dealdesk-signature"), app::alerts::service::sign("webhook-test-secret", timestamp, &second.1), "a valid signature");
    assert_ne!(header("x-dealdesk-signature"), app::alerts::service::sign("another-secret", timestamp, &second.1));
    // Admins see the delivery.
    let (_, listed) = w.app.post(&w.admin, "/api/admin/alerts/list", &[]).await;
    assert_eq!(listed[0]["delivery"], json!({"status": "delivered", "attempts": 2, "last_error": null}), "{listed}");
}

async fn a_steady_history_projects_the_right_day(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "50000")]).await;
    let (ana, id) = w.analyst_with_monthly("ana@firm.com", "1").await;
    // 1,000 tokens and $200 a day on the deal for the last seven days.
    let now = app::time::now_millis();
    let month = app::time::local_day(now, chrono_tz::UTC)[..7].to_string();
    for days_ago in 1..=7 {
        w.seed(id, Some(w.deal), days_ago, 1_000, 200_000_000).await;
    }
    let (_, status) = w.app.post(&ana, "/api/budget/status", &[("deal_id", &w.deal_id)]).await;
    let deal = status["limits"].as_array().unwrap().iter().find(|l| l["kind"]["limit"] == "deal_tokens").unwrap();
    assert_eq!(deal["forecast"]["per_day"], 1_000, "{deal}");
    // 7,000 used of 50,000: 43 days at 1,000 a day.
    let expected = app::time::local_day(now + 43 * DAY, chrono_tz::UTC);
    assert_eq!(deal["forecast"]["runs_out_on"], expected.as_str(), "{deal}");
    // A monthly budget $1 above what this month's seeded days spent: at $200 a day it
    // runs out today, and the month is projected to overrun — alerted once.
    let this_month = (1..=7).filter(|d| app::time::local_day(now - d * DAY, chrono_tz::UTC).starts_with(&month)).count() as i64;
    let budget = (this_month * 200 + 1).to_string();
    w.admin_ok("/api/admin/users/monthly", &[("user_id", &id.to_string()), ("monthly_usd", &budget)]).await;
    w.fake.script([usage(10, 10)]);
    let (code, body) = w.send(&ana, "one").await;
    assert_eq!(code, 200, "{body}");
    let overrun = |a: &[AlertKey]| a.iter().filter(|k| k.0 == "user" && k.3 == app::alerts::PROJECTED_OVERRUN).count();
    let alerts = alerts_until(&w.app, |a| overrun(a) == 1).await;
    assert_eq!(overrun(&alerts), 1, "{alerts:?}");
    let (_, mine) = w.app.post(&ana, "/api/budget/mine", &[]).await;
    let monthly = mine["limits"].as_array().unwrap().iter().find(|l| l["kind"]["limit"] == "user_monthly_usd").unwrap();
    assert_eq!(monthly["forecast"]["per_day"], 200_000_000, "{mine}");
    assert_eq!(monthly["forecast"]["runs_out_on"], app::time::local_day(now, chrono_tz::UTC).as_str(), "{mine}");
    assert_eq!(mine["month"], month.as_str());
    // The month's pace, whatever the limits: 1,000 tokens and $200 a day, projected on
    // from this month's use to its last day.
    assert_eq!((mine["month_tokens"]["per_day"].as_u64(), mine["month_usd"]["per_day"].as_u64()), (Some(1_000), Some(200_000_000)), "{mine}");
    let month_end = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").unwrap() + chrono::Months::new(1);
    let days_left = (month_end.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis() - now) as f64 / DAY as f64;
    let projected = mine["month_tokens"]["at_period_end"].as_u64().unwrap() as f64;
    let expected = mine["tokens"].as_u64().unwrap() as f64 + 1_000.0 * days_left;
    assert!((projected - expected).abs() <= 2.0, "projected {projected}, expected {expected}: {mine}");
    let (_, my_alerts) = w.app.post(&ana, "/api/alerts/mine", &[]).await;
    assert!(my_alerts.as_array().unwrap().iter().any(|a| a["level"] == "projected_overrun"), "{my_alerts}");
    assert!(meters(&status)["deal"]["limit"] == 50_000);
}

async fn the_model_tier_follows_the_tightest_budget_and_the_override_works(engine: Engine) {
    let w = World::start(engine, settings()).await;
    w.set_limits(&[("model_choice", "on")]).await;
    let (ana, id) = w.analyst_with_monthly("ana@firm.com", "1").await;
    let model_of_last_call = || w.fake.requests().last().unwrap().body["model"].as_str().unwrap().to_string();
    // Spend as shares of the $1 budget, then which tier the next call gets.
    let mut spent = 0;
    for (to, expected) in [(200_000, "claude-opus-5-5"), (310_000, "claude-sonnet-5-5"), (710_000, "claude-haiku-5-5"), (910_000, "claude-haiku-5-5")] {
        w.seed(id, None, 0, 0, to - spent).await;
        spent = to;
        w.fake.script([usage(10, 10)]);
        let (status, body) = w.send(&ana, "Cap rate?").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(model_of_last_call(), expected, "with {}% of the budget used", to / 10_000);
        spent += cost_of(&w).await;
        if expected != "claude-opus-5-5" {
            assert!(body["model_note"].as_str().unwrap().contains(&format!("Answered by {expected} instead of claude-opus-5-5")), "{body}");
        }
    }
    // The record keeps the model asked for and what the cheaper one saved.
    let (requested, saved): (String, i64) =
        sqlx::query_as("SELECT requested_model, savings_microusd FROM usage_records WHERE requested_model <> '' ORDER BY id LIMIT 1").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(requested, "claude-opus-5-5");
    assert!(saved > 0, "{saved}");
    // The analyst overrides for one send; the next is budgeted again.
    w.fake.script([usage(10, 10), usage(10, 10)]);
    let (status, body) = w.app.post(&ana, "/api/chat/send", &[("deal_id", &w.deal_id), ("message", "Best model, please"), ("best_model", "true")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(model_of_last_call(), "claude-opus-5-5");
    assert_eq!(w.send(&ana, "And again").await.0, 200);
    assert_eq!(model_of_last_call(), "claude-haiku-5-5");
    // The status tells the browser which tier applies; the dashboard shows the savings.
    let (_, status) = w.app.post(&ana, "/api/budget/status", &[("deal_id", &w.deal_id)]).await;
    assert_eq!(status["model_choice"]["tiers"][0], "claude-opus-5-5");
    let (_, dashboard) = w.app.post(&w.admin, "/api/admin/usage/dashboard", &[("range", "today"), ("from", ""), ("to", ""), ("user", ""), ("deal", "")]).await;
    assert!(dashboard["by_day"]["totals"]["savings_microusd"].as_i64().unwrap() > 0, "{}", dashboard["by_day"]["totals"]);
    // Off for this user: the configured model again.
    w.admin_ok("/api/admin/users/model-choice", &[("user_id", &id.to_string()), ("choice", "off")]).await;
    w.fake.script([usage(10, 10)]);
    assert_eq!(w.send(&ana, "Configured model").await.0, 200);
    assert_eq!(model_of_last_call(), "claude-sonnet-5-5");
}

async fn cost_of(w: &World) -> i64 {
    let (cost,): (i64,) = sqlx::query_as("SELECT cost_microusd FROM usage_records ORDER BY id DESC LIMIT 1").fetch_one(&w.app.state.db.pool).await.unwrap();
    cost
}

async fn admins_list_and_acknowledge_alerts(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, _) = w.analyst_with_monthly("ana@firm.com", "0.05").await;
    w.fake.script([usage(10_000, 1_000)]);
    assert_eq!(w.send(&ana, "Cap rate?").await.0, 200);
    alerts_until(&w.app, |a| !a.is_empty()).await;
    // Analysts may not read every alert, nor acknowledge.
    let forbidden = ana.get(format!("{}/api/alerts", w.app.base)).send().await.unwrap();
    assert_eq!(forbidden.status().as_u16(), 403);
    let (status, body) = w.app.post(&ana, "/api/admin/alerts/acknowledge", &[("id", "1")]).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"));
    let all: Value = w.admin.get(format!("{}/api/alerts", w.app.base)).send().await.unwrap().json().await.unwrap();
    let alert = &all["alerts"][0];
    assert_eq!((alert["level"].as_str(), alert["acknowledged"].is_null()), (Some("50%"), true), "{all}");
    let id = alert["id"].to_string();
    w.admin_ok("/api/admin/alerts/acknowledge", &[("id", &id)]).await;
    let (status, body) = w.app.post(&w.admin, "/api/admin/alerts/acknowledge", &[("id", &id)]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"), "once is enough");
    let open: Value = w.admin.get(format!("{}/api/alerts?unacknowledged=true", w.app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(open["alerts"], json!([]));
    let (_, audit) = w.app.post(&w.admin, "/api/admin/audit", &[]).await;
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["subject"] == format!("alert #{id}") && e["new_value"] == "acknowledged"));
}

async fn metrics_parse_as_prometheus_text(engine: Engine) {
    let mut s = settings();
    s.limits.firm_daily_usd = 100.0;
    let w = World::start(engine, s).await;
    let (ana, _) = w.analyst_with_monthly("ana@firm.com", "50").await;
    w.fake.script([usage(1_000, 100)]);
    assert_eq!(w.send(&ana, "Cap rate?").await.0, 200);
    w.set_limits(&[("user_requests_per_day", "1")]).await;
    assert_eq!(kind(&w.send(&ana, "again").await.1), "rate_limited");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, server::metrics_router(w.app.state.clone())).into_future());
    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, label: (&str, &str)| {
        scrape.samples.iter().find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1)).map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
    };
    assert_eq!(value("dealdesk_claude_calls_total", ("outcome", "ok")), Some(1.0), "{text}");
    assert_eq!(value("dealdesk_claude_tokens_total", ("kind", "input")), Some(1_000.0), "{text}");
    assert_eq!(value("dealdesk_admission_refusals_total", ("kind", "rate_limited")), Some(1.0), "{text}");
    let remaining = value("dealdesk_firm_cap_remaining", ("window", "day")).expect("firm cap gauge");
    assert!(remaining > 99.0 && remaining < 100.0, "{remaining}");
    assert!(scrape.samples.iter().any(|s| s.metric == "dealdesk_claude_upstream_seconds"), "a histogram: {text}");
}

/// An analyst's past days (the burn window the month's overrun is projected from) are
/// read once, not in the budget check after every call: a day's counters stop changing
/// once it has ended, and each instance keeps them a while (`PastDays`).
async fn an_analysts_past_days_are_read_once_not_after_every_call(engine: Engine) {
    let w = World::start(engine, settings()).await;
    let (ana, _) = w.analyst("ana@firm.com").await;
    let lookups = || w.app.state.past_days.lookups();
    let (found, read) = lookups();
    w.fake.script([usage(10, 10), usage(10, 10), usage(10, 10)]);
    for (n, question) in ["one", "two", "three"].into_iter().enumerate() {
        let (code, body) = w.send(&ana, question).await;
        assert_eq!(code, 200, "{body}");
        // The check runs after the reply, off its path: the next call waits for it.
        for _ in 0..200 {
            let (f, r) = lookups();
            if f + r > found + read + n as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (f, r) = lookups();
    assert_eq!((f - found, r - read), (2, 1), "one read, then the kept days twice");
}

on_both_engines!(
    an_analysts_past_days_are_read_once_not_after_every_call,
    each_threshold_alerts_once_under_a_storm_across_two_instances,
    only_alerts_not_yet_recorded_are_written_again,
    the_webhook_gets_each_alert_once_signed_and_retried_after_a_500,
    a_steady_history_projects_the_right_day,
    the_model_tier_follows_the_tightest_budget_and_the_override_works,
    admins_list_and_acknowledge_alerts,
    metrics_parse_as_prometheus_text,
);
