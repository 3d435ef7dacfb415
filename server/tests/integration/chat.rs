//! The tracked Claude client and multi-turn chat, against the fake Claude server, on
//! SQLite and PostgreSQL.


use std::time::Duration;

use app::auth::UserRole;
use app::claude::client::user_token;
use app::settings::Settings;
use serde_json::{Value, json};
use crate::support::fake_claude::{FakeClaude, Script};
use crate::support::{Engine, TestApp, kind, test_settings};

/// Fast retries for tests: 10 ms backoff, 1 s timeout, retry-after capped at 1 s.
pub(crate) fn fast_settings() -> Settings {
    let mut s = test_settings();
    s.claude.backoff_base_ms = 10;
    s.claude.backoff_max_ms = 40;
    s.claude.timeout_seconds = 1;
    s.claude.retry_after_cap_seconds = 1;
    s.chat.cooldown_seconds = 0;
    s
}

pub(crate) struct Chat {
    pub(crate) app: TestApp,
    pub(crate) fake: FakeClaude,
    pub(crate) client: reqwest::Client,
    pub(crate) user_id: i64,
    pub(crate) deal_id: String,
}

impl Chat {
    pub(crate) async fn start(engine: Engine) -> Chat {
        Self::start_with(engine, fast_settings()).await
    }

    pub(crate) async fn start_with(engine: Engine, settings: Settings) -> Chat {
        let fake = FakeClaude::start().await;
        let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
        let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
        let user_id = app::auth::store::find_user_by_email(&app.state.db, "ana@firm.com").await.unwrap().unwrap().id;
        let (_, id) = app
            .post(&client, "/api/deals/create", &[
                ("name", "Harbor Point"),
                ("address", "200 Harbor Point Blvd"),
                ("property_type", "Office"),
                ("asking_price", "86.5M"),
                ("notes", "84% leased"),
            ])
            .await;
        Chat { app, fake, client, user_id, deal_id: id.as_i64().unwrap().to_string() }
    }

    pub(crate) async fn send(&self, thread: Option<i64>, message: &str) -> (u16, Value) {
        let thread = thread.map(|t| t.to_string());
        let mut form = vec![("deal_id", self.deal_id.as_str()), ("message", message)];
        if let Some(t) = &thread {
            form.push(("thread_id", t));
        }
        self.app.post(&self.client, "/api/chat/send", &form).await
    }

    /// The caller's conversations on the deal, those matching `search` if it is not empty.
    async fn threads(&self, search: &str) -> Value {
        let mut form = vec![("deal_id", self.deal_id.as_str())];
        if !search.is_empty() {
            form.push(("search", search));
        }
        self.app.post(&self.client, "/api/chat/threads", &form).await.1
    }

    async fn usage(&self) -> Vec<UsageRow> {
        sqlx::query_as(
            "SELECT user_id, deal_id, operation, model, input_tokens, output_tokens, cache_creation_tokens, \
             cache_read_tokens, estimated_input_tokens, cost_microusd, default_price, latency_ms, outcome, request_id \
             FROM usage_records ORDER BY id",
        )
        .fetch_all(&self.app.state.db.pool)
        .await
        .unwrap()
    }

    fn outcomes(rows: &[UsageRow]) -> Vec<&str> {
        rows.iter().map(|r| r.12.as_str()).collect()
    }
}

type UsageRow = (i64, Option<i64>, String, String, i64, i64, i64, i64, i64, i64, i64, i64, String, Option<String>);

async fn does_not_retry_429(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::Status { status: 429, retry_after: Some("1".into()) }]);
    let (status, body) = chat.send(None, "What is the cap rate?").await;
    assert_eq!(status, 429);
    assert_eq!(kind(&body), "service_busy");
    assert_eq!(body["message"], "The service is busy, please try again in a moment.");
    assert_eq!(chat.fake.requests().len(), 1, "429 is never retried");
    let usage = chat.usage().await;
    assert_eq!(Chat::outcomes(&usage), ["busy"]);
    assert_eq!(usage[0].13.as_deref(), Some("req_fake_1"));
}

async fn retries_5xx_then_succeeds(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::status(500), Script::status(529), Script::ok("Finally.", 200, 40)]);
    let (status, body) = chat.send(None, "What is the cap rate?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"]["content"], "Finally.");
    assert_eq!(chat.fake.requests().len(), 3);
    assert_eq!(Chat::outcomes(&chat.usage().await), ["error", "error", "ok"]);
}

async fn gives_up_after_max_retries(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::status(500), Script::status(503), Script::status(529), Script::ok("never", 1, 1)]);
    let (status, body) = chat.send(None, "What is the cap rate?").await;
    assert_eq!(status, 502);
    assert_eq!(kind(&body), "upstream_error");
    assert_eq!(chat.fake.requests().len(), 3, "max_retries (2) + 1 attempts");
    assert_eq!(Chat::outcomes(&chat.usage().await), ["error", "error", "error"]);
    // The user's message is kept; no reply was stored.
    assert_eq!(chat.app.count("chat_messages").await, 1);
}

async fn honours_retry_after_within_cap(engine: Engine) {
    let chat = Chat::start(engine).await;
    // retry-after 0.5 s is honoured (far above the 10 ms backoff)...
    chat.fake.script([Script::Status { status: 529, retry_after: Some("0.5".into()) }, Script::ok("ok", 10, 10)]);
    let (status, _) = chat.send(None, "first").await;
    assert_eq!(status, 200);
    // ...and retry-after 3600 s is capped at 1 s.
    chat.fake.script([Script::Status { status: 503, retry_after: Some("3600".into()) }, Script::ok("ok", 10, 10)]);
    let (status, _) = chat.send(None, "second").await;
    assert_eq!(status, 200);
    let at: Vec<_> = chat.fake.requests().iter().map(|r| r.at).collect();
    let first_gap = at[1] - at[0];
    let second_gap = at[3] - at[2];
    assert!(first_gap >= Duration::from_millis(500), "waited {first_gap:?}");
    assert!(second_gap >= Duration::from_millis(1000), "waited {second_gap:?}");
    assert!(second_gap < Duration::from_secs(10), "capped, waited {second_gap:?}");
}

async fn no_retry_on_400(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::status(400)]);
    let (status, body) = chat.send(None, "What is the cap rate?").await;
    assert_eq!((status, kind(&body)), (502, "upstream_error"));
    assert!(!body["message"].as_str().unwrap().contains("scripted"), "upstream text never reaches the browser");
    assert_eq!(chat.fake.requests().len(), 1);
    assert_eq!(Chat::outcomes(&chat.usage().await), ["error"]);
}

async fn timeout_is_retried(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::Slow(Duration::from_secs(3)), Script::ok("In time.", 50, 5)]);
    let (status, body) = chat.send(None, "What is the cap rate?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"]["content"], "In time.");
    assert_eq!(chat.fake.requests().len(), 2);
    assert_eq!(Chat::outcomes(&chat.usage().await), ["error", "ok"], "the timed-out attempt may have been billed: recorded");
}

async fn third_send_carries_the_first_two_exchanges(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok("A1", 10, 2), Script::ok("A2", 10, 2), Script::ok("A3", 10, 2)]);
    let (_, first) = chat.send(None, "Q1").await;
    let thread = first["thread_id"].as_i64().unwrap();
    chat.send(Some(thread), "Q2").await;
    let (status, _) = chat.send(Some(thread), "Q3").await;
    assert_eq!(status, 200);
    let requests = chat.fake.requests();
    assert!(requests.iter().all(|r| r.rejected.is_none()), "every request is well-formed");
    let third = &requests[2].body;
    let turns: Vec<(&str, &str)> = third["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(turns, [("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"), ("user", "Q3")]);
    // The deal's facts travel as the top-level system prompt.
    let system = third["system"].as_str().unwrap();
    assert!(system.contains("Deal: Harbor Point") && system.contains("Asking price: $86,500,000"), "{system}");
    assert_eq!(third["max_tokens"], 4096);
    assert_eq!(third["model"], "claude-sonnet-5-5");
    // An HMAC of the user's id under the server's own secret: stable, not reversible.
    let key = app::db::shared_secret(&chat.app.state.db, "claude_user_id_key").await.unwrap();
    assert_eq!(third["metadata"]["user_id"], user_token(&key, chat.user_id));
    assert!(requests.iter().all(|r| r.body["metadata"]["user_id"] == third["metadata"]["user_id"]));
}

async fn window_holds_at_most_20_and_older_messages_stay_stored(engine: Engine) {
    let chat = Chat::start(engine).await;
    let (_, first) = chat.send(None, "message 0").await;
    let thread = first["thread_id"].as_i64().unwrap();
    for i in 1..15 {
        let (status, _) = chat.send(Some(thread), &format!("message {i}")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(chat.app.count("chat_messages").await, 30);
    let (status, body) = chat.send(Some(thread), "message 15").await;
    assert_eq!(status, 200);
    let last = chat.fake.requests().last().unwrap().body.clone();
    let messages = last["messages"].as_array().unwrap();
    assert!(messages.len() <= 20, "{} messages sent", messages.len());
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages.last().unwrap()["content"], "message 15");
    assert_eq!(body["dropped"], 31 - messages.len() as i64);
    assert_eq!(chat.app.count("chat_messages").await, 32, "dropped messages stay in the database");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(view["messages"].as_array().unwrap().len(), 32);
    assert_eq!(view["messages"][0]["content"], "message 0");
}

async fn usage_records_carry_every_field_and_price_cache_tokens(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::Reply {
        text: "Cached answer.".into(),
        usage: json!({"input_tokens": 1000, "output_tokens": 200,
                      "cache_creation_input_tokens": 4000, "cache_read_input_tokens": null}),
    }]);
    let (status, body) = chat.send(None, "What is the cap rate?").await;
    assert_eq!(status, 200);
    chat.fake.script([Script::Reply {
        text: "Read from cache.".into(),
        usage: json!({"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 4000}),
    }]);
    chat.send(body["thread_id"].as_i64(), "And the NOI?").await;

    let usage = chat.usage().await;
    assert_eq!(usage.len(), 2);
    let (user, deal, operation, model, input, output, cache_w, cache_r, estimated, cost, default_price, _latency, outcome, request_id) =
        usage[0].clone();
    assert_eq!(user, chat.user_id);
    assert_eq!(deal, Some(chat.deal_id.parse().unwrap()));
    assert_eq!((operation.as_str(), model.as_str(), outcome.as_str()), ("chat", "claude-sonnet-5-5", "ok"));
    assert_eq!((input, output, cache_w, cache_r), (1000, 200, 4000, 0));
    assert!(estimated > 0);
    assert_eq!(request_id.as_deref(), Some("req_fake_1"));
    assert_eq!(default_price, 0);
    // Sonnet 5.5: 1000 × $2 + 200 × $10 + 4000 × $2.50 (5-minute writes) per MTok = 14,000 µ$.
    assert_eq!(cost, 2_000 + 2_000 + 10_000);
    // 10 × $2 + 20 × $10 + 4000 × $0.10 = 20 + 200 + 400 µ$.
    assert_eq!(usage[1].9, 620);
    assert_eq!(body["reply"]["usage"]["cost_microusd"], 14_000);
    assert_eq!(body["reply"]["usage"]["cache_creation_input_tokens"], 4000);
}

async fn unknown_models_are_priced_at_flagged_default_rates(engine: Engine) {
    let mut settings = fast_settings();
    settings.claude.model = "claude-unreleased-9".into();
    let chat = Chat::start_with(engine, settings).await;
    // A failed attempt is recorded under the model asked for (a success, under the
    // model that answered); neither may be priced at $0 for want of a rate.
    chat.fake.script([Script::status(400)]);
    chat.send(None, "Hello").await;
    let usage = chat.usage().await;
    assert_eq!(usage[0].3, "claude-unreleased-9");
    assert_eq!(usage[0].10, 1, "default rates flagged");
}

async fn an_aborted_request_still_saves_the_reply_and_usage(engine: Engine) {
    let chat = Chat::start(engine).await;
    // Claude answers after 700 ms; the browser gives up after 150 ms.
    chat.fake.script([Script::Slow(Duration::from_millis(700))]);
    let aborted = chat
        .client
        .post(format!("{}/api/chat/send", chat.app.base))
        .timeout(Duration::from_millis(150))
        .form(&[("deal_id", chat.deal_id.as_str()), ("message", "Are you there?")])
        .send()
        .await;
    assert!(aborted.is_err(), "the client gave up before the reply");
    let mut saved = false;
    for _ in 0..100 {
        if chat.app.count("chat_messages").await == 2 && chat.app.count("usage_records").await == 1 {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saved, "the reply and its usage record were saved after the disconnect");
    let (_, threads) = chat.app.post(&chat.client, "/api/chat/threads", &[("deal_id", &chat.deal_id)]).await;
    let thread = threads[0]["id"].as_i64().unwrap().to_string();
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread)]).await;
    assert_eq!(view["messages"][1]["content"], "Slow reply 1.");
    assert_eq!(Chat::outcomes(&chat.usage().await), ["ok"]);
}

async fn threads_are_private_and_admins_may_read_them(engine: Engine) {
    let chat = Chat::start(engine).await;
    let (_, sent) = chat.send(None, "My private question").await;
    let thread = sent["thread_id"].as_i64().unwrap().to_string();

    let other = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let (_, threads) = chat.app.post(&other, "/api/chat/threads", &[("deal_id", &chat.deal_id)]).await;
    assert_eq!(threads.as_array().unwrap().len(), 0);
    let (status, body) = chat.app.post(&other, "/api/chat/thread", &[("thread_id", &thread)]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (status, body) = chat
        .app
        .post(&other, "/api/chat/send", &[("deal_id", &chat.deal_id), ("thread_id", &thread), ("message", "sneaky")])
        .await;
    assert_eq!((status, kind(&body)), (404, "not_found"));

    let admin = chat.app.signed_in("root@firm.com", UserRole::Admin).await;
    let (_, threads) = chat.app.post(&admin, "/api/chat/threads", &[("deal_id", &chat.deal_id)]).await;
    assert_eq!(threads[0]["author"], "ana@firm.com");
    let (status, view) = chat.app.post(&admin, "/api/chat/thread", &[("thread_id", &thread)]).await;
    assert_eq!(status, 200);
    assert_eq!(view["mine"], false);
    assert_eq!(view["messages"][0]["content"], "My private question");
    let (status, _) = chat
        .app
        .post(&admin, "/api/chat/send", &[("deal_id", &chat.deal_id), ("thread_id", &thread), ("message", "admin reply")])
        .await;
    assert_eq!(status, 404, "admins read other people's threads but do not write in them");
    assert_eq!(chat.app.count("chat_messages").await, 2);
}

async fn bad_chat_input_is_refused_before_any_call(engine: Engine) {
    let mut settings = fast_settings();
    settings.history.max_input_tokens = 2_000;
    let chat = Chat::start_with(engine, settings).await;
    let cases: Vec<(Vec<(&str, String)>, u16, &str)> = vec![
        (vec![("deal_id", chat.deal_id.clone()), ("message", "   ".into())], 400, "invalid"),
        (vec![("deal_id", "999".into()), ("message", "hi".into())], 404, "not_found"),
        (vec![("deal_id", chat.deal_id.clone()), ("thread_id", "999".into()), ("message", "hi".into())], 404, "not_found"),
        (vec![("deal_id", "abc".into()), ("message", "hi".into())], 400, "invalid"),
        (vec![("deal_id", chat.deal_id.clone()), ("message", "word ".repeat(3_000))], 400, "too_long"),
        (vec![("deal_id", chat.deal_id.clone()), ("message", "x".repeat(60_000))], 400, "too_long"),
    ];
    for (form, status, expected) in cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, body) = chat.app.post(&chat.client, "/api/chat/send", &form).await;
        assert_eq!((got, kind(&body)), (status, expected), "{}", &format!("{form:?}")[..80]);
    }
    let (status, body) = chat.app.post(&chat.app.client(), "/api/chat/send", &[("deal_id", "1"), ("message", "hi")]).await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
    assert!(chat.fake.requests().is_empty(), "no call reached Claude");
    assert_eq!(chat.app.count("chat_messages").await, 0);
    assert_eq!(chat.app.count("chat_threads").await, 0);
}

async fn the_offline_model_answers_and_is_recorded(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (_, deal) = app
        .post(&client, "/api/deals/create", &[("name", "Maple Grove"), ("address", ""), ("property_type", "Multifamily"), ("asking_price", "42.75M"), ("notes", "")])
        .await;
    let deal = deal.as_i64().unwrap().to_string();
    let (status, body) = app.post(&client, "/api/chat/send", &[("deal_id", &deal), ("message", "What are the risks?")]).await;
    assert_eq!(status, 200, "{body}");
    let reply = body["reply"]["content"].as_str().unwrap();
    assert!(reply.contains("Maple Grove") && reply.contains("Offline model"), "{reply}");
    assert_eq!(body["reply"]["usage"]["model"], "offline-simulated");
    assert!(body["reply"]["usage"]["cost_microusd"].as_i64().unwrap() > 0);
    let (_, context) = app.post(&client, "/api/chat/context", &[("deal_id", &deal)]).await;
    assert_eq!(context["offline"], true);
    assert_eq!(app.count("usage_records").await, 1);
}

async fn replies_carry_their_markdown_as_safe_html(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok(
        "**Buy.**\n\n| Metric | Value |\n|---|---|\n| Cap rate | 6.4% |\n\nNote <script>alert(1)</script>\n\n![x](https://evil.example/leak) [more](javascript:alert(2))",
        100,
        40,
    )]);
    let (status, body) = chat.send(None, "Summarise").await;
    assert_eq!(status, 200, "{body}");
    let html = body["reply"]["html"].as_str().unwrap();
    assert!(html.contains("<strong>Buy.</strong>"), "{html}");
    assert!(html.contains("<td class=\"num\">6.4%</td>"), "{html}");
    assert!(!html.contains("<script") && html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("evil.example") && !html.contains("javascript:"), "{html}");
    // Stored replies read the same; the analyst's own messages stay plain text.
    let thread = body["thread_id"].as_i64().unwrap().to_string();
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread)]).await;
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages[0]["html"], Value::Null, "{view}");
    assert_eq!(messages[1]["html"].as_str(), Some(html));
}

/// The reply a send returns is built from what its transaction wrote, not read back:
/// it must be exactly what the conversation shows once stored.
async fn a_sent_reply_is_exactly_the_stored_one(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([
        Script::Reply {
            text: "**Hold.** Cap rate 6.4% <b>firm</b>".into(),
            usage: json!({"input_tokens": 1000, "output_tokens": 200, "cache_creation_input_tokens": 4000, "cache_read_input_tokens": 7}),
        },
        Script::ok("Second answer.", 30, 12),
    ]);
    let (status, first) = chat.send(None, "What is the cap rate?").await;
    assert_eq!(status, 200, "{first}");
    let thread = first["thread_id"].as_i64().unwrap();
    let (status, second) = chat.send(Some(thread), "And the NOI?").await;
    assert_eq!(status, 200, "{second}");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{view}");
    assert_eq!(first["reply"], messages[1]);
    assert_eq!(second["reply"], messages[3]);
    let records = chat.usage().await;
    assert_eq!(first["reply"]["usage"]["cost_microusd"], records[0].9, "{first}");
    assert_eq!(second["reply"]["usage"]["cost_microusd"], records[1].9, "{second}");
    assert_eq!(first["reply"]["usage"]["cache_read_input_tokens"], 7);
}

/// A question's text reaches the database only as a bound value, in the statement or
/// batch that stores it with its new or continued conversation, and so does a reply's,
/// in its usage record's statement or transaction: markup, quotes, SQL, parameter
/// markers and non-ASCII text are kept exactly as typed or written.
async fn questions_are_stored_exactly_as_typed(engine: Engine) {
    let chat = Chat::start(engine).await;
    let text = "Zürich 東京 «NOI» <script>alert(1)</script> '); DROP TABLE deals; -- $1 ?";
    chat.fake.script([Script::ok(text, 10, 5), Script::ok(text, 10, 5)]);
    let (status, first) = chat.send(None, text).await;
    assert_eq!(status, 200, "{first}");
    let thread = first["thread_id"].as_i64().unwrap();
    let (status, body) = chat.send(Some(thread), text).await;
    assert_eq!(status, 200, "{body}");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{view}");
    for message in messages {
        assert_eq!(message["content"].as_str(), Some(text), "{view}");
    }
    assert_eq!(body["reply"]["content"].as_str(), Some(text), "{body}");
    assert!(view["title"].as_str().unwrap().starts_with("Zürich 東京"), "{view}");
    assert_eq!(chat.app.count("deals").await, 1, "the deal is still there");
}

async fn conversations_can_be_renamed_searched_deleted_and_restored(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok("About the cap rate.", 100, 10), Script::ok("About the roof.", 100, 10)]);
    let (_, first) = chat.send(None, "What is the cap rate?").await;
    let (_, second) = chat.send(None, "Is the ROOF 100% replaced?").await;
    let (first, second) = (first["thread_id"].as_i64().unwrap().to_string(), second["thread_id"].as_i64().unwrap().to_string());
    let titles = |list: &Value| -> Vec<String> { list.as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_string()).collect() };

    // Rename: one line, trimmed; empty or too long refused and nothing changes.
    let (status, body) = chat.app.post(&chat.client, "/api/chat/rename", &[("thread_id", &first), ("title", "  Cap rate\n check ")]).await;
    assert_eq!((status, body.as_str()), (200, Some("Cap rate check")));
    let (status, body) = chat.app.post(&chat.client, "/api/chat/rename", &[("thread_id", &first), ("title", " ")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    let (status, _) = chat.app.post(&chat.client, "/api/chat/rename", &[("thread_id", &first), ("title", &"x".repeat(101))]).await;
    assert_eq!(status, 400);
    assert_eq!(titles(&chat.threads("").await), ["Is the ROOF 100% replaced?", "Cap rate check"]);

    // Search: titles and messages, any case; % and _ are literal.
    assert_eq!(titles(&chat.threads("roof").await), ["Is the ROOF 100% replaced?"]);
    assert_eq!(titles(&chat.threads("about the CAP").await), ["Cap rate check"], "a reply's text is searched too");
    assert_eq!(titles(&chat.threads("100%").await), ["Is the ROOF 100% replaced?"]);
    assert!(titles(&chat.threads("%").await).len() == 1, "% matches only a literal %");
    assert!(titles(&chat.threads("nothing like this").await).is_empty());

    // Someone else cannot rename or delete it (and learns nothing of it).
    let other = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let (status, body) = chat.app.post(&other, "/api/chat/rename", &[("thread_id", &first), ("title", "Mine now")]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (status, _) = chat.app.post(&other, "/api/chat/delete", &[("thread_id", &first)]).await;
    assert_eq!(status, 404);

    // Delete hides it (list, reading, sending); undo brings it back whole.
    let (status, _) = chat.app.post(&chat.client, "/api/chat/delete", &[("thread_id", &first)]).await;
    assert_eq!(status, 200);
    assert_eq!(titles(&chat.threads("").await), ["Is the ROOF 100% replaced?"]);
    let (status, _) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &first)]).await;
    assert_eq!(status, 404);
    let (status, _) = chat.send(Some(first.parse().unwrap()), "More?").await;
    assert_eq!(status, 404);
    let (status, _) = chat.app.post(&chat.client, "/api/chat/delete", &[("thread_id", &second), ("restore", "true")]).await;
    assert_eq!(status, 404, "only a deleted conversation can be restored");
    let (status, _) = chat.app.post(&chat.client, "/api/chat/delete", &[("thread_id", &first), ("restore", "true")]).await;
    assert_eq!(status, 200);
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &first)]).await;
    assert_eq!(view["title"], "Cap rate check");
    assert_eq!(view["messages"].as_array().unwrap().len(), 2);
    assert_eq!(chat.usage().await.len(), 2, "usage is untouched by all of this");
}

async fn claude_titles_a_conversation_after_its_first_exchange_and_every_fifth_message(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok("A1", 100, 10), Script::ok("\"Harbor Point cap rate.\"", 50, 6)]);
    let (_, sent) = chat.send(None, "What is the cap rate?").await;
    let thread = sent["thread_id"].as_i64().unwrap().to_string();
    let (status, title) = chat.app.post(&chat.client, "/api/chat/title", &[("thread_id", &thread)]).await;
    assert_eq!((status, title.as_str()), (200, Some("Harbor Point cap rate")));
    let request = &chat.fake.requests()[1].body;
    assert_eq!(request["max_tokens"], 40);
    assert!(request["messages"][0]["content"].as_str().unwrap().contains("Analyst: What is the cap rate?\nClaude: A1"), "{request}");
    let rows = chat.usage().await;
    assert_eq!((rows[1].2.as_str(), rows[1].12.as_str()), ("title", "ok"), "a tracked call of its own");

    // Not due again until the conversation passes 5 messages: no call, no new title.
    let (_, again) = chat.app.post(&chat.client, "/api/chat/title", &[("thread_id", &thread)]).await;
    assert_eq!(again, Value::Null);
    assert_eq!(chat.fake.requests().len(), 2);
    chat.fake.script([Script::ok("A2", 100, 10), Script::ok("A3", 100, 10), Script::status(400)]);
    chat.send(Some(thread.parse().unwrap()), "And the NOI?").await;
    chat.send(Some(thread.parse().unwrap()), "And the risks?").await;
    // Due at 6 messages; Claude fails: the old title stays, the chat is not failed.
    let (status, kept) = chat.app.post(&chat.client, "/api/chat/title", &[("thread_id", &thread)]).await;
    assert_eq!((status, kept), (200, Value::Null));
    assert_eq!(chat.fake.requests().len(), 5);
    assert_eq!(chat.usage().await.last().unwrap().2, "title");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread)]).await;
    assert_eq!(view["title"], "Harbor Point cap rate");
}

async fn a_title_the_analyst_gives_is_never_replaced_by_claude(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok("A1", 100, 10), Script::ok("A2", 100, 10), Script::ok("A3", 100, 10), Script::ok("Claude's idea", 50, 6)]);
    let (_, sent) = chat.send(None, "What is the cap rate?").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    chat.app.post(&chat.client, "/api/chat/rename", &[("thread_id", &thread.to_string()), ("title", "My own name")]).await;
    chat.send(Some(thread), "And the NOI?").await;
    chat.send(Some(thread), "And the risks?").await;
    let (status, title) = chat.app.post(&chat.client, "/api/chat/title", &[("thread_id", &thread.to_string())]).await;
    assert_eq!((status, title), (200, Value::Null));
    assert_eq!(chat.fake.requests().len(), 3, "no title call for a conversation the analyst named");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(view["title"], "My own name");
}

async fn a_deal_opens_the_conversation_in_its_address_or_the_latest(engine: Engine) {
    let chat = Chat::start(engine).await;
    let open = |client: reqwest::Client, deal: String, thread: Option<String>| {
        let app = &chat.app;
        async move {
            let mut form = vec![("deal_id", deal)];
            if let Some(t) = thread {
                form.push(("thread_id", t));
            }
            app.post(&client, "/api/chat/open", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await
        }
    };
    let (status, none) = open(chat.client.clone(), chat.deal_id.clone(), None).await;
    assert_eq!((status, none), (200, Value::Null), "no conversation yet");
    chat.fake.script([Script::ok("One.", 10, 2), Script::ok("Two.", 10, 2), Script::ok("Again.", 10, 2)]);
    let (_, first) = chat.send(None, "First question").await;
    let (_, second) = chat.send(None, "Second question").await;
    let first = first["thread_id"].as_i64().unwrap();
    let second = second["thread_id"].as_i64().unwrap();
    let (_, latest) = open(chat.client.clone(), chat.deal_id.clone(), None).await;
    assert_eq!(latest["id"], second);
    // Writing to the older one makes it the latest.
    chat.send(Some(first), "Back to this").await;
    let (_, latest) = open(chat.client.clone(), chat.deal_id.clone(), None).await;
    assert_eq!(latest["id"], first);
    assert_eq!(latest["messages"].as_array().unwrap().len(), 4);
    let (_, named) = open(chat.client.clone(), chat.deal_id.clone(), Some(second.to_string())).await;
    assert_eq!(named["id"], second);

    // Not on this deal, someone else's, or deleted: not found. Admins may read anyone's.
    let (_, other_deal) = chat
        .app
        .post(&chat.client, "/api/deals/create", &[("name", "Other"), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")])
        .await;
    let (status, body) = open(chat.client.clone(), other_deal.to_string(), Some(second.to_string())).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let bo = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let (status, _) = open(bo.clone(), chat.deal_id.clone(), Some(second.to_string())).await;
    assert_eq!(status, 404);
    let (_, bo_latest) = open(bo, chat.deal_id.clone(), None).await;
    assert_eq!(bo_latest, Value::Null, "the latest is the caller's own");
    let admin = chat.app.signed_in("root@firm.com", UserRole::Admin).await;
    let (status, _) = open(admin, chat.deal_id.clone(), Some(second.to_string())).await;
    assert_eq!(status, 200);
    chat.app.post(&chat.client, "/api/chat/delete", &[("thread_id", &first.to_string())]).await;
    let (_, latest) = open(chat.client.clone(), chat.deal_id.clone(), None).await;
    assert_eq!(latest["id"], second, "a deleted conversation is not resumed");

    // The page at the conversation's address; a missing deal there is a 404.
    let page = chat.client.get(format!("{}/deals/{}/chat/{second}", chat.app.base, chat.deal_id)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("Second question"), "the conversation is rendered on the server");
    let missing = chat.client.get(format!("{}/deals/999999/chat/{second}", chat.app.base)).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// A conversation's latest activity is its newest message's, the reply's included (the
/// database dates the conversation as each message is stored).
async fn a_conversation_is_dated_by_its_newest_message(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::Delayed(Duration::from_millis(50), Box::new(Script::ok("Later.", 10, 2)))]);
    let (status, sent) = chat.send(None, "Question").await;
    assert_eq!(status, 200, "{sent}");
    let (updated, first, newest): (i64, i64, i64) = sqlx::query_as(
        "SELECT t.updated_at, (SELECT MIN(created_at) FROM chat_messages WHERE thread_id = t.id), \
         (SELECT MAX(created_at) FROM chat_messages WHERE thread_id = t.id) FROM chat_threads t WHERE t.id = $1",
    )
    .bind(sent["thread_id"].as_i64().unwrap())
    .fetch_one(&chat.app.state.db.pool)
    .await
    .unwrap();
    assert!(newest >= first + 50, "the reply came after the question");
    assert_eq!(updated, newest);
}

async fn older_messages_can_be_left_out_of_a_send(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok("A1", 10, 2), Script::ok("A2", 10, 2), Script::ok("A3", 10, 2)]);
    let (_, sent) = chat.send(None, "Q1").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    chat.send(Some(thread), "Q2").await;
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    let q2 = view["messages"][2]["id"].as_i64().unwrap();
    assert_eq!(view["messages"][2]["content"], "Q2");
    let form = [("deal_id", chat.deal_id.as_str()), ("thread_id", &thread.to_string()), ("message", "Q3"), ("from_message", &q2.to_string())];
    let (status, body) = chat.app.post(&chat.client, "/api/chat/send", &form).await;
    assert_eq!(status, 200, "{body}");
    let requests = chat.fake.requests();
    let sent: Vec<&str> = requests[2].body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(sent, ["Q2", "A2", "Q3"], "Q1 and A1 left out");
    assert_eq!(body["dropped"], 2, "and counted as not sent");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(view["messages"].as_array().unwrap().len(), 6, "nothing is deleted");
}

/// `POST /api/chat/count` with a draft (and its conversation), as the composer asks.
async fn count(chat: &Chat, client: &reqwest::Client, thread: Option<i64>, message: &str) -> (u16, Value) {
    let thread = thread.map(|t| t.to_string());
    let mut form = vec![("deal_id", chat.deal_id.as_str()), ("message", message)];
    if let Some(t) = &thread {
        form.push(("thread_id", t));
    }
    chat.app.post(client, "/api/chat/count", &form).await
}

async fn claude_counts_the_next_call_exactly_and_for_free(engine: Engine) {
    let chat = Chat::start(engine).await;
    let (_, sent) = chat.send(None, "What is the cap rate?").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    let records = chat.app.count("usage_records").await;
    let (status, counted) = count(&chat, &chat.client, Some(thread), "And the rent roll, unit by unit?").await;
    assert_eq!(status, 200, "{counted}");

    // Asked with what the send will carry, and nothing only a call takes.
    let asked = chat.fake.counts();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].rejected, None, "the fake API accepted the request");
    let body = &asked[0].body;
    assert_eq!(counted, FakeClaude::counted(body));
    let sent: Vec<&str> = body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2], "And the rent roll, unit by unit?");
    assert!(body["system"].as_str().unwrap().contains("Harbor Point"), "the deal's facts are counted");
    assert_eq!(asked[0].headers["x-api-key"], "test-api-key");

    // Free: nothing recorded, reserved or stored; then the send bills exactly that input.
    assert_eq!(chat.app.count("usage_records").await, records);
    assert_eq!(chat.app.count("usage_reservations").await, 0);
    assert_eq!(chat.app.count("chat_messages").await, 2);
    chat.fake.script([Script::Counted { output: 12 }]);
    let (status, body) = chat.send(Some(thread), "And the rent roll, unit by unit?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"]["usage"]["input_tokens"], counted, "the count was the input Claude billed");
}

async fn counting_is_refused_or_absent_where_a_send_would_be(engine: Engine) {
    let chat = Chat::start(engine).await;
    let (_, sent) = chat.send(None, "My private question").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    // Someone else's conversation, an empty or over-long draft, no session: refused, not counted.
    let other = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let (status, body) = count(&chat, &other, Some(thread), "what did they ask?").await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (status, body) = count(&chat, &chat.client, None, "   ").await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    let (status, body) = count(&chat, &chat.client, None, &"x".repeat(60_000)).await;
    assert_eq!((status, kind(&body)), (400, "too_long"));
    let (status, body) = count(&chat, &chat.app.client(), None, "hi").await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
    assert!(chat.fake.counts().is_empty());

    // Claude busy or failing: a clear error, nothing recorded; the estimate stands.
    for (upstream, status, expected) in [(429, 429, "service_busy"), (500, 502, "upstream_error")] {
        chat.fake.fail_counts(Some(upstream));
        let (got, body) = count(&chat, &chat.client, Some(thread), "next?").await;
        assert_eq!((got, kind(&body)), (status, expected), "{body}");
        assert!(body["message"].as_str().unwrap().contains("estimate"), "{body}");
    }
    assert_eq!(chat.fake.counts().len(), 2, "asked once each: a count is never retried");
    assert_eq!(chat.app.count("usage_records").await, 1);

    // The offline model has no exact count: the answer is empty, not an error.
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (_, deal) = app
        .post(&client, "/api/deals/create", &[("name", "Maple Grove"), ("address", ""), ("property_type", "Multifamily"), ("asking_price", "42.75M"), ("notes", "")])
        .await;
    let (status, body) = app.post(&client, "/api/chat/count", &[("deal_id", &deal.as_i64().unwrap().to_string()), ("message", "hi")]).await;
    assert_eq!((status, body), (200, Value::Null));
}

/// A script cannot spend the firm's `count_tokens` rate limit from one account: each
/// analyst may ask for 30 counts a minute; the next is refused without asking Claude,
/// and another analyst still counts.
async fn exact_counts_are_limited_per_analyst_per_minute(engine: Engine) {
    use app::claude::client::COUNTS_PER_USER_PER_MINUTE;
    let chat = Chat::start(engine).await;
    // Not across a minute's end, where the counts would start afresh mid-test.
    let into_minute = app::time::now_millis().rem_euclid(60_000);
    if into_minute > 45_000 {
        tokio::time::sleep(std::time::Duration::from_millis((60_000 - into_minute + 200) as u64)).await;
    }
    for i in 0..COUNTS_PER_USER_PER_MINUTE {
        let (status, body) = count(&chat, &chat.client, None, &format!("draft {i}")).await;
        assert_eq!(status, 200, "count {i}: {body}");
    }
    let (status, body) = count(&chat, &chat.client, None, "one more").await;
    assert_eq!((status, kind(&body)), (429, "rate_limited"), "{body}");
    assert!(body["retry_after_seconds"].as_u64().is_some_and(|s| (1..=60).contains(&s)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("estimate stands"), "{body}");
    assert_eq!(chat.fake.counts().len(), COUNTS_PER_USER_PER_MINUTE as usize, "the refused count never reached Claude");
    let other = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let (status, body) = count(&chat, &other, None, "my own draft").await;
    assert_eq!(status, 200, "another analyst counts on: {body}");
}

on_both_engines!(
    claude_counts_the_next_call_exactly_and_for_free,
    counting_is_refused_or_absent_where_a_send_would_be,
    exact_counts_are_limited_per_analyst_per_minute,
    a_title_the_analyst_gives_is_never_replaced_by_claude,
    older_messages_can_be_left_out_of_a_send,
    a_conversation_is_dated_by_its_newest_message,
    a_deal_opens_the_conversation_in_its_address_or_the_latest,
    conversations_can_be_renamed_searched_deleted_and_restored,
    claude_titles_a_conversation_after_its_first_exchange_and_every_fifth_message,
    replies_carry_their_markdown_as_safe_html,
    a_sent_reply_is_exactly_the_stored_one,
    questions_are_stored_exactly_as_typed,
    does_not_retry_429,
    retries_5xx_then_succeeds,
    gives_up_after_max_retries,
    honours_retry_after_within_cap,
    no_retry_on_400,
    timeout_is_retried,
    third_send_carries_the_first_two_exchanges,
    window_holds_at_most_20_and_older_messages_stay_stored,
    usage_records_carry_every_field_and_price_cache_tokens,
    unknown_models_are_priced_at_flagged_default_rates,
    an_aborted_request_still_saves_the_reply_and_usage,
    threads_are_private_and_admins_may_read_them,
    bad_chat_input_is_refused_before_any_call,
    the_offline_model_answers_and_is_recorded,
);
