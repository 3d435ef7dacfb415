//! The usage API (`GET /api/usage`) and the daily aggregates behind it, on SQLite and
//! PostgreSQL: its numbers are exactly what the fake Claude server reported.

use std::collections::HashMap;

use app::auth::UserRole;
use serde_json::{Value, json};
use crate::support::fake_claude::{FakeClaude, Script};
use crate::support::{Engine, TestApp, kind, test_settings};

struct World {
    app: TestApp,
    fake: FakeClaude,
    admin: reqwest::Client,
}

fn reply(input: u64, output: u64, cache_write: u64, cache_read: u64) -> Script {
    Script::Reply {
        text: "ok".into(),
        usage: json!({"input_tokens": input, "output_tokens": output,
                      "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}),
    }
}

/// Two analysts chat on two deals; one call fails with 500s, one is refused with 429.
async fn world(engine: Engine) -> (World, HashMap<&'static str, i64>) {
    let mut settings = test_settings();
    settings.chat.cooldown_seconds = 0;
    settings.claude.max_retries = 1;
    settings.claude.backoff_base_ms = 5;
    settings.claude.backoff_max_ms = 10;
    let fake = FakeClaude::start().await;
    let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
    let ana = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let bo = app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let mut ids = HashMap::new();
    for (name, who) in [("Harbor Point", &ana), ("Maple Grove", &bo)] {
        let (_, id) = app
            .post(who, "/api/deals/create", &[("name", name), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")])
            .await;
        ids.insert(name, id.as_i64().unwrap());
    }
    fake.script([
        reply(1000, 200, 0, 0),                           // ana, Harbor Point
        reply(500, 100, 4000, 0),                         // ana, Harbor Point, cache write
        Script::status(500), Script::status(503),         // ana, Maple Grove: two failed attempts
        reply(300, 50, 0, 2000),                          // bo, Maple Grove, cache read
        Script::status(429),                              // bo, Maple Grove: busy
    ]);
    let send = |client: &reqwest::Client, deal: &str| {
        let form = [("deal_id", ids[deal].to_string()), ("message", "What is the cap rate?".to_string())];
        let app = &app;
        let client = client.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post(&client, "/api/chat/send", &form).await.0
        }
    };
    assert_eq!(send(&ana, "Harbor Point").await, 200);
    assert_eq!(send(&ana, "Harbor Point").await, 200);
    assert_eq!(send(&ana, "Maple Grove").await, 502);
    assert_eq!(send(&bo, "Maple Grove").await, 200);
    assert_eq!(send(&bo, "Maple Grove").await, 429);
    let users: Vec<(i64, String)> = sqlx::query_as("SELECT id, email FROM users").fetch_all(&app.state.db.pool).await.unwrap();
    for (id, email) in users {
        ids.insert(if email == "ana@firm.com" { "ana" } else if email == "bo@firm.com" { "bo" } else { "root" }, id);
    }
    (World { app, fake, admin }, ids)
}

async fn get(w: &World, client: &reqwest::Client, query: &str) -> (u16, String) {
    let response = client.get(format!("{}/api/usage?{query}", w.app.base)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn report(w: &World, query: &str) -> Value {
    let (status, body) = get(w, &w.admin, query).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("no row {key} in {report}"))
}

/// Sonnet 5.5 list prices in micro-dollars per token: input 2, output 10, 5-minute cache
/// write 2.5, read 0.1; one rounding per call.
fn cost(input: i64, output: i64, write: i64, read: i64) -> i64 {
    (input * 20 + output * 100 + write * 25 + read + 5) / 10
}

async fn totals_equal_what_claude_reported_per_user_deal_and_day(engine: Engine) {
    let (w, ids) = world(engine).await;
    assert_eq!(w.fake.requests().len(), 6);
    let by_user = report(&w, "group_by=user").await;
    let ana = row(&by_user, &ids["ana"].to_string());
    assert_eq!(ana["label"], "ana@firm.com");
    assert_eq!((ana["calls"].as_i64(), ana["failed_calls"].as_i64()), (Some(4), Some(2)));
    assert_eq!((ana["input_tokens"].as_i64(), ana["output_tokens"].as_i64()), (Some(1500), Some(300)));
    assert_eq!((ana["cache_creation_tokens"].as_i64(), ana["cache_read_tokens"].as_i64()), (Some(4000), Some(0)));
    assert_eq!(ana["cost_microusd"].as_i64(), Some(cost(1000, 200, 0, 0) + cost(500, 100, 4000, 0)));
    let bo = row(&by_user, &ids["bo"].to_string());
    assert_eq!((bo["calls"].as_i64(), bo["failed_calls"].as_i64()), (Some(2), Some(1)), "the 429 counts as a failed call");
    assert_eq!(bo["cache_read_tokens"], 2000);
    assert_eq!(bo["cost_microusd"].as_i64(), Some(cost(300, 50, 0, 2000)));

    let by_deal = report(&w, "group_by=deal").await;
    let harbor = row(&by_deal, &ids["Harbor Point"].to_string());
    assert_eq!((harbor["label"].as_str(), harbor["calls"].as_i64(), harbor["input_tokens"].as_i64()), (Some("Harbor Point"), Some(2), Some(1500)));
    let maple = row(&by_deal, &ids["Maple Grove"].to_string());
    assert_eq!((maple["calls"].as_i64(), maple["failed_calls"].as_i64(), maple["input_tokens"].as_i64()), (Some(4), Some(3), Some(300)));

    let by_day = report(&w, "group_by=day").await;
    let rows = by_day["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "all of it happened today");
    assert_eq!(rows[0]["calls"], 6);
    assert_eq!(by_day["totals"]["calls"], 6);
    assert_eq!(by_day["totals"]["failed_calls"], 3);
    assert_eq!(by_day["totals"]["cost_microusd"].as_i64(), Some(cost(1800, 350, 4000, 2000)));
    assert_eq!(by_day["totals"], by_user["totals"], "every grouping adds up to the same totals");
    assert_eq!(by_day["totals"], by_deal["totals"]);
    assert_eq!(report(&w, "group_by=operation").await["rows"][0]["key"], "chat");
    assert_eq!(report(&w, "group_by=model").await["rows"][0]["key"], "claude-sonnet-5-5");
}

async fn csv_is_valid_and_matches_json(engine: Engine) {
    let (w, _) = world(engine).await;
    for group in ["user", "deal", "day", "model", "operation"] {
        let json = report(&w, &format!("group_by={group}")).await;
        let response = w.admin.get(format!("{}/api/usage?group_by={group}&format=csv", w.app.base)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(response.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
        let csv = response.text().await.unwrap();
        let records = parse_csv(&csv);
        assert_eq!(records[0][..3], ["group", "key", "label"]);
        let rows = json["rows"].as_array().unwrap();
        assert_eq!(records.len(), rows.len() + 1);
        for (record, row) in records[1..].iter().zip(rows) {
            assert_eq!(record[0], group);
            assert_eq!(record[1], row["key"].as_str().unwrap());
            assert_eq!(record[2], row["label"].as_str().unwrap());
            for (i, field) in ["calls", "failed_calls", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens"].iter().enumerate() {
                assert_eq!(record[3 + i], row[field].as_i64().unwrap().to_string(), "{field}");
            }
            let usd: f64 = record[9].parse().unwrap();
            assert!((usd * 1e6 - row["cost_microusd"].as_f64().unwrap()).abs() < 0.5);
        }
    }
}

/// A strict parser for the CSV the API writes: every field quoted, `""` for a quote.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    text.split_terminator("\r\n")
        .map(|line| {
            let mut fields = Vec::new();
            let mut chars = line.chars().peekable();
            loop {
                assert_eq!(chars.next(), Some('"'), "every field is quoted: {line}");
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => field.push(c),
                        None => panic!("unterminated field in {line}"),
                    }
                }
                fields.push(field);
                match chars.next() {
                    Some(',') => continue,
                    None => break,
                    Some(c) => panic!("unexpected {c:?} after a field in {line}"),
                }
            }
            fields
        })
        .collect()
}

async fn only_admins_read_usage(engine: Engine) {
    let (w, _) = world(engine).await;
    let analyst = w.app.signed_in("carla@firm.com", UserRole::Analyst).await;
    for page in ["/admin/tokens", "/admin/users"] {
        let response = analyst.get(format!("{}{page}", w.app.base)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{page}");
        let admin_page = w.admin.get(format!("{}{page}", w.app.base)).send().await.unwrap();
        assert_eq!(admin_page.status(), 200, "{page}");
    }
    let (status, body) = w.app.post(&analyst, "/api/admin/usage/dashboard", &[("range", "30"), ("from", ""), ("to", ""), ("user", ""), ("deal", "")]).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"));
    let (status, body) = w.app.post(&w.admin, "/api/admin/usage/dashboard", &[("range", "7"), ("from", ""), ("to", ""), ("user", ""), ("deal", "")]).await;
    assert_eq!(status, 200);
    assert_eq!(body["by_user"]["totals"], report(&w, &format!("group_by=user&from={}&to={}", body["from"].as_str().unwrap(), body["to"].as_str().unwrap())).await["totals"],
        "the page shows exactly the API's numbers");
    for query in ["group_by=user", "group_by=day&format=csv"] {
        let (status, body) = get(&w, &analyst, query).await;
        assert_eq!(status, 403);
        assert_eq!(kind(&serde_json::from_str(&body).unwrap()), "forbidden");
        let (status, body) = get(&w, &w.app.client(), query).await;
        assert_eq!(status, 401);
        assert_eq!(kind(&serde_json::from_str(&body).unwrap()), "unauthorized");
    }
}

async fn bad_queries_are_invalid(engine: Engine) {
    let (w, _) = world(engine).await;
    for query in ["group_by=planet", "from=yesterday", "from=2026-11-20&to=2026-11-01", "format=xml", "from=2000-01-01&to=2026-01-01"] {
        let (status, body) = get(&w, &w.admin, query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(kind(&serde_json::from_str(&body).unwrap()), "invalid", "{query}");
    }
    let old = report(&w, "group_by=day&from=2020-01-01&to=2020-01-31").await;
    assert_eq!(old["rows"].as_array().unwrap().len(), 0);
    assert_eq!(old["totals"]["calls"], 0);
}

async fn aggregates_always_agree_with_raw_records(engine: Engine) {
    let (w, _) = world(engine).await;
    let tz = w.app.state.settings.time.tz();
    let raw: Vec<(i64, Option<i64>, String, String, String, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT user_id, deal_id, model, operation, outcome, input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, cost_microusd, default_price, created_at FROM usage_records",
    )
    .fetch_all(&w.app.state.db.pool)
    .await
    .unwrap();
    let mut expected: HashMap<(String, i64, i64, String, String), [i64; 8]> = HashMap::new();
    for (user, deal, model, operation, outcome, input, output, write, read, cost, default_price, at) in raw {
        let key = (app::time::local_day(at, tz), user, deal.unwrap_or(0), model, operation);
        let sums = expected.entry(key).or_default();
        for (slot, value) in sums.iter_mut().zip([1, i64::from(outcome != "ok"), input, output, write, read, cost, default_price]) {
            *slot += value;
        }
    }
    let aggregated: Vec<(String, i64, i64, String, String, i64, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, user_id, deal_id, model, operation, calls, failed_calls, input_tokens, output_tokens, \
         cache_creation_tokens, cache_read_tokens, cost_microusd, default_priced_calls FROM usage_daily",
    )
    .fetch_all(&w.app.state.db.pool)
    .await
    .unwrap();
    let actual: HashMap<_, _> = aggregated
        .into_iter()
        .map(|(day, user, deal, model, op, c, f, i, o, cw, cr, cost, d)| ((day, user, deal, model, op), [c, f, i, o, cw, cr, cost, d]))
        .collect();
    assert!(!actual.is_empty());
    assert_eq!(actual, expected);

    // The per-dimension rollups the unfiltered dashboard reads, and the running counters
    // budgets read, agree too; and the check notices when they do not.
    let (db, tz) = (&w.app.state.db, w.app.state.settings.time.tz());
    let rows = app::usage::store::check(db, tz).await.expect("rollups and counters agree");
    assert!(rows >= 4, "one rollup row per dimension at least");
    // The migration that gave the rollups their user and deal scopes built those rows
    // from the fine aggregates: its statements rebuild exactly what the ledger writes.
    let dir = if w.app.state.db.engine == app::db::Engine::Sqlite { "sqlite" } else { "postgres" };
    let migration = std::fs::read_to_string(format!("{}/../migrations/{dir}/20261205000017_usage_rollup_scopes.sql", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let backfill: Vec<&str> = migration.split(';').filter(|s| s.contains("FROM usage_daily")).collect();
    assert_eq!(backfill.len(), 6, "a user's deals, models and operations; a deal's users, models and operations");
    sqlx::query("DELETE FROM usage_rollup WHERE scope <> 'firm'").execute(&db.pool).await.unwrap();
    assert!(app::usage::store::check(db, tz).await.unwrap_err().contains("rollup"));
    for statement in backfill {
        sqlx::query(statement).execute(&db.pool).await.unwrap();
    }
    app::usage::store::check(db, tz).await.expect("the backfill rebuilt the scoped rollups");

    for (corruption, found) in [
        ("UPDATE usage_rollup SET calls = calls + 1 WHERE dimension = 'model'", "rollup"),
        ("UPDATE usage_rollup SET calls = calls - 1 WHERE dimension = 'model'", ""),
        ("UPDATE usage_counters SET tokens = tokens + 1 WHERE scope = 'deal'", "counter"),
        ("UPDATE usage_counters SET tokens = tokens - 1 WHERE scope = 'deal'", ""),
        ("DELETE FROM usage_counters WHERE scope = 'user'", "counter"),
    ] {
        sqlx::query(corruption).execute(&db.pool).await.unwrap();
        if found.is_empty() {
            assert!(app::usage::store::check(db, tz).await.is_ok(), "repaired");
        } else {
            let err = app::usage::store::check(db, tz).await.unwrap_err();
            assert!(err.contains(found), "{err}");
        }
    }

}

/// Every report narrowed to a user, a deal or both, in every grouping, equals the raw
/// records' sums (the narrowed reports read the user's and deal's own rollups).
async fn narrowed_reports_equal_the_raw_records(engine: Engine) {
    let (w, ids) = world(engine).await;
    let tz = w.app.state.settings.time.tz();
    type Raw = (i64, Option<i64>, String, String, String, i64, i64, i64);
    let raw: Vec<Raw> = sqlx::query_as("SELECT user_id, deal_id, model, operation, outcome, input_tokens, cost_microusd, created_at FROM usage_records")
        .fetch_all(&w.app.state.db.pool)
        .await
        .unwrap();
    let filters = [
        (Some(ids["ana"]), None),
        (Some(ids["bo"]), None),
        (None, Some(ids["Harbor Point"])),
        (None, Some(ids["Maple Grove"])),
        (Some(ids["ana"]), Some(ids["Maple Grove"])),
        (Some(ids["root"]), None),
    ];
    for (user, deal) in filters {
        for group in ["user", "deal", "day", "model", "operation"] {
            let mut expected: HashMap<String, [i64; 4]> = HashMap::new();
            for (u, d, model, operation, outcome, input, cost, at) in &raw {
                if user.is_some_and(|id| id != *u) || deal.is_some_and(|id| Some(id) != *d) {
                    continue;
                }
                let key = match group {
                    "user" => u.to_string(),
                    "deal" => d.unwrap_or(0).to_string(),
                    "day" => app::time::local_day(*at, tz),
                    "model" => model.clone(),
                    _ => operation.clone(),
                };
                let sums = expected.entry(key).or_default();
                for (slot, value) in sums.iter_mut().zip([1, i64::from(outcome != "ok"), *input, *cost]) {
                    *slot += value;
                }
            }
            let narrowed: String = [user.map(|id| format!("&user={id}")), deal.map(|id| format!("&deal={id}"))].into_iter().flatten().collect();
            let got = report(&w, &format!("group_by={group}{narrowed}")).await;
            let actual: HashMap<String, [i64; 4]> = got["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["key"].as_str().unwrap().to_string(), ["calls", "failed_calls", "input_tokens", "cost_microusd"].map(|c| r[c].as_i64().unwrap())))
                .collect();
            assert_eq!(actual, expected, "group_by={group}, user {user:?}, deal {deal:?}");
        }
    }
    let ana = report(&w, &format!("group_by=user&user={}", ids["ana"])).await;
    assert_eq!(ana["rows"][0]["label"], "ana@firm.com", "the one group of a user's own report is named");
    let maple = report(&w, &format!("group_by=deal&deal={}", ids["Maple Grove"])).await;
    assert_eq!(maple["rows"][0]["label"], "Maple Grove");
}

async fn a_user_or_deal_has_its_own_breakdown_and_budget_trouble_is_flagged(engine: Engine) {
    let (w, ids) = world(engine).await;
    let ana_only = report(&w, &format!("group_by=day&user={}", ids["ana"])).await;
    assert_eq!(ana_only["totals"]["calls"], 4);
    assert_eq!(ana_only["totals"]["input_tokens"], 1500);
    let maple_only = report(&w, &format!("group_by=user&deal={}", ids["Maple Grove"])).await;
    assert_eq!(maple_only["rows"].as_array().unwrap().len(), 2, "both analysts touched Maple Grove");
    assert_eq!(maple_only["totals"]["failed_calls"], 3);

    // Harbor Point has used 5,800 tokens: over a 5,000-token budget, blocked.
    sqlx::query("UPDATE deals SET token_budget = 5000 WHERE id = $1").bind(ids["Harbor Point"]).execute(&w.app.state.db.pool).await.unwrap();
    // Ana has used 5,800 today: at a 6,500-token daily budget she is in warning (> 80%).
    sqlx::query("UPDATE users SET daily_token_budget = 6500 WHERE id = $1").bind(ids["ana"]).execute(&w.app.state.db.pool).await.unwrap();
    let deal = ids["Maple Grove"].to_string();
    let (status, d) = w.app.post(&w.admin, "/api/admin/usage/dashboard", &[("range", "today"), ("from", ""), ("to", ""), ("user", ""), ("deal", &deal)]).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["focus"], "Maple Grove");
    assert_eq!(d["by_day"]["totals"]["calls"], 4);
    let (status, flags) = w.app.post(&w.admin, "/api/admin/budget/flags", &[]).await;
    assert_eq!(status, 200, "{flags}");
    assert_eq!(flags["deals"], json!([[ids["Harbor Point"].to_string(), "blocked"]]));
    assert_eq!(flags["users"], json!([[ids["ana"].to_string(), "warning"]]));
    let (status, body) = get(&w, &w.admin, "group_by=day&user=abc").await;
    assert_eq!((status, kind(&serde_json::from_str(&body).unwrap())), (400, "invalid"));
}

/// `/admin/tokens` as an admin sees it, rendered in full.
async fn tokens_page(app: &TestApp, admin: &reqwest::Client) -> String {
    let response = admin.get(format!("{}/admin/tokens", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("</html>"));
    html
}

/// The "Remaining firm budget" card's markup.
fn firm_card(html: &str) -> &str {
    let at = html.find(r#"data-testid="firm-budget""#).unwrap_or_else(|| panic!("no firm budget card: {html}"));
    &html[at..at + html[at..].find("</div>").unwrap()]
}

async fn the_dashboard_says_what_is_left_of_the_firms_monthly_cap(engine: Engine) {
    use crate::support::world::{World, settings};
    let w = World::start(engine, settings()).await;
    let (_, ana) = w.analyst("ana@firm.com").await;
    let month = app::usage::month_of(&app::time::utc_date(app::time::now_millis())).to_string();

    // No cap: said so, with the month's spend.
    w.seed(ana, Some(w.deal), 0, 1_000, 4_000_000).await;
    let (status, flags) = w.app.post(&w.admin, "/api/admin/budget/flags", &[]).await;
    assert_eq!(status, 200, "{flags}");
    assert_eq!(flags["firm_month"], json!({"month": month, "spent_microusd": 4_000_000, "cap_microusd": null}));
    let html = tokens_page(&w.app, &w.admin).await;
    let card = firm_card(&html);
    assert!(card.contains("Remaining firm budget") && card.contains("No firm cap set"), "{card}");
    assert!(card.contains(&format!("$4.00 spent in {month}")), "{card}");
    assert!(!card.contains("<progress"), "no bar without a cap: {card}");
    assert!(html.contains(r#"data-testid="projection""#), "the month's projection stays: {html}");

    // A $10 monthly cap (as set, whatever ratio enforces it): what is left of it, with a named bar.
    w.set_limits(&[("firm_monthly_usd", "10"), ("firm_enforce_percent", "70")]).await;
    let (_, flags) = w.app.post(&w.admin, "/api/admin/budget/flags", &[]).await;
    assert_eq!(flags["firm_month"]["cap_microusd"], 10_000_000);
    let html = tokens_page(&w.app, &w.admin).await;
    let card = firm_card(&html);
    assert!(card.contains("$6.00 of $10.00 left"), "{card}");
    assert!(card.contains(r#"<progress aria-label="Firm spend this month against its cap" max="1000" value="400">"#), "{card}");

    // Spent past it: over by how much. Last month's spend does not count.
    w.seed(ana, Some(w.deal), 40, 1_000, 50_000_000).await;
    w.seed(ana, Some(w.deal), 0, 1_000, 8_500_000).await;
    let html = tokens_page(&w.app, &w.admin).await;
    let card = firm_card(&html);
    assert!(card.contains("Over by $2.50"), "{card}");
    assert!(card.contains(&format!("$12.50 spent in {month} against a cap of $10.00")), "{card}");
}

/// Every bar on the pages that show budgets is named for assistive technology and has a
/// valid scale; a budget of nothing is drawn used up, not empty.
async fn every_budget_bar_is_named_and_a_zero_budget_is_full(engine: Engine) {
    use crate::support::world::{World, settings, user_id};
    let w = World::start(engine, settings()).await;
    let ana = w.app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = user_id(&w.app, "ana@firm.com").await.to_string();
    w.admin_ok("/api/admin/users/monthly", &[("user_id", &id), ("monthly_usd", "0")]).await;
    w.set_limits(&[("firm_monthly_usd", "10")]).await;
    let mut bars = 0;
    for (client, path) in [(&ana, "/my-usage".to_string()), (&w.admin, "/admin/tokens".to_string()), (&ana, format!("/deals/{}", w.deal))] {
        let response = client.get(format!("{}{path}", w.app.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let html = response.text().await.unwrap();
        for bar in html.split("<progress").skip(1) {
            let tag = &bar[..bar.find('>').unwrap()];
            assert!(tag.contains(r#"aria-label=""#) && !tag.contains(r#"aria-label="""#), "{path}: an unnamed bar: {tag}");
            let max: u64 = tag.split(r#"max=""#).nth(1).and_then(|m| m[..m.find('"')?].parse().ok()).unwrap_or(0);
            assert!(max > 0, "{path}: a bar with no scale: {tag}");
            bars += 1;
        }
        // A bar drawn some other way needs its role, value and name spelled out.
        for role in [r#"role="progressbar""#, r#"role="meter""#] {
            for (at, _) in html.match_indices(role) {
                let tag = &html[html[..at].rfind('<').unwrap()..at + html[at..].find('>').unwrap()];
                assert!(tag.contains("aria-valuenow") && (tag.contains("aria-label") || tag.contains("aria-labelledby")), "{path}: {tag}");
            }
        }
        if path == "/my-usage" {
            assert!(html.contains(r#"<progress aria-label="Your budget this month" max="1" value="1">"#), "a $0 budget is used up: {html}");
        }
    }
    assert!(bars >= 4, "the pages drew their bars ({bars})");
}

on_both_engines!(
    the_dashboard_says_what_is_left_of_the_firms_monthly_cap,
    every_budget_bar_is_named_and_a_zero_budget_is_full,
    a_user_or_deal_has_its_own_breakdown_and_budget_trouble_is_flagged,
    totals_equal_what_claude_reported_per_user_deal_and_day,
    csv_is_valid_and_matches_json,
    only_admins_read_usage,
    bad_queries_are_invalid,
    aggregates_always_agree_with_raw_records,
    narrowed_reports_equal_the_raw_records,
);
