//! Load shedding: a server busy with `server.max_busy_requests` requests refuses one
//! more at once (503 `overloaded`, `Retry-After`), stores nothing for it, and serves
//! again as soon as a place is free; a call waiting on Claude holds no place.

use std::time::Duration;

use app::auth::UserRole;
use sqlx::Connection;

use crate::chat::{Chat, fast_settings};
use crate::support::fake_claude::Script;
use crate::support::{Engine, TestApp, kind, test_settings};

/// Waits (up to 10 s) until the app is working on `n` requests.
async fn until_busy(app: &TestApp, n: usize) {
    for _ in 0..200 {
        if app.state.busy.busy() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app never had {n} busy requests (has {})", app.state.busy.busy());
}

/// Holds the `deals` table against writes, from a connection of the test's own, until
/// dropped after `release`: a deal created meanwhile waits (busy) inside the server.
enum Lock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Lock {
    async fn take(app: &TestApp, engine: Engine) -> Lock {
        match engine {
            Engine::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
                Lock::Sqlite(conn)
            }
            Engine::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                sqlx::query("LOCK TABLE deals IN EXCLUSIVE MODE").execute(&mut conn).await.unwrap();
                Lock::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Lock::Sqlite(mut conn) => sqlx::query("COMMIT").execute(&mut conn).await.map(drop).unwrap(),
            Lock::Postgres(mut conn) => sqlx::query("COMMIT").execute(&mut conn).await.map(drop).unwrap(),
        }
    }
}

async fn a_busy_server_refuses_at_once_and_serves_again(engine: Engine) {
    let mut settings = test_settings();
    settings.server.max_busy_requests = 1;
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    let analyst = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let other = app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let lock = Lock::take(&app, engine).await;
    let creating = {
        let (client, url) = (analyst.clone(), format!("{}/api/deals/create", app.base));
        tokio::spawn(async move {
            let form = [("name", "Harbor Point"), ("address", "1 Pier Rd"), ("property_type", "office"), ("asking_price", "1000000"), ("notes", "")];
            let response = client.post(url).form(&form).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    until_busy(&app, 1).await;

    // The one place is taken: a server function, a page and a send are refused at once.
    for path in ["/api/me", "/api/deals/list"] {
        let response = other.post(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 503, "{path}");
        assert_eq!(response.headers()["retry-after"], "1", "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(kind(&body), "overloaded", "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains("busy"), "{body}");
    }
    let (status, body) = app.post(&analyst, "/api/deals/create", &[("name", "Refused"), ("address", "2 Pier Rd"), ("property_type", "office"), ("asking_price", "1"), ("notes", "")]).await;
    assert_eq!((status, kind(&body)), (503, "overloaded"));
    let page = other.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 503, "a page is refused too");
    assert!(page.text().await.unwrap().contains("busy"));
    // Health checks and static files are never refused.
    assert_eq!(app.client().get(format!("{}/healthz", app.base)).send().await.unwrap().status().as_u16(), 200);
    let asset = app.client().get(format!("{}/pkg/dealdesk.css", app.base)).send().await.unwrap();
    assert_ne!(asset.status().as_u16(), 503, "static files are served (or not found), never shed");

    lock.release().await;
    let (status, text) = creating.await.unwrap();
    assert_eq!(status, 200, "the request that held the place finishes: {text}");
    assert_eq!(app.count("deals").await, 1, "the refused create stored nothing");
    until_busy(&app, 0).await;
    let (status, me) = app.post(&other, "/api/me", &[]).await;
    assert_eq!((status, me["email"].as_str()), (200, Some("bo@firm.com")), "served again once the place is free");
    let metrics = app.state.metrics.encode();
    assert!(metrics.contains("dealdesk_requests_shed_total 4"), "{metrics}");
}

/// A streamed reply paused by Claude: the send waits on Claude, so it holds no place
/// and the only place is free for the analyst's other requests.
async fn a_call_waiting_on_claude_holds_no_place(engine: Engine) {
    let mut settings = fast_settings();
    settings.server.max_busy_requests = 1;
    // Claude pauses for 3 s mid-reply: longer than the fast settings' 1 s timeout.
    settings.claude.timeout_seconds = 10;
    let chat = Chat::start_with(engine, settings).await;
    let pieces: Vec<String> = (1..=4).map(|i| format!("w{i} ")).collect();
    chat.fake.script([Script::Stream { pieces, input: 40, usage_each: false, pause_after: Some((1, Duration::from_secs(3))), error_after: None }]);
    let form = [("deal_id", chat.deal_id.as_str()), ("message", "Walk me through it")];
    let mut response = chat.client.post(format!("{}/api/chat/stream", chat.app.base)).form(&form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut seen = String::new();
    while !seen.contains("\"delta\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("the first piece within 10 s").unwrap();
        seen.push_str(std::str::from_utf8(&chunk.expect("the stream goes on")).unwrap());
    }
    // Claude has written one piece and pauses: the send is waiting on it.
    assert_eq!(chat.app.state.busy.busy(), 0, "a call waiting on Claude holds no place");
    let (status, body) = chat.app.post(&chat.client, "/api/me", &[]).await;
    assert_eq!(status, 200, "{body}");
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("the rest within 10 s").unwrap() {
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains("\"done\""), "the reply is saved whole: {seen}");
    assert_eq!(chat.app.count("chat_messages").await, 2);
}

on_both_engines!(a_busy_server_refuses_at_once_and_serves_again, a_call_waiting_on_claude_holds_no_place);
