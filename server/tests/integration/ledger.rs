//! The ledger gateway: every attempt that reached Claude recorded once, and no token
//! lost, invented or misplaced under faults — a panic mid-call, an answer that cannot be
//! read, a record that cannot be written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::auth::UserRole;
use app::claude::client::{ClaudeClient, ClientConfig, Endpoint};
use app::claude::history::Turn;
use app::claude::recorder::{Alongside, AttemptRecord, CallEnd, RecordError, ReplyInsert, ReplyWrite, UsageRecorder, WrittenRecord};
use app::claude::retry::RetryPolicy;
use app::claude::types::{CallMeta, ClaudeReply, ClaudeRequest, Reservation, Settlement};
use app::claude::{Operation, Speaker};
use app::settings::Settings;
use app::usage::ledger::Ledger;
use async_trait::async_trait;
use serde_json::Value;

use crate::support::fake_claude::{FakeClaude, Script};
use crate::support::{Engine, TestApp, kind, test_settings};

/// Keeps what it is asked to record, in memory.
#[derive(Default)]
struct InMemoryRecorder {
    records: Mutex<Vec<(CallMeta, AttemptRecord, CallEnd)>>,
}

#[async_trait]
impl UsageRecorder for InMemoryRecorder {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        let mut records = self.records.lock().unwrap();
        records.push((meta.clone(), attempt.clone(), end));
        Ok(records.len() as i64)
    }
}

fn client(endpoint: Endpoint, recorder: Arc<InMemoryRecorder>) -> ClaudeClient {
    let policy = RetryPolicy { max_retries: 2, base: Duration::from_millis(5), max_backoff: Duration::from_millis(20), retry_after_cap: Duration::from_millis(50) };
    let config = ClientConfig { endpoint, policy, connect_timeout: Duration::from_secs(1), timeout: Duration::from_secs(1), user_key: [1; 32] };
    ClaudeClient::new(config, recorder).unwrap()
}

fn meta() -> CallMeta {
    CallMeta {
        user_id: 7,
        deal_id: Some(3),
        operation: Operation::Chat,
        estimated_input_tokens: 400,
        reservation: Some(Reservation { id: 42, input_tokens: 450, output_tokens: 1000 }),
        swap: None,
    }
}

fn request() -> ClaudeRequest {
    ClaudeRequest { model: "claude-sonnet-5-5".into(), max_tokens: 1000, system: "sys".into(), messages: vec![Turn { role: Speaker::User, content: "Hi".into() }], tool: None }
}

#[tokio::test]
async fn every_attempt_that_reached_claude_is_recorded_once() {
    let fake = FakeClaude::start().await;
    fake.script([Script::status(500), Script::status(529), Script::ok("Done.", 300, 20)]);
    let recorder = Arc::new(InMemoryRecorder::default());
    let outcome = client(fake.endpoint(), recorder.clone()).call(&meta(), &request()).await;
    assert_eq!(outcome.result.unwrap().text, "Done.");
    assert_eq!(outcome.settlement, Settlement::Settled);
    let records = recorder.records.lock().unwrap();
    let ends: Vec<CallEnd> = records.iter().map(|r| r.2).collect();
    assert_eq!(ends, [CallEnd::Retrying { attempt: 1 }, CallEnd::Retrying { attempt: 2 }, CallEnd::Final], "one record per attempt, numbered; the last settles");
    assert_eq!(records[2].1.usage.input_tokens, 300);
    assert!(records.iter().all(|r| r.0.reservation.map(|r| r.id) == Some(42)));
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn connect_failures_are_retried_but_never_recorded() {
    // A port nothing listens on: no connection, nothing billed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let recorder = Arc::new(InMemoryRecorder::default());
    let outcome = client(Endpoint::http(format!("http://{addr}"), "key"), recorder.clone()).call(&meta(), &request()).await;
    assert_eq!(outcome.result.unwrap_err().kind, app::error::ErrorKind::UpstreamError);
    assert_eq!(outcome.settlement, Settlement::NotReached, "the reservation can simply be released");
    assert!(recorder.records.lock().unwrap().is_empty());
}

/// Settings for calls against the fake: no cooldown, fast retries, a 1 s timeout.
fn settings() -> Settings {
    let mut s = test_settings();
    s.chat.cooldown_seconds = 0;
    s.claude.backoff_base_ms = 5;
    s.claude.backoff_max_ms = 20;
    s.claude.timeout_seconds = 1;
    s.claude.retry_after_cap_seconds = 1;
    s.claude.max_tokens_chat = 500;
    s
}

struct World {
    app: TestApp,
    client: reqwest::Client,
    deal_id: String,
}

impl World {
    async fn on(app: TestApp) -> World {
        let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
        let (_, id) = app
            .post(&client, "/api/deals/create", &[("name", "Harbor Point"), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")])
            .await;
        World { app, client, deal_id: id.as_i64().unwrap().to_string() }
    }

    async fn send(&self, message: &str) -> (u16, Value) {
        self.app.post(&self.client, "/api/chat/send", &[("deal_id", &self.deal_id), ("message", message)]).await
    }

    async fn records(&self) -> Vec<(String, i64, i64, i64, i64)> {
        sqlx::query_as("SELECT outcome, usage_unknown, input_tokens, output_tokens, estimated_input_tokens FROM usage_records ORDER BY id")
            .fetch_all(&self.app.state.db.pool)
            .await
            .unwrap()
    }

    /// Claude's replies stored in the conversations: (usage record, text).
    async fn replies(&self) -> Vec<(Option<i64>, String)> {
        sqlx::query_as("SELECT usage_id, content FROM chat_messages WHERE role = 'assistant' ORDER BY id").fetch_all(&self.app.state.db.pool).await.unwrap()
    }

    async fn record_ids(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM usage_records ORDER BY id").fetch_all(&self.app.state.db.pool).await.unwrap()
    }

    async fn ledger_agrees(&self) {
        app::usage::store::check(&self.app.state.db, self.app.state.settings.time.tz()).await.expect("aggregates and counters agree");
    }
}

/// A recorder in front of the ledger that panics the first time it is used.
struct PanicOnce {
    ledger: Ledger,
    panicked: Mutex<bool>,
}

#[async_trait]
impl UsageRecorder for PanicOnce {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        let first = !std::mem::replace(&mut *self.panicked.lock().unwrap(), true);
        if first {
            panic!("injected fault in the middle of a call");
        }
        self.ledger.record(meta, attempt, end).await
    }
}

async fn a_panic_in_the_middle_of_a_call_releases_its_reservation(engine: Engine) {
    let fake = FakeClaude::start().await;
    let app = TestApp::spawn_with_recorder(engine, settings(), fake.endpoint(), |ledger| Arc::new(PanicOnce { ledger, panicked: Mutex::new(false) })).await;
    let w = World::on(app).await;
    let (status, body) = w.send("What is the cap rate?").await;
    assert_eq!((status, kind(&body)), (500, "internal"));
    // The guard gives the reservation back on a task of its own.
    for _ in 0..50 {
        if w.app.count("usage_reservations").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(w.app.count("usage_reservations").await, 0, "no reservation stranded by the panic");
    // And the next call works and is recorded.
    assert_eq!(w.send("Again?").await.0, 200);
    assert_eq!(w.records().await.len(), 1);
    w.ledger_agrees().await;
}

/// Claude answered (so billed) but the answer cannot be read: one record, at the call's
/// reservation (reserved input + max_tokens), flagged; no retry, no reservation left.
async fn unreadable_answers_are_billed_at_their_reservation(engine: Engine) {
    for fault in [Script::Malformed, Script::DropMidBody, Script::SlowBody(Duration::from_secs(3))] {
        let fake = FakeClaude::start().await;
        let app = TestApp::spawn_with(engine, settings(), fake.endpoint()).await;
        let w = World::on(app).await;
        fake.script([fault.clone(), Script::ok("never sent", 1, 1)]);
        let (status, body) = w.send("What is the cap rate?").await;
        assert_eq!((status, kind(&body)), (502, "upstream_error"), "{fault:?}");
        assert_eq!(fake.requests().len(), 1, "{fault:?}: not retried: it was billed already");
        let records = w.records().await;
        assert_eq!(records.len(), 1, "{fault:?}: one record");
        let (outcome, unknown, input, output, estimated) = records[0].clone();
        assert_eq!((outcome.as_str(), unknown), ("error", 1), "{fault:?}");
        assert!(input >= estimated && estimated > 0, "{fault:?}: the reserved input, never below the estimate");
        assert_eq!(output, 500, "{fault:?}: max_tokens, the most it could have written");
        assert_eq!(w.app.count("usage_reservations").await, 0, "{fault:?}");
        w.ledger_agrees().await;
        // The dashboard shows it as unknown usage.
        let admin = w.app.signed_in("root@firm.com", UserRole::Admin).await;
        let usage: Value = admin.get(format!("{}/api/usage?group_by=day", w.app.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(usage["totals"]["unknown_usage_calls"], 1, "{fault:?}");
    }
}

/// A recorder in front of the ledger whose final writes always fail.
struct FinalWritesFail {
    ledger: Ledger,
}

#[async_trait]
impl UsageRecorder for FinalWritesFail {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        match end {
            CallEnd::Final => Err(RecordError("database unreachable (injected)".into())),
            CallEnd::Retrying { .. } => self.ledger.record(meta, attempt, end).await,
        }
    }
}

/// An analyst's question answered "Answered." through `recorder` in front of the ledger.
async fn answered_through(engine: Engine, recorder: impl FnOnce(Ledger) -> Arc<dyn UsageRecorder>) -> (World, Value) {
    let fake = FakeClaude::start().await;
    let w = World::on(TestApp::spawn_with_recorder(engine, settings(), fake.endpoint(), recorder).await).await;
    fake.script([Script::ok("Answered.", 300, 40)]);
    let (status, body) = w.send("What is the cap rate?").await;
    assert_eq!(status, 200, "{body}");
    (w, body)
}

async fn a_record_that_cannot_be_written_keeps_its_reservation_until_settled(engine: Engine) {
    let (w, _) = answered_through(engine, |ledger| Arc::new(FinalWritesFail { ledger })).await;
    assert_eq!(w.replies().await, [(None, "Answered.".to_string())], "the reply is kept all the same");
    assert_eq!(w.records().await.len(), 0, "the record could not be written...");
    assert_eq!(w.app.count("usage_reservations").await, 1, "...so the reservation stays: the spend is not forgotten");
    let status = crate::support::meters(&w.app.post(&w.client, "/api/budget/status", &[("deal_id", &w.deal_id)]).await.1);
    assert!(status["deal"]["reserved"].as_i64().unwrap() > 0, "and keeps holding budget");
    // Once it can no longer belong to a live call, it is settled at the reserved amount.
    sqlx::query("UPDATE usage_reservations SET expires_at = 0").execute(&w.app.state.db.pool).await.unwrap();
    assert_eq!(app::usage::ledger::Ledger::of(&w.app.state).settle_expired().await.unwrap(), 1);
    let records = w.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].1, 1, "flagged usage_unknown");
    assert_eq!(records[0].3, 500, "counted at max_tokens");
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
}

/// The ledger, noting what each record written with a reply said it stored, and how
/// the reply was asked for (`Watched`); with `fail_insert`, the reply's inserts sent in
/// the record's own statement (PostgreSQL) fail in the database once the record and
/// everything it adds to were written by that statement.
#[derive(Default)]
struct WithReplies {
    written: Arc<Mutex<Vec<(i64, Option<i64>)>>>,
    calls: Arc<ReplyCalls>,
    fail_insert: bool,
}

/// `WithReplies`' spy in front of a ledger.
struct Spied {
    ledger: Ledger,
    spy: Arc<WithReplies>,
}

#[async_trait]
impl UsageRecorder for Spied {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        self.ledger.record(meta, attempt, end).await
    }

    async fn record_with(&self, meta: &CallMeta, attempt: &AttemptRecord, with: Alongside<'_>) -> Result<(i64, Option<i64>), RecordError> {
        let mut watched = Watched { write: with.write, calls: &self.spy.calls, fail_insert: self.spy.fail_insert };
        let ids = self.ledger.record_with(meta, attempt, Alongside { write: &mut watched, reply: with.reply }).await?;
        self.spy.written.lock().unwrap().push(ids);
        Ok(ids)
    }
}

/// How often the ledger asked a reply for its insert (`ReplyWrite::insert`, sent in the
/// record's statement) and for its write (`ReplyWrite::write`, in the record's
/// transaction).
#[derive(Default)]
struct ReplyCalls {
    inserts: std::sync::atomic::AtomicUsize,
    writes: std::sync::atomic::AtomicUsize,
}

impl ReplyCalls {
    /// (inserts, writes) on PostgreSQL, whose record takes the reply in its statement,
    /// and on SQLite, which writes it in the record's transaction.
    fn expected(engine: Engine) -> (usize, usize) {
        if engine == Engine::Postgres { (1, 0) } else { (0, 1) }
    }

    fn counted(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.inserts.load(SeqCst), self.writes.load(SeqCst))
    }
}

async fn a_reply_is_stored_in_its_records_transaction(engine: Engine) {
    let spy = Arc::new(WithReplies::default());
    let (w, body) = answered_through(engine, |ledger| Arc::new(Spied { ledger, spy: spy.clone() })).await;
    let records = w.record_ids().await;
    assert_eq!(records.len(), 1);
    assert_eq!(w.replies().await, [(Some(records[0]), "Answered.".to_string())]);
    let (reply_id,): (i64,) = sqlx::query_as("SELECT id FROM chat_messages WHERE role = 'assistant'").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(*spy.written.lock().unwrap(), [(records[0], Some(reply_id))], "the record's write stored the reply");
    assert_eq!(spy.calls.counted(), ReplyCalls::expected(engine), "(inserts, writes)");
    assert_eq!(body["reply"]["content"], "Answered.", "{body}");
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
}

/// A recorder in front of the ledger whose writes of a reply with its record fail after
/// the reply's row is written (a fault between the reply and the commit).
struct ReplyWritesFail {
    ledger: Ledger,
}

#[async_trait]
impl UsageRecorder for ReplyWritesFail {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        self.ledger.record(meta, attempt, end).await
    }

    async fn record_with(&self, meta: &CallMeta, attempt: &AttemptRecord, with: Alongside<'_>) -> Result<(i64, Option<i64>), RecordError> {
        let mut failing = FailsAfterWriting { write: with.write };
        self.ledger.record_with(meta, attempt, Alongside { write: &mut failing, reply: with.reply }).await
    }
}

struct FailsAfterWriting<'a> {
    write: &'a mut dyn ReplyWrite,
}

#[async_trait]
impl ReplyWrite for FailsAfterWriting<'_> {
    async fn write(&mut self, conn: &mut sqlx::AnyConnection, record: WrittenRecord, reply: &ClaudeReply) -> Result<i64, sqlx::Error> {
        self.write.write(conn, record, reply).await?;
        Err(sqlx::Error::Protocol("reply write failed (injected)".into()))
    }

    async fn find(&mut self, conn: &mut sqlx::AnyConnection, record: i64) -> Result<Option<i64>, sqlx::Error> {
        self.write.find(conn, record).await
    }
}

async fn a_reply_that_cannot_be_written_with_its_record_never_costs_the_record(engine: Engine) {
    let (w, body) = answered_through(engine, |ledger| Arc::new(ReplyWritesFail { ledger })).await;
    let records = w.record_ids().await;
    assert_eq!(records.len(), 1, "the record is written alone");
    assert_eq!(w.app.count("usage_reservations").await, 0, "and settles the reservation");
    // The reply written in the failed transaction went with it: stored once, afterwards.
    assert_eq!(w.replies().await, [(Some(records[0]), "Answered.".to_string())]);
    // The send returns the reply as stored afterwards, not the one rolled back.
    let (kept,): (i64,) = sqlx::query_as("SELECT id FROM chat_messages WHERE role = 'assistant'").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(body["reply"]["id"], kept, "{body}");
    assert_eq!(body["reply"]["usage"]["output_tokens"], 40, "{body}");
    w.ledger_agrees().await;
}

/// An operation's reply write, counted (`ReplyCalls`); with `fail_insert`, its insert
/// fails in the database after its row is written.
struct Watched<'a> {
    write: &'a mut dyn ReplyWrite,
    calls: &'a ReplyCalls,
    fail_insert: bool,
}

#[async_trait]
impl ReplyWrite for Watched<'_> {
    async fn write(&mut self, conn: &mut sqlx::AnyConnection, record: WrittenRecord, reply: &ClaudeReply) -> Result<i64, sqlx::Error> {
        self.calls.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.write.write(conn, record, reply).await
    }

    async fn find(&mut self, conn: &mut sqlx::AnyConnection, record: i64) -> Result<Option<i64>, sqlx::Error> {
        self.write.find(conn, record).await
    }

    fn insert(&mut self, reply: &ClaudeReply) -> Option<ReplyInsert> {
        self.calls.inserts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut insert = self.write.insert(reply)?;
        if self.fail_insert {
            // The row is written, then its id cannot be returned: the statement fails there.
            insert.sql = insert.sql.replace("RETURNING id", "RETURNING id / 0");
            assert!(insert.sql.ends_with("id / 0"), "{}", insert.sql);
        }
        Some(insert)
    }

    fn inserted(&mut self, id: i64, record: WrittenRecord, reply: &ClaudeReply) {
        self.write.inserted(id, record, reply);
    }
}

/// On PostgreSQL a reply goes in its record's statement, with no transaction around it:
/// one that fails there takes the record, its aggregates, counters and the reservation's
/// delete with it, and the record is then written alone, the reply after it. (SQLite
/// writes the reply in the record's transaction and never asks for the insert.)
async fn a_reply_that_fails_in_its_records_statement_leaves_nothing_half_written(engine: Engine) {
    let spy = Arc::new(WithReplies { fail_insert: true, ..Default::default() });
    let (w, body) = answered_through(engine, |ledger| Arc::new(Spied { ledger, spy: spy.clone() })).await;
    let records = w.record_ids().await;
    assert_eq!(spy.calls.counted(), ReplyCalls::expected(engine), "(inserts, writes): the failed statement is not retried");
    if engine == Engine::Postgres {
        assert_eq!(*spy.written.lock().unwrap(), [(records[0], None)], "the record was written without its reply");
    }
    assert_eq!(records.len(), 1, "the record is written once");
    assert_eq!(w.app.count("usage_reservations").await, 0, "and settles the reservation");
    assert_eq!(w.replies().await, [(Some(records[0]), "Answered.".to_string())]);
    let (kept,): (i64,) = sqlx::query_as("SELECT id FROM chat_messages WHERE role = 'assistant'").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(body["reply"]["id"], kept, "{body}");
    w.ledger_agrees().await;
}

/// A recorder in front of the ledger that sends every record's write twice, as a write
/// retried after its answer was lost is sent, and keeps what each of the two returned;
/// with `then_alone`, the second write of a call's last record goes with a reply that
/// cannot be written (`Unwritable`), so the record is sent again alone.
struct SentTwice {
    ledger: Ledger,
    returned: Arc<Mutex<Vec<[(i64, Option<i64>); 2]>>>,
    then_alone: bool,
}

#[async_trait]
impl UsageRecorder for SentTwice {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        let first = self.ledger.record(meta, attempt, end).await?;
        let again = self.ledger.record(meta, attempt, end).await?;
        self.returned.lock().unwrap().push([(first, None), (again, None)]);
        Ok(first)
    }

    async fn record_with(&self, meta: &CallMeta, attempt: &AttemptRecord, with: Alongside<'_>) -> Result<(i64, Option<i64>), RecordError> {
        let first = self.ledger.record_with(meta, attempt, Alongside { write: &mut *with.write, reply: with.reply }).await?;
        let again = if self.then_alone {
            let mut unwritable = Unwritable { write: with.write };
            self.ledger.record_with(meta, attempt, Alongside { write: &mut unwritable, reply: with.reply }).await?
        } else {
            self.ledger.record_with(meta, attempt, with).await?
        };
        self.returned.lock().unwrap().push([first, again]);
        Ok(again)
    }
}

/// A reply write that cannot be written (its insert's SQL and its write fail), and finds
/// what is stored as the operation's own does.
struct Unwritable<'a> {
    write: &'a mut dyn ReplyWrite,
}

#[async_trait]
impl ReplyWrite for Unwritable<'_> {
    async fn write(&mut self, _: &mut sqlx::AnyConnection, _: WrittenRecord, _: &ClaudeReply) -> Result<i64, sqlx::Error> {
        Err(sqlx::Error::Protocol("reply write failed (injected)".into()))
    }

    async fn find(&mut self, conn: &mut sqlx::AnyConnection, record: i64) -> Result<Option<i64>, sqlx::Error> {
        self.write.find(conn, record).await
    }

    fn insert(&mut self, _: &ClaudeReply) -> Option<ReplyInsert> {
        Some(ReplyInsert { sql: "SELECT id FROM no_such_table".into(), args: Vec::new() })
    }
}

/// A question answered "Answered." under `SentTwice` (`then_alone` as given): the
/// record is written once, the reply stored once, and both writes return the two.
async fn answered_and_sent_twice(engine: Engine, then_alone: bool) -> (World, FakeClaude, Arc<Mutex<Vec<[(i64, Option<i64>); 2]>>>) {
    let returned = Arc::new(Mutex::new(Vec::new()));
    let fake = FakeClaude::start().await;
    let recorder = |ledger| -> Arc<dyn UsageRecorder> { Arc::new(SentTwice { ledger, returned: returned.clone(), then_alone }) };
    let w = World::on(TestApp::spawn_with_recorder(engine, settings(), fake.endpoint(), recorder).await).await;
    fake.script([Script::ok("Answered.", 300, 40)]);
    let (status, body) = w.send("What is the cap rate?").await;
    assert_eq!(status, 200, "{body}");
    let records = w.record_ids().await;
    assert_eq!(records.len(), 1, "written once");
    assert_eq!(w.replies().await, [(Some(records[0]), "Answered.".to_string())], "and its reply stored once");
    let (reply,): (i64,) = sqlx::query_as("SELECT id FROM chat_messages WHERE role = 'assistant'").fetch_one(&w.app.state.db.pool).await.unwrap();
    assert_eq!(*returned.lock().unwrap(), [[(records[0], Some(reply)); 2]], "both writes return the record and the reply");
    assert_eq!(body["reply"]["id"], reply, "{body}");
    assert_eq!(body["reply"]["content"], "Answered.", "{body}");
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
    (w, fake, returned)
}

/// A call's last record names its reservation and is written once: sent again (its
/// answer lost), the write finds the record — and the reply — the first one stored.
async fn a_last_record_sent_again_is_written_once(engine: Engine) {
    let (w, fake, returned) = answered_and_sent_twice(engine, false).await;
    // A failed call's last record (no reply to store with it), sent twice: written once.
    fake.script([Script::status(400)]);
    assert_eq!(w.send("And the vacancy?").await.0, 502);
    let records = w.record_ids().await;
    assert_eq!(records.len(), 2, "one record for the failed call");
    assert_eq!(returned.lock().unwrap()[1], [(records[1], None); 2]);
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
}

/// The record sent again alone, after its write with the reply failed (on PostgreSQL,
/// where the reply goes in the record's statement), still finds the reply the first
/// write stored: it is not stored twice.
async fn a_last_record_sent_again_alone_finds_its_reply(engine: Engine) {
    answered_and_sent_twice(engine, true).await;
}

/// An attempt after which the call was retried names its reservation and its number:
/// its record, sent again (its answer lost), is written once — the attempt counts once
/// in the budgets and the dashboard — and both writes return it.
async fn a_retried_attempt_sent_again_is_written_once(engine: Engine) {
    let returned = Arc::new(Mutex::new(Vec::new()));
    let fake = FakeClaude::start().await;
    let recorder = |ledger| -> Arc<dyn UsageRecorder> { Arc::new(SentTwice { ledger, returned: returned.clone(), then_alone: false }) };
    let w = World::on(TestApp::spawn_with_recorder(engine, settings(), fake.endpoint(), recorder).await).await;
    fake.script([Script::status(500), Script::status(529), Script::ok("Answered.", 300, 40)]);
    let (status, body) = w.send("What is the cap rate?").await;
    assert_eq!(status, 200, "{body}");
    let records = w.record_ids().await;
    assert_eq!(records.len(), 3, "one record per attempt: {records:?}");
    let returned = returned.lock().unwrap().clone();
    assert_eq!(returned[..2], [[(records[0], None); 2], [(records[1], None); 2]], "each failed attempt's two writes return its one record");
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
}

/// A recorder in front of the ledger under which a call's reservation expires, and is
/// settled as unknown usage, just before the call's last record is written — a call that
/// outlived its reservation; with `released`, the reservation is deleted instead, with
/// no record.
struct ExpiresFirst {
    ledger: Ledger,
    db: Arc<std::sync::OnceLock<app::db::Db>>,
    released: bool,
}

#[async_trait]
impl UsageRecorder for ExpiresFirst {
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError> {
        self.ledger.record(meta, attempt, end).await
    }

    async fn record_with(&self, meta: &CallMeta, attempt: &AttemptRecord, with: Alongside<'_>) -> Result<(i64, Option<i64>), RecordError> {
        let db = self.db.get().expect("the app's database");
        if self.released {
            sqlx::query("DELETE FROM usage_reservations").execute(&db.pool).await.unwrap();
        } else {
            sqlx::query("UPDATE usage_reservations SET expires_at = 0").execute(&db.pool).await.unwrap();
            assert_eq!(self.ledger.settle_expired().await.unwrap(), 1);
        }
        self.ledger.record_with(meta, attempt, with).await
    }
}

/// A question answered "Answered." while `ExpiresFirst` (`released` as given) takes the
/// call's reservation away.
async fn answered_once_the_reservation_is_gone(engine: Engine, released: bool) -> (World, Value) {
    let db = Arc::new(std::sync::OnceLock::new());
    let fake = FakeClaude::start().await;
    let recorder = |ledger| -> Arc<dyn UsageRecorder> { Arc::new(ExpiresFirst { ledger, db: db.clone(), released }) };
    let w = World::on(TestApp::spawn_with_recorder(engine, settings(), fake.endpoint(), recorder).await).await;
    db.set(w.app.state.db.clone()).unwrap();
    fake.script([Script::ok("Answered.", 300, 40)]);
    let (status, body) = w.send("What is the cap rate?").await;
    assert_eq!(status, 200, "{body}");
    (w, body)
}

/// The settlement stands for the call: its record is not written as well (the call
/// would count twice), and the reply is kept, with the settlement's record.
async fn a_call_whose_reservation_was_settled_on_expiry_counts_once(engine: Engine) {
    let (w, body) = answered_once_the_reservation_is_gone(engine, false).await;
    let records = w.records().await;
    assert_eq!(records.len(), 1, "one record: {records:?}");
    assert_eq!((records[0].0.as_str(), records[0].1), ("error", 1), "the settlement's, at the reserved amount");
    let ids = w.record_ids().await;
    assert_eq!(w.replies().await, [(Some(ids[0]), "Answered.".to_string())], "the reply is kept once, with it");
    assert_eq!(body["reply"]["content"], "Answered.", "{body}");
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
}

/// A reservation gone with no record naming it leaves nothing to settle: the call's
/// record is written all the same, with its reply.
async fn a_call_whose_reservation_was_released_is_still_recorded(engine: Engine) {
    let (w, body) = answered_once_the_reservation_is_gone(engine, true).await;
    let records = w.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!((records[0].0.as_str(), records[0].1, records[0].2), ("ok", 0, 300), "the call's own record");
    let ids = w.record_ids().await;
    assert_eq!(w.replies().await, [(Some(ids[0]), "Answered.".to_string())]);
    assert_eq!(body["reply"]["usage"]["output_tokens"], 40, "{body}");
    w.ledger_agrees().await;
}

/// Two records settling one reservation at once (the call's last record and the
/// expiry's settlement, or two instances' settlements): the second waits for the first
/// to commit, then writes nothing.
async fn two_records_settling_one_reservation_at_once_write_one(engine: Engine) {
    use app::usage::store::{self, NewReservation};
    let fake = FakeClaude::start().await;
    let w = World::on(TestApp::spawn_with(engine, settings(), fake.endpoint()).await).await;
    let db = w.app.state.db.clone();
    let (user_id, deal_id) = (crate::support::world::user_id(&w.app, "ana@firm.com").await, w.deal_id.parse::<i64>().unwrap());
    let now = app::time::now_millis();
    let held = NewReservation {
        user_id,
        deal_id,
        operation: "chat".into(),
        model: "claude-sonnet-5-5".into(),
        input_tokens: 400,
        output_tokens: 500,
        estimated_input_tokens: 400,
        cost_microusd: 9_000,
        created_at: now,
        expires_at: now + 60_000,
    };
    let mut tx = db.begin_write().await.unwrap();
    let reservation = store::insert_reservation(&mut tx, &held).await.unwrap();
    tx.commit().await.unwrap();
    let record = store::NewRecord {
        user_id,
        deal_id: Some(deal_id),
        operation: "chat".into(),
        model: "claude-sonnet-5-5".into(),
        usage: app::claude::pricing::TokenUsage { input_tokens: 300, output_tokens: 40, ..Default::default() },
        estimated_input_tokens: 400,
        cost_microusd: 1_500,
        default_price: false,
        requested_model: String::new(),
        savings_microusd: 0,
        latency_ms: 5,
        outcome: "ok".into(),
        request_id: None,
        usage_unknown: false,
        stopped: false,
        created_at: now,
        day: app::time::local_day(now, w.app.state.settings.time.tz()),
    };
    let mut first = db.begin_write().await.unwrap();
    let (id, _) = store::write_record(&mut first, &record, None, Some(store::Claim::Settles(reservation)), None).await.unwrap().expect("written");
    let second = tokio::spawn({
        let (db, record) = (db.clone(), record.clone());
        async move {
            let mut tx = db.begin_write().await.unwrap();
            let written = store::write_record(&mut tx, &record, None, Some(store::Claim::Settles(reservation)), None).await.unwrap();
            tx.rollback().await.unwrap();
            written
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second write waits for the first");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), None, "then writes nothing");
    assert_eq!(w.record_ids().await, [id]);
    assert_eq!(store::claimed_by(&mut *db.read().await.unwrap(), store::Claim::Settles(reservation)).await.unwrap(), Some(id));
    assert_eq!(w.app.count("usage_reservations").await, 0);
    w.ledger_agrees().await;
}

on_both_engines!(
    a_last_record_sent_again_is_written_once,
    a_last_record_sent_again_alone_finds_its_reply,
    a_retried_attempt_sent_again_is_written_once,
    a_call_whose_reservation_was_settled_on_expiry_counts_once,
    a_call_whose_reservation_was_released_is_still_recorded,
    two_records_settling_one_reservation_at_once_write_one,
    a_reply_that_fails_in_its_records_statement_leaves_nothing_half_written,
    a_reply_is_stored_in_its_records_transaction,
    a_reply_that_cannot_be_written_with_its_record_never_costs_the_record,
    a_panic_in_the_middle_of_a_call_releases_its_reservation,
    unreadable_answers_are_billed_at_their_reservation,
    a_record_that_cannot_be_written_keeps_its_reservation_until_settled,
);
