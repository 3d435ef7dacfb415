//! Streamed chat replies, Stop, summaries and pinned messages, against the fake Claude
//! speaking server-sent events, on SQLite and PostgreSQL.

use std::time::Duration;

use app::auth::UserRole;
use app::claude::estimate::estimate_text_tokens;
use serde_json::Value;

use crate::chat::{Chat, fast_settings};
use crate::support::Engine;
use crate::support::fake_claude::Script;

/// The events of a streamed send, read as they arrive.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find('\n') {
                let line: String = self.buffer.drain(..=end).collect();
                assert!(line.is_ascii(), "lines are ASCII: {line}");
                return Some(serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("not an event ({e}): {line}")));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk()).await.expect("an event within 10 s").unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads until `n` deltas have come; returns their text.
    async fn deltas(&mut self, n: usize) -> String {
        let mut text = String::new();
        let mut seen = 0;
        while seen < n {
            let event = self.next().await.expect("the stream ended early");
            if let Some(delta) = event.get("delta") {
                text.push_str(delta["text"].as_str().unwrap());
                seen += 1;
            }
        }
        text
    }

    /// Reads to the end: the text of the remaining deltas, and the last event.
    async fn rest(&mut self) -> (String, Value) {
        let mut text = String::new();
        let mut last = Value::Null;
        while let Some(event) = self.next().await {
            if let Some(delta) = event.get("delta") {
                text.push_str(delta["text"].as_str().unwrap());
            }
            last = event;
        }
        (text, last)
    }
}

async fn stream(chat: &Chat, client: &reqwest::Client, thread: Option<i64>, message: &str) -> Events {
    let thread = thread.map(|t| t.to_string());
    let mut form = vec![("deal_id", chat.deal_id.as_str()), ("message", message)];
    if let Some(t) = &thread {
        form.push(("thread_id", t));
    }
    let response = client.post(format!("{}/api/chat/stream", chat.app.base)).form(&form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    Events { response, buffer: String::new() }
}

/// The conversation and the question of a streamed reply, from its `started` event.
async fn started(events: &mut Events) -> (i64, i64) {
    let first = events.next().await.unwrap();
    let id = |field: &str| first["started"][field].as_i64().unwrap_or_else(|| panic!("started first, with {field}: {first}"));
    (id("thread_id"), id("message_id"))
}

/// Asks to stop the reply to `message` in `thread`.
async fn stop(chat: &Chat, client: &reqwest::Client, thread: i64, message: i64) -> (u16, Value) {
    chat.app.post(client, "/api/chat/stop", &[("thread_id", &thread.to_string()), ("message_id", &message.to_string())]).await
}

/// (outcome, input, output, stopped, usage_unknown, operation) of every record.
async fn records(chat: &Chat) -> Vec<(String, i64, i64, i64, i64, String)> {
    sqlx::query_as("SELECT outcome, input_tokens, output_tokens, stopped, usage_unknown, operation FROM usage_records ORDER BY id")
        .fetch_all(&chat.app.state.db.pool)
        .await
        .unwrap()
}

async fn no_reservation_left(chat: &Chat) {
    for _ in 0..100 {
        if chat.app.count("usage_reservations").await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a reservation was left behind");
}

async fn a_streamed_reply_arrives_in_pieces_and_is_saved_whole(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::ok("The going-in cap rate is 6.1% — on in-place NOI.", 300, 12)]);
    let mut events = stream(&chat, &chat.client, None, "What is the cap rate?").await;
    let (thread, _) = started(&mut events).await;
    let (text, done) = events.rest().await;
    assert_eq!(text, "The going-in cap rate is 6.1% — on in-place NOI.", "the pieces make the reply");
    let reply = &done["done"]["result"]["reply"];
    assert_eq!(reply["content"], text.as_str());
    assert_eq!(reply["stopped"], false);
    assert_eq!(done["done"]["result"]["thread_id"], thread);
    assert_eq!(chat.fake.requests()[0].body["stream"], true, "Claude was asked to stream");
    assert_eq!(records(&chat).await, [("ok".into(), 300, 12, 0, 0, "chat".into())]);
    no_reservation_left(&chat).await;
    // The plain endpoint streams from Claude too, and answers once the reply is whole.
    chat.fake.script([Script::stream(4, 80)]);
    let (status, body) = chat.send(Some(thread), "And the yield?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"]["content"], "w1 w2 w3 w4 ");
}

/// Stop after N deltas: the partial reply is kept, marked stopped, billed for the whole
/// input and N deltas of output (from the last `message_delta`, or counted from the text
/// when none came), and flagged stopped.
async fn stop_bills_exactly_what_was_written(engine: Engine) {
    let chat = Chat::start(engine).await;
    let mut last_thread = 0;
    for usage_each in [true, false] {
        let earlier = records(&chat).await.len();
        let pieces: Vec<String> = (1..=40).map(|i| format!("w{i} ")).collect();
        chat.fake.script([Script::Stream { pieces, input: 400, usage_each, pause_after: Some((3, Duration::from_secs(8))), error_after: None }]);
        let mut events = stream(&chat, &chat.client, None, "Walk me through it").await;
        let (thread, question) = started(&mut events).await;
        last_thread = thread;
        assert_eq!(events.deltas(3).await, "w1 w2 w3 ");
        let (status, body) = stop(&chat, &chat.client, thread, question).await;
        assert_eq!(status, 200, "{body}");
        let asked = std::time::Instant::now();
        let (more, done) = events.rest().await;
        assert!(asked.elapsed() < Duration::from_secs(4), "stopped at once, not after Claude's pause");
        assert_eq!(more, "", "nothing after the stop");
        let reply = &done["done"]["result"]["reply"];
        assert_eq!((reply["content"].as_str(), &reply["stopped"]), (Some("w1 w2 w3 "), &Value::Bool(true)), "{done}");
        let output = if usage_each { 3 } else { estimate_text_tokens("w1 w2 w3 ") as i64 };
        assert_eq!(records(&chat).await[earlier..], [("ok".into(), 400, output, 1, 0, "chat".into())], "usage_each {usage_each}");
        no_reservation_left(&chat).await;
        // Shown stopped when the conversation is read again.
        let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
        assert_eq!(view["messages"][1]["stopped"], true);
    }
    assert_eq!(chat.fake.requests().len(), 2, "a stop is not a retry");
    // The Stop was for that reply: the conversation's next one streams whole.
    chat.fake.script([Script::Stream { pieces: vec!["Next ".into(), "one.".into()], input: 50, usage_each: false, pause_after: Some((1, Duration::from_millis(400))), error_after: None }]);
    let (status, body) = chat.send(Some(last_thread), "And then?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["reply"]["content"].as_str(), &body["reply"]["stopped"]), (Some("Next one."), &Value::Bool(false)));
}

async fn only_the_author_can_stop_a_reply(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::stream(2, 50)]);
    let (_, sent) = chat.send(None, "Hi").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    let question = view["messages"][0]["id"].as_i64().unwrap();
    let reply = view["messages"][1]["id"].as_i64().unwrap();
    let other = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let (status, body) = stop(&chat, &other, thread, question).await;
    assert_eq!((status, body["kind"].as_str()), (404, Some("not_found")));
    assert_eq!(stop(&chat, &chat.app.client(), thread, question).await.0, 401, "signed out");
    // Only a question of that conversation can be named.
    let (_, elsewhere) = chat.send(None, "Another conversation").await;
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &elsewhere["thread_id"].to_string())]).await;
    let foreign = view["messages"][0]["id"].as_i64().unwrap();
    for wrong in [foreign, reply, 999_999] {
        let (status, body) = stop(&chat, &chat.client, thread, wrong).await;
        assert_eq!((status, body["kind"].as_str()), (404, Some("not_found")), "message {wrong}: {body}");
    }
}

/// Two replies streaming in one conversation (two tabs): a Stop names its question, so
/// it stops that reply and not the other; a Stop that arrives after its reply ended
/// stops nothing later.
async fn a_stop_stops_the_reply_it_names_and_no_other(engine: Engine) {
    let chat = Chat::start(engine).await;
    let slow = |input| {
        let pieces: Vec<String> = (1..=20).map(|i| format!("w{i} ")).collect();
        Script::Stream { pieces, input, usage_each: true, pause_after: Some((2, Duration::from_millis(600))), error_after: None }
    };
    chat.fake.script([Script::ok("First.", 100, 5), slow(200), slow(300)]);
    let (_, sent) = chat.send(None, "Start").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    let mut first = stream(&chat, &chat.client, Some(thread), "Tab one").await;
    let (_, first_question) = started(&mut first).await;
    let mut second = stream(&chat, &chat.client, Some(thread), "Tab two").await;
    let (_, second_question) = started(&mut second).await;
    assert!(second_question > first_question);
    assert_eq!(stop(&chat, &chat.client, thread, first_question).await.0, 200);
    let (_, done) = first.rest().await;
    assert_eq!(done["done"]["result"]["reply"]["stopped"], true, "{done}");
    let (text, done) = second.rest().await;
    assert_eq!(done["done"]["result"]["reply"]["stopped"], false, "the other tab's reply goes on: {done}");
    assert_eq!(text.split_whitespace().count(), 20);
    // A late Stop (its reply already whole) does not stop the next question's reply.
    assert_eq!(stop(&chat, &chat.client, thread, second_question).await.0, 200);
    chat.fake.script([Script::Stream { pieces: vec!["Next ".into(), "one.".into()], input: 50, usage_each: false, pause_after: Some((1, Duration::from_millis(400))), error_after: None }]);
    let (status, body) = chat.send(Some(thread), "And then?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"]["stopped"], false, "{body}");
    no_reservation_left(&chat).await;
}

async fn a_disconnect_mid_stream_still_saves_the_whole_reply(engine: Engine) {
    let chat = Chat::start(engine).await;
    let pieces: Vec<String> = (1..=10).map(|i| format!("w{i} ")).collect();
    chat.fake.script([Script::Stream { pieces, input: 250, usage_each: false, pause_after: Some((2, Duration::from_millis(400))), error_after: None }]);
    let mut events = stream(&chat, &chat.client, None, "Tell me more").await;
    started(&mut events).await;
    assert_eq!(events.deltas(2).await, "w1 w2 ");
    drop(events); // the browser goes away
    let mut saved = false;
    for _ in 0..100 {
        if chat.app.count("chat_messages").await == 2 && chat.app.count("usage_records").await == 1 {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saved, "the reply and its usage were saved after the disconnect");
    let (content,): (String,) = sqlx::query_as("SELECT content FROM chat_messages WHERE role = 'assistant'").fetch_one(&chat.app.state.db.pool).await.unwrap();
    assert_eq!(content, "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 ", "read to the end");
    assert_eq!(records(&chat).await, [("ok".into(), 250, 10, 0, 0, "chat".into())]);
    no_reservation_left(&chat).await;
}

async fn a_529_before_the_first_byte_is_retried(engine: Engine) {
    let chat = Chat::start(engine).await;
    chat.fake.script([Script::status(529), Script::stream(3, 90)]);
    let mut events = stream(&chat, &chat.client, None, "Cap rate?").await;
    started(&mut events).await;
    let (text, done) = events.rest().await;
    assert_eq!(text, "w1 w2 w3 ");
    assert!(done.get("done").is_some(), "{done}");
    let requests = chat.fake.requests();
    assert_eq!(requests.len(), 2, "retried once");
    assert!(requests.iter().all(|r| r.body["stream"] == true));
    let outcomes: Vec<String> = records(&chat).await.into_iter().map(|r| r.0).collect();
    assert_eq!(outcomes, ["error", "ok"], "both attempts recorded");
    no_reservation_left(&chat).await;
}

/// An `error` event after the 200: output was produced and billed, so it is not retried;
/// it is recorded with the input from `message_start` and the output received.
async fn an_error_event_mid_stream_is_recorded_and_not_retried(engine: Engine) {
    let chat = Chat::start(engine).await;
    let pieces: Vec<String> = (1..=10).map(|i| format!("w{i} ")).collect();
    chat.fake.script([Script::Stream { pieces, input: 333, usage_each: false, pause_after: None, error_after: Some(4) }, Script::stream(2, 10)]);
    let mut events = stream(&chat, &chat.client, None, "Cap rate?").await;
    started(&mut events).await;
    let (text, last) = events.rest().await;
    assert_eq!(text, "w1 w2 w3 w4 ");
    assert_eq!(last["failed"]["error"]["kind"], "upstream_error", "{last}");
    assert_eq!(chat.fake.requests().len(), 1, "not retried");
    assert_eq!(records(&chat).await, [("error".into(), 333, estimate_text_tokens("w1 w2 w3 w4 ") as i64, 0, 0, "chat".into())]);
    assert_eq!(chat.app.count("chat_messages").await, 1, "no reply stored, the question is");
    no_reservation_left(&chat).await;
}

/// A summary is a tracked, budgeted call (operation `summary`) kept as a message; the
/// next send carries the summary instead of the turns before it, and so less input.
async fn a_summary_shrinks_the_next_calls_input(engine: Engine) {
    let chat = Chat::start(engine).await;
    let long = "The rent roll shows twelve tenants with staggered expiries and modest bumps. ".repeat(20);
    let (_, sent) = chat.send(None, &long).await;
    let thread = sent["thread_id"].as_i64().unwrap();
    chat.send(Some(thread), &long).await;
    chat.send(Some(thread), "And the exit?").await;
    let before = chat.fake.requests()[2].body.clone();
    assert_eq!(before["messages"].as_array().unwrap().len(), 5);
    chat.fake.script([Script::ok("NOI is $4.1M; exit cap 6.25%; open question: rollover in 2027.", 700, 40)]);
    let (status, summary) = chat.app.post(&chat.client, "/api/chat/summarise", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["summary"], true);
    let summary_call = &chat.fake.requests()[3].body;
    assert!(summary_call["messages"][0]["content"].as_str().unwrap().contains("Analyst: And the exit?"), "the transcript is summarised");
    assert_eq!(summary_call["max_tokens"], app::chat::SUMMARY_MAX_TOKENS);
    let ops: Vec<String> = records(&chat).await.into_iter().map(|r| r.5).collect();
    assert_eq!(ops.last().map(String::as_str), Some("summary"), "recorded as operation summary: {ops:?}");
    let (_, sent) = chat.send(Some(thread), "So what should we bid?").await;
    assert_eq!(sent["dropped"], 6, "the six messages the summary sums up were not sent; the summary itself was");
    let after = &chat.fake.requests()[4].body;
    let sent: Vec<&str> = after["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(sent, ["So what should we bid?"], "the window starts after the summary");
    assert!(after["system"].as_str().unwrap().contains("NOI is $4.1M; exit cap 6.25%"), "the summary goes with the deal's facts");
    let size = |body: &Value| body.to_string().len();
    assert!(size(after) * 2 < size(&before), "the call is much smaller: {} vs {} bytes", size(after), size(&before));
    // The summary is shown in the conversation, and with the view for the browser's estimate.
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(view["summary"]["id"], summary["id"]);
    // Nothing new to summarise right after a summary... until the next exchange.
    let (status, body) = chat.app.post(&chat.client, "/api/chat/summarise", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(status, 200, "the exchange after the summary can be summarised: {body}");
    let (status, body) = chat.app.post(&chat.client, "/api/chat/summarise", &[("thread_id", &thread.to_string())]).await;
    assert_eq!((status, body["kind"].as_str()), (400, Some("invalid")), "{body}");
}

/// A summary asked for while a reply is still being written (another tab, a reload)
/// sums up only the exchanges that are whole: the question and the reply stored after
/// the summary are carried by the next call, not lost.
async fn a_summary_never_loses_a_reply_still_being_written(engine: Engine) {
    let chat = Chat::start(engine).await;
    let (_, sent) = chat.send(None, "What is the NOI?").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    chat.send(Some(thread), "And the cap rate?").await;
    let pieces: Vec<String> = (1..=6).map(|i| format!("r{i} ")).collect();
    chat.fake.script([
        Script::Stream { pieces, input: 90, usage_each: false, pause_after: Some((2, Duration::from_millis(600))), error_after: None },
        Script::ok("NOI $4.1M; cap rate 6.1%.", 300, 20),
    ]);
    let mut events = stream(&chat, &chat.client, Some(thread), "Walk me through the rent roll").await;
    started(&mut events).await;
    let (status, summary) = chat.app.post(&chat.client, "/api/chat/summarise", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(status, 200, "{summary}");
    let summarised = chat.fake.requests().last().unwrap().body["messages"][0]["content"].as_str().unwrap().to_string();
    assert!(summarised.contains("And the cap rate?") && !summarised.contains("rent roll"), "only whole exchanges: {summarised}");
    let (_, done) = events.rest().await;
    assert_eq!(done["done"]["result"]["reply"]["content"], "r1 r2 r3 r4 r5 r6 ");
    chat.send(Some(thread), "So what do we bid?").await;
    let next = chat.fake.requests().last().unwrap().body.clone();
    let carried: Vec<&str> = next["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(carried, ["Walk me through the rent roll", "r1 r2 r3 r4 r5 r6 ", "So what do we bid?"], "the exchange after the summary is carried");
    assert!(next["system"].as_str().unwrap().contains("NOI $4.1M; cap rate 6.1%."));
    // The browser's estimate starts where the summary ends, as the server does.
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    let through = view["summary"]["summary_through"].as_i64().unwrap();
    let question = view["messages"].as_array().unwrap().iter().find(|m| m["content"] == "Walk me through the rent roll").unwrap()["id"].as_i64().unwrap();
    assert!(through < question, "the summary ends before the question it could not take ({through} vs {question})");
    // A question still waiting for its reply is never summed up on its own.
    let (status, body) = chat.app.post(&chat.client, "/api/chat/summarise", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(status, 200, "the whole exchanges since: {body}");
    let (status, body) = chat.app.post(&chat.client, "/api/chat/summarise", &[("thread_id", &thread.to_string())]).await;
    assert_eq!((status, body["kind"].as_str()), (400, Some("invalid")), "{body}");
}

/// A pinned message is sent with every later call, even once the window has moved past it.
async fn a_pinned_message_is_never_dropped(engine: Engine) {
    let mut settings = fast_settings();
    settings.history.max_messages = 3;
    let chat = Chat::start_with(engine, settings).await;
    let (_, sent) = chat.send(None, "Use a 6.25% exit cap throughout.").await;
    let thread = sent["thread_id"].as_i64().unwrap();
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    let first = view["messages"][0]["id"].as_i64().unwrap().to_string();
    let form = [("thread_id", thread.to_string()), ("message_id", first.clone()), ("pinned", "true".into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = chat.app.post(&chat.client, "/api/chat/pin", &form).await;
    assert_eq!(status, 200, "{body}");
    for q in ["Q2", "Q3", "Q4"] {
        chat.send(Some(thread), q).await;
    }
    let last = chat.fake.requests().last().unwrap().body.clone();
    let sent: Vec<&str> = last["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert!(!sent.contains(&"Use a 6.25% exit cap throughout."), "out of the window: {sent:?}");
    assert!(last["system"].as_str().unwrap().contains("Analyst: Use a 6.25% exit cap throughout."), "but pinned");
    let (_, view) = chat.app.post(&chat.client, "/api/chat/thread", &[("thread_id", &thread.to_string())]).await;
    assert_eq!(view["pinned"][0]["id"].as_i64().unwrap().to_string(), first);
    // Only the author pins, and only messages of that conversation.
    let other = chat.app.signed_in("bo@firm.com", UserRole::Analyst).await;
    assert_eq!(chat.app.post(&other, "/api/chat/pin", &form).await.0, 404);
    let wrong = [("thread_id", thread.to_string()), ("message_id", "999999".into()), ("pinned", "true".into())];
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(chat.app.post(&chat.client, "/api/chat/pin", &wrong).await.0, 404);
    // Unpinned, it is no longer sent.
    let unpin = [("thread_id", thread.to_string()), ("message_id", first), ("pinned", "false".into())];
    let unpin: Vec<(&str, &str)> = unpin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(chat.app.post(&chat.client, "/api/chat/pin", &unpin).await.0, 200);
    chat.send(Some(thread), "Q5").await;
    assert!(!chat.fake.requests().last().unwrap().body["system"].as_str().unwrap().contains("6.25%"));
}

/// A database made before summaries: its ledger is rebuilt at start to take them,
/// keeping every record, its id, the messages that point at it, and the indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_sqlite_ledger_is_rebuilt_to_take_summaries() {
    let chat = Chat::start(Engine::Sqlite).await;
    chat.fake.script([Script::ok("First.", 100, 10), Script::ok("Second.", 100, 10)]);
    let (_, sent) = chat.send(None, "One").await;
    chat.send(Some(sent["thread_id"].as_i64().unwrap()), "Two").await;
    let db = &chat.app.state.db;
    let index_sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_records' AND sql IS NOT NULL ORDER BY name";
    let indexes: Vec<(String, String)> = sqlx::query_as(index_sql).fetch_all(&db.pool).await.unwrap();
    assert!(indexes.iter().any(|(_, sql)| sql.contains("WHERE reservation_id IS NOT NULL")), "a partial index among them: {indexes:?}");
    // As before this change: the CHECK without 'summary'.
    assert!(db.rewrite_sqlite_usage_check("'title', 'summary')", "'title')").await.unwrap());
    let summary_insert = "INSERT INTO usage_records (user_id, operation, model, input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, estimated_input_tokens, cost_microusd, latency_ms, outcome, created_at) VALUES (1, 'summary', 'm', 1, 1, 0, 0, 1, 1, 1, 'ok', 1)";
    assert!(sqlx::query(summary_insert).execute(&db.pool).await.is_err(), "the old CHECK refuses summaries");
    let before: Vec<(i64, i64, i64)> = sqlx::query_as("SELECT id, input_tokens, output_tokens FROM usage_records ORDER BY id").fetch_all(&db.pool).await.unwrap();
    db.migrate().await.unwrap();
    let after: Vec<(i64, i64, i64)> = sqlx::query_as("SELECT id, input_tokens, output_tokens FROM usage_records ORDER BY id").fetch_all(&db.pool).await.unwrap();
    assert_eq!(after, before, "every record kept, with its id");
    sqlx::query(summary_insert).execute(&db.pool).await.expect("summaries are recorded now");
    let rebuilt: Vec<(String, String)> = sqlx::query_as(index_sql).fetch_all(&db.pool).await.unwrap();
    assert_eq!(rebuilt, indexes, "its indexes rebuilt as they were");
    let dangling: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&db.pool).await.unwrap();
    assert!(dangling.is_empty(), "messages still point at their records: {dangling:?}");
    // Foreign keys are enforced again afterwards.
    let bad = sqlx::query("INSERT INTO chat_messages (thread_id, role, content, usage_id, created_at) VALUES (1, 'assistant', 'x', 999999, 1)").execute(&db.pool).await;
    assert!(bad.is_err(), "a message cannot point at a record that does not exist");
    assert!(!db.rewrite_sqlite_usage_check("'title')", "'title', 'summary')").await.unwrap(), "done once");
}

on_both_engines!(
    a_streamed_reply_arrives_in_pieces_and_is_saved_whole,
    stop_bills_exactly_what_was_written,
    only_the_author_can_stop_a_reply,
    a_stop_stops_the_reply_it_names_and_no_other,
    a_disconnect_mid_stream_still_saves_the_whole_reply,
    a_529_before_the_first_byte_is_retried,
    an_error_event_mid_stream_is_recorded_and_not_retried,
    a_summary_shrinks_the_next_calls_input,
    a_pinned_message_is_never_dropped,
    a_summary_never_loses_a_reply_still_being_written,
);
