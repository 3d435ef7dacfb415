//! Memo generation and sales-comp extraction through the same tracked, budgeted client,
//! on SQLite and PostgreSQL.


use app::auth::UserRole;
use app::settings::Settings;
use serde_json::{Value, json};
use crate::support::fake_claude::{FakeClaude, Script};
use crate::support::{Engine, TestApp, kind, test_settings};

const BROKER_TEXT: &str = "Recent sales in the submarket:\n\n\
    1. Bayview Commons, 40 Bay St, Tampa, FL — sold March 2025 for $24,500,000; 98,000 SF; 6.1% cap rate. Buyer: Crane Capital; Seller: Bay LLC.\n\n\
    2. Palm Court, 12 Palm Ave, Tampa, FL — sold 2024-11-15 for $18.2M, 70,000 square feet, 6.4% cap. Buyer: Harbor REIT.\n\n\
    3. Gulf Tower, 9 Gulf Blvd, Clearwater, FL — sold in January 2025 for $31,000,000, 100,000 SF.";

fn settings() -> Settings {
    let mut s = test_settings();
    s.chat.cooldown_seconds = 0;
    s
}

struct World {
    app: TestApp,
    fake: FakeClaude,
    client: reqwest::Client,
    deal_id: String,
}

impl World {
    async fn start(engine: Engine) -> World {
        let fake = FakeClaude::start().await;
        let app = TestApp::spawn_with(engine, settings(), fake.endpoint()).await;
        let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
        let (_, id) = app
            .post(&client, "/api/deals/create", &[("name", "Harbor Point"), ("address", "Tampa, FL"), ("property_type", "Office"), ("asking_price", "25M"), ("notes", "")])
            .await;
        World { app, fake, client, deal_id: id.as_i64().unwrap().to_string() }
    }

    async fn extract(&self, text: &str) -> (u16, Value) {
        self.app.post(&self.client, "/api/comps/extract", &[("deal_id", &self.deal_id), ("text", text)]).await
    }

    async fn generate(&self) -> (u16, Value) {
        self.app.post(&self.client, "/api/reports/generate", &[("deal_id", &self.deal_id)]).await
    }

    async fn list(&self) -> Value {
        let (status, list) = self.app.post(&self.client, "/api/comps/list", &[("deal_id", &self.deal_id)]).await;
        assert_eq!(status, 200, "{list}");
        list
    }

    async fn csv(&self) -> String {
        let response = self.client.get(format!("{}/api/comps/csv?deal_id={}", self.app.base, self.deal_id)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }

    /// Posts the sale form to `path` (`/api/comps/add`, or `/api/comps/update` with an
    /// `id` in `head`): a valid sale with `changes`.
    async fn save(&self, path: &str, head: &[(&str, &str)], changes: &[(&str, &str)]) -> (u16, Value) {
        self.save_as(&self.client, path, head, changes).await
    }

    async fn save_as(&self, client: &reqwest::Client, path: &str, head: &[(&str, &str)], changes: &[(&str, &str)]) -> (u16, Value) {
        let mut form: Vec<(&str, &str)> = head.to_vec();
        if !head.iter().any(|(k, _)| *k == "deal_id") {
            form.push(("deal_id", &self.deal_id));
        }
        for (key, value) in [
            ("property_name", "Harbor Flats"), ("address", "7 Dock St, Tampa, FL"), ("sale_date", "2025-03"), ("sale_price", "$12,000,000"),
            ("building_sf", "48,000"), ("price_per_sf", ""), ("cap_rate", "5.9"), ("buyer", "Dock Partners"), ("seller", "Harbor LLC"), ("notes", "typed in"),
        ] {
            form.push((key, changes.iter().find(|(k, _)| *k == key).map_or(value, |(_, v)| *v)));
        }
        self.app.post(client, path, &form).await
    }

    async fn operations(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT operation, outcome FROM usage_records ORDER BY id").fetch_all(&self.app.state.db.pool).await.unwrap()
    }
}

fn tool(sales: Value) -> Script {
    Script::Tool { input: json!({"sales": sales}), usage: json!({"input_tokens": 900, "output_tokens": 300}) }
}

async fn extraction_sends_the_forced_tool_and_stores_validated_comps(engine: Engine) {
    let w = World::start(engine).await;
    w.fake.script([tool(json!([
        {"property_name": "Bayview Commons", "address": "40 Bay St, Tampa, FL", "sale_date": "2025-03", "sale_price": 24500000,
         "building_size_sf": 98000, "cap_rate": 6.1, "buyer": "Crane Capital", "source_excerpt": "1. Bayview Commons ..."},
        {"property_name": "Palm Court", "sale_price": "$18,200,000", "building_size_sf": "70,000", "price_per_sf": 260,
         "cap_rate": "6.4%", "source_excerpt": "2. Palm Court ..."}
    ]))]);
    let (status, body) = w.extract(BROKER_TEXT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["added"], 2);

    let request = &w.fake.requests()[0];
    assert!(request.rejected.is_none(), "{:?}", request.rejected);
    let tools = request.body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["name"], app::comps::TOOL_NAME);
    assert_eq!(tools[0]["input_schema"], app::comps::tool_schema());
    assert_eq!(request.body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(request.body["tools"][0]["name"], app::comps::TOOL_NAME);
    assert_eq!(request.body["messages"][0]["content"], BROKER_TEXT);

    let (_, comps) = w.app.post(&w.client, "/api/comps/list", &[("deal_id", &w.deal_id)]).await;
    let comps = comps.as_array().unwrap();
    assert_eq!(comps.len(), 2);
    let bayview = comps.iter().find(|c| c["property_name"] == "Bayview Commons").unwrap();
    assert_eq!(bayview["sale_date"], "2025-03", "a month stays a month");
    assert_eq!(bayview["price_per_sf"], 250.0, "computed where missing: 24.5M / 98,000 SF");
    assert_eq!(bayview["source_excerpt"], "1. Bayview Commons ...");
    let palm = comps.iter().find(|c| c["property_name"] == "Palm Court").unwrap();
    assert_eq!(palm["sale_price"], 18_200_000);
    assert_eq!(palm["price_per_sf"], 260.0, "given values are kept");
    assert_eq!(w.operations().await, [("extraction".to_string(), "ok".to_string())]);

    // The same rows as CSV, in the same order, for signed-in users only.
    let csv = w.client.get(format!("{}/api/comps/csv?deal_id={}", w.app.base, w.deal_id)).send().await.unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with(&format!("\"{}\"", comps[0]["property_name"].as_str().unwrap())), "{text}");
    let anonymous = reqwest::Client::new().get(format!("{}/api/comps/csv?deal_id={}", w.app.base, w.deal_id)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let missing = w.client.get(format!("{}/api/comps/csv?deal_id=9999", w.app.base)).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

async fn unusable_tool_output_stores_nothing_but_is_recorded(engine: Engine) {
    let w = World::start(engine).await;
    w.fake.script([
        tool(json!([{"property_name": "Fine", "sale_price": 1000000, "source_excerpt": "x"},
                    {"property_name": "Odd", "cap_rate": 45, "source_excerpt": "y"}])),
        Script::ok("I found three sales: ...", 500, 50),
        Script::Tool { input: json!({"comps": "not a list"}), usage: json!({"input_tokens": 10, "output_tokens": 5}) },
    ]);
    for expected in ["sale 2: the cap rate is not plausible", "did not return the sales as data", "no list of sales"] {
        let (status, body) = w.extract(BROKER_TEXT).await;
        assert_eq!((status, kind(&body)), (502, "upstream_error"));
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(expected) && message.contains("Nothing was stored"), "{message}");
    }
    assert_eq!(w.app.count("comps").await, 0, "no partial garbage");
    assert_eq!(w.operations().await.len(), 3, "each unusable answer was still recorded");
    assert!(w.operations().await.iter().all(|(op, outcome)| op == "extraction" && outcome == "ok"));
}

async fn bad_extraction_input_is_refused_before_any_call(engine: Engine) {
    let w = World::start(engine).await;
    let huge = "x".repeat(app::comps::MAX_SOURCE_CHARS + 1);
    let (status, body) = w.extract(&huge).await;
    assert_eq!((status, kind(&body)), (400, "too_long"));
    let (status, body) = w.extract("  ").await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    let (status, body) = w.app.post(&w.client, "/api/comps/extract", &[("deal_id", "999"), ("text", "sale")]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (status, body) = w.app.post(&w.app.client(), "/api/comps/extract", &[("deal_id", &w.deal_id), ("text", "sale")]).await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
    assert!(w.fake.requests().is_empty());
    assert_eq!(w.app.count("usage_records").await, 0);
}

async fn comps_can_be_edited_and_deleted(engine: Engine) {
    let w = World::start(engine).await;
    w.fake.script([tool(json!([{"property_name": "Bayview", "sale_price": 24500000, "building_size_sf": 98000, "source_excerpt": "x"}]))]);
    let (_, body) = w.extract(BROKER_TEXT).await;
    let id = body["comps"][0]["id"].as_i64().unwrap().to_string();
    let edit = |cap: &str, price: &str| {
        let fields = [("deal_id", w.deal_id.as_str()), ("id", id.as_str()), ("property_name", "Bayview Commons"), ("address", "40 Bay St"), ("sale_date", "2025-03-14"),
            ("sale_price", price), ("building_sf", "98,000"), ("price_per_sf", ""), ("cap_rate", cap),
            ("buyer", "Crane"), ("seller", ""), ("notes", "")];
        fields.map(|(k, v)| (k, v.to_string()))
    };
    let post = |form: [(&'static str, String); 12]| {
        let app = &w.app;
        let client = &w.client;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post(client, "/api/comps/update", &form).await
        }
    };
    let (status, body) = post(edit("45", "24.5M")).await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    let (_, list) = w.app.post(&w.client, "/api/comps/list", &[("deal_id", &w.deal_id)]).await;
    assert_eq!(list[0]["property_name"], "Bayview", "a refused edit changes nothing");
    let (status, _) = post(edit("6.25", "$25,480,000")).await;
    assert_eq!(status, 200);
    let (_, list) = w.app.post(&w.client, "/api/comps/list", &[("deal_id", &w.deal_id)]).await;
    assert_eq!(list[0]["property_name"], "Bayview Commons");
    assert_eq!(list[0]["cap_rate"], 6.25);
    assert_eq!(list[0]["price_per_sf"], 260.0);
    assert_eq!(list[0]["source_excerpt"], "x", "the source stays");

    let (status, _) = w.app.post(&w.client, "/api/comps/delete", &[("deal_id", &w.deal_id), ("id", &id)]).await;
    assert_eq!(status, 200);
    let (status, body) = w.app.post(&w.client, "/api/comps/delete", &[("deal_id", &w.deal_id), ("id", &id)]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    assert_eq!(w.list().await, json!([]));
    assert_eq!(w.app.count("comps").await, 1, "a deleted comp is hidden, kept for an undo");
    let (status, body) = post(edit("6.25", "$25,480,000")).await;
    assert_eq!((status, kind(&body)), (404, "not_found"), "a deleted comp cannot be edited");
}

async fn a_deleted_comp_comes_back_with_its_id_and_fields_on_undo(engine: Engine) {
    let w = World::start(engine).await;
    w.fake.script([
        tool(json!([
            {"property_name": "Bayview Commons", "sale_price": 24500000, "building_size_sf": 98000, "sale_date": "2025-03", "source_excerpt": "1. Bayview"},
            {"property_name": "Palm Court", "address": "12 Palm Ave", "sale_price": 18200000, "cap_rate": 6.4, "sale_date": "2024-11-15",
             "buyer": "Harbor REIT", "notes": "fully leased", "source_excerpt": "2. Palm Court"},
            {"property_name": "Gulf Tower", "sale_price": 31000000, "source_excerpt": "3. Gulf Tower"}
        ])),
        Script::ok("## Summary\n\nA memo.", 2000, 800),
    ]);
    let (status, body) = w.extract(BROKER_TEXT).await;
    assert_eq!(status, 200, "{body}");
    let before = w.list().await;
    let ids: Vec<String> = before.as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap().to_string()).collect();
    let csv_before = w.csv().await;
    let palm = ids[1].as_str();

    let (status, _) = w.app.post(&w.client, "/api/comps/delete", &[("deal_id", &w.deal_id), ("id", palm)]).await;
    assert_eq!(status, 200);
    let names = |list: &Value| list.as_array().unwrap().iter().map(|c| c["property_name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&w.list().await), ["Bayview Commons", "Gulf Tower"]);
    let csv = w.csv().await;
    assert_eq!(csv.trim_end().split("\r\n").count(), 3, "{csv}");
    assert!(!csv.contains("Palm Court"), "{csv}");
    // The memo is drafted from the comps that are not deleted.
    let (status, memo) = w.generate().await;
    assert_eq!(status, 200, "{memo}");
    let system = w.fake.requests()[1].body["system"].as_str().unwrap().to_string();
    assert!(system.contains("Bayview Commons") && !system.contains("Palm Court"), "{system}");

    // Restoring anything but that deleted comp of that deal is refused and changes nothing.
    let (_, other) = w.app
        .post(&w.client, "/api/deals/create", &[("name", "Maple Grove"), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")])
        .await;
    let other = other.as_i64().unwrap().to_string();
    for (deal, id) in [(w.deal_id.as_str(), ids[0].as_str()), (other.as_str(), palm), (w.deal_id.as_str(), "999999"), ("999999", palm)] {
        let (status, body) = w.app.post(&w.client, "/api/comps/restore", &[("deal_id", deal), ("id", id)]).await;
        assert_eq!((status, kind(&body)), (404, "not_found"), "deal {deal}, comp {id}");
    }
    let (status, body) = w.app.post(&w.app.client(), "/api/comps/restore", &[("deal_id", &w.deal_id), ("id", palm)]).await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
    let (status, body) = w.app.post(&w.client, "/api/comps/restore", &[("deal_id", &w.deal_id), ("id", "x")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(names(&w.list().await), ["Bayview Commons", "Gulf Tower"], "refused restores change nothing");

    // Undo: the same sale, id and fields, back in its place.
    let (status, body) = w.app.post(&w.client, "/api/comps/restore", &[("deal_id", &w.deal_id), ("id", palm)]).await;
    assert_eq!((status, &body), (200, &json!(palm.parse::<i64>().unwrap())));
    assert_eq!(w.list().await, before);
    assert_eq!(w.csv().await, csv_before);
    let (status, body) = w.app.post(&w.client, "/api/comps/restore", &[("deal_id", &w.deal_id), ("id", palm)]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"), "a comp that is not deleted cannot be restored");
    assert_eq!(w.list().await, before);
}

async fn sales_added_by_hand_are_validated_like_edits(engine: Engine) {
    let w = World::start(engine).await;
    w.fake.script([tool(json!([{"property_name": "Bayview", "sale_price": 24500000, "source_excerpt": "x"}]))]);
    w.extract(BROKER_TEXT).await;
    let before = w.list().await;

    // Refused: nothing stored, and the message says why.
    for (changes, why) in [
        (vec![("cap_rate", "45")], "cap rate"),
        (vec![("sale_date", "2025-13")], "sale date"),
        (vec![("sale_date", "2999-01")], "more than a year in the future"),
        (vec![("sale_date", "March 2025")], "sale date"),
        (vec![("property_name", ""), ("address", "")], "neither a property name nor an address"),
        (vec![("sale_price", "lots")], "sale price"),
    ] {
        let (status, body) = w.save("/api/comps/add", &[], &changes).await;
        assert_eq!((status, kind(&body)), (400, "invalid"), "{changes:?}");
        assert!(body["message"].as_str().unwrap().contains(why), "{changes:?}: {body}");
    }
    assert_eq!(w.list().await, before, "refused sales leave the data unchanged");
    assert_eq!(w.app.count("comps").await, 1);
    let (status, body) = w.save_as(&w.app.client(), "/api/comps/add", &[], &[]).await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
    let (status, body) = w.save("/api/comps/add", &[("deal_id", "999999")], &[]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    assert_eq!(w.app.count("comps").await, 1);

    // Accepted: validated and normalised as an edit is, without a source excerpt, after
    // the extracted sale; no Claude call and no usage.
    let calls = w.fake.requests().len();
    let (status, id) = w.save("/api/comps/add", &[], &[("cap_rate", "0.059")]).await;
    assert_eq!(status, 200, "{id}");
    let list = w.list().await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0], before[0]);
    let added = &list[1];
    assert_eq!(added["id"], id);
    assert_eq!(added["property_name"], "Harbor Flats");
    assert_eq!(added["address"], "7 Dock St, Tampa, FL");
    assert_eq!(added["sale_date"], "2025-03");
    assert_eq!(added["sale_price"], 12_000_000);
    assert_eq!(added["building_sf"], 48_000);
    assert_eq!(added["price_per_sf"], 250.0, "computed: $12M / 48,000 SF");
    assert_eq!(added["cap_rate"], 5.9, "a fraction read as a percentage");
    assert_eq!((&added["buyer"], &added["seller"], &added["notes"]), (&json!("Dock Partners"), &json!("Harbor LLC"), &json!("typed in")));
    assert_eq!(added["source_excerpt"], "", "added by hand: no source text");
    assert_eq!(w.fake.requests().len(), calls, "no Claude call");
    assert_eq!(w.operations().await.len(), 1, "only the extraction is usage");
    let (status, _) = w.save("/api/comps/add", &[], &[("property_name", ""), ("sale_date", "2024-11-15"), ("cap_rate", "")]).await;
    assert_eq!(status, 200, "an address alone names a sale");
    assert_eq!(w.list().await[2]["sale_date"], "2024-11-15");
}

async fn month_only_dates_stay_months_through_extraction_and_edit(engine: Engine) {
    // The offline model reads the broker text's own dates.
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (_, deal) = app
        .post(&client, "/api/deals/create", &[("name", "Harbor Point"), ("address", ""), ("property_type", "Office"), ("asking_price", "25M"), ("notes", "")])
        .await;
    let w = World { app, fake: FakeClaude::start().await, client, deal_id: deal.as_i64().unwrap().to_string() };
    let (status, body) = w.extract(BROKER_TEXT).await;
    assert_eq!(status, 200, "{body}");
    let list = w.list().await;
    let dates: Vec<(&str, &str)> = list.as_array().unwrap().iter().map(|c| (c["property_name"].as_str().unwrap(), c["sale_date"].as_str().unwrap())).collect();
    assert_eq!(dates, [("Bayview Commons", "2025-03"), ("Palm Court", "2024-11-15"), ("Gulf Tower", "2025-01")]);
    let csv = w.csv().await;
    assert!(csv.contains("\"2025-03\"") && csv.contains("\"2024-11-15\"") && csv.contains("\"2025-01\""), "the CSV keeps the stored value: {csv}");

    // An edit keeps the precision typed, and refuses what is not a date.
    let id = list[0]["id"].to_string();
    for (typed, stored) in [("2024-7", "2024-07"), ("2024-07-04", "2024-07-04"), (" 2025-02 ", "2025-02")] {
        let (status, body) = w.save("/api/comps/update", &[("id", &id)], &[("sale_date", typed)]).await;
        assert_eq!(status, 200, "{typed}: {body}");
        assert_eq!(w.list().await[0]["sale_date"], stored, "{typed}");
    }
    for typed in ["2025-02-30", "2999-01", "Feb 2025", "2025"] {
        let (status, body) = w.save("/api/comps/update", &[("id", &id)], &[("sale_date", typed)]).await;
        assert_eq!((status, kind(&body)), (400, "invalid"), "{typed}");
        assert!(body["message"].as_str().unwrap().contains("sale date"), "{typed}: {body}");
        assert_eq!(w.list().await[0]["sale_date"], "2025-02", "{typed} changed nothing");
    }
}


async fn report_generation_records_operation_report_and_renders_safely(engine: Engine) {
    let w = World::start(engine).await;
    w.fake.script([
        tool(json!([{"property_name": "Bayview Commons", "sale_price": 24500000, "building_size_sf": 98000, "source_excerpt": "x"}])),
        Script::ok("## Summary\n\nBuy **Harbor Point**.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2))", 2000, 800),
    ]);
    w.extract(BROKER_TEXT).await;
    let (status, memo) = w.generate().await;
    assert_eq!(status, 200, "{memo}");
    let html = memo["html"].as_str().unwrap();
    assert!(html.contains("<h2>Summary</h2>") && html.contains("<strong>Harbor Point</strong>"), "{html}");
    assert!(!html.contains("<script>") && !html.contains("javascript:"), "{html}");
    assert_eq!(memo["version"], 1);
    assert_eq!(memo["author"], "ana@firm.com");
    assert_eq!(memo["model"], "claude-sonnet-5-5");
    assert_eq!((memo["input_tokens"].as_i64(), memo["output_tokens"].as_i64()), (Some(2000), Some(800)));
    assert_eq!(memo["cost_microusd"], 2000 * 2 + 800 * 10);

    let request = &w.fake.requests()[1].body;
    let system = request["system"].as_str().unwrap();
    assert!(system.contains("Deal: Harbor Point") && system.contains("Bayview Commons"), "the memo is drafted from the deal and its comps");
    assert_eq!(request["max_tokens"], 8192);
    assert!(request.get("tools").is_none());
    assert_eq!(w.operations().await.last().unwrap().0, "report");

    w.generate().await;
    let (_, versions) = w.app.post(&w.client, "/api/reports/list", &[("deal_id", &w.deal_id)]).await;
    let versions: Vec<i64> = versions.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [2, 1], "versions are kept, newest first");
}

async fn both_are_refused_without_a_call_when_the_deal_budget_is_used_up(engine: Engine) {
    let w = World::start(engine).await;
    let admin = w.app.signed_in("root@firm.com", UserRole::Admin).await;
    w.app.post(&admin, "/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "10000")]).await;
    w.fake.script([Script::ok("Spent.", 9_000, 1_000)]);
    let (status, _) = w.app.post(&w.client, "/api/chat/send", &[("deal_id", &w.deal_id), ("message", "Spend it")]).await;
    assert_eq!(status, 200);
    let calls = w.fake.requests().len();
    let (status, body) = w.extract(BROKER_TEXT).await;
    assert_eq!((status, kind(&body)), (403, "deal_budget_exhausted"));
    let (status, body) = w.generate().await;
    assert_eq!((status, kind(&body)), (403, "deal_budget_exhausted"));
    let (status, body) = w.app.post(&admin, "/api/reports/generate", &[("deal_id", &w.deal_id)]).await;
    assert_eq!((status, kind(&body)), (403, "deal_budget_exhausted"));
    assert_eq!(w.fake.requests().len(), calls, "no upstream call");
    assert_eq!(w.app.count("reports").await, 0);
}

async fn the_offline_model_extracts_comps_and_drafts_a_memo(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (_, deal) = app
        .post(&client, "/api/deals/create", &[("name", "Harbor Point"), ("address", ""), ("property_type", "Office"), ("asking_price", "25M"), ("notes", "")])
        .await;
    let deal = deal.as_i64().unwrap().to_string();
    let (status, body) = app.post(&client, "/api/comps/extract", &[("deal_id", &deal), ("text", BROKER_TEXT)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["added"], 3);
    let (status, memo) = app.post(&client, "/api/reports/generate", &[("deal_id", &deal)]).await;
    assert_eq!(status, 200, "{memo}");
    let html = memo["html"].as_str().unwrap();
    for section in app::reports::SECTIONS {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "{section} in {html}");
    }
    assert!(html.contains("Bayview Commons"), "the memo uses the comps");
    let ops: Vec<(String,)> = sqlx::query_as("SELECT operation FROM usage_records ORDER BY id").fetch_all(&app.state.db.pool).await.unwrap();
    assert_eq!(ops, [("extraction".to_string(),), ("report".to_string(),)]);
}

on_both_engines!(
    extraction_sends_the_forced_tool_and_stores_validated_comps,
    unusable_tool_output_stores_nothing_but_is_recorded,
    bad_extraction_input_is_refused_before_any_call,
    comps_can_be_edited_and_deleted,
    a_deleted_comp_comes_back_with_its_id_and_fields_on_undo,
    sales_added_by_hand_are_validated_like_edits,
    month_only_dates_stay_months_through_extraction_and_edit,
    report_generation_records_operation_report_and_renders_safely,
    both_are_refused_without_a_call_when_the_deal_budget_is_used_up,
    the_offline_model_extracts_comps_and_drafts_a_memo,
);
