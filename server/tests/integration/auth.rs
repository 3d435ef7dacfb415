//! Sign-in, sessions and the page guard, on SQLite and PostgreSQL.


use app::auth::UserRole;
use crate::support;
use crate::support::{Engine, TestApp, kind};

async fn login_succeeds_with_a_safe_cookie(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let client = app.client();
    let response = client
        .post(format!("{}/api/login", app.base))
        .form(&[("email", " Ana@Firm.com "), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers().get("set-cookie").expect("session cookie").to_str().unwrap().to_string();
    assert!(cookie.starts_with("dealdesk_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ana@firm.com");
    assert_eq!(user["role"], "analyst");
    assert!(user.get("password_hash").is_none());

    let (status, me) = app.post(&client, "/api/me", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "ana@firm.com");
    // The session is stored in the database, so another instance would see it.
    assert_eq!(app.count("sessions").await, 1);
}

async fn login_fails_with_wrong_password_or_unknown_email(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let client = app.client();
    for (email, password) in [("ana@firm.com", "wrong password"), ("nobody@firm.com", "correct horse battery")] {
        let (status, body) = app.post(&client, "/api/login", &[("email", email), ("password", password)]).await;
        assert_eq!(status, 401);
        assert_eq!(kind(&body), "unauthorized");
        assert_eq!(body["message"], "Email or password is incorrect.");
    }
    let (_, me) = app.post(&client, "/api/me", &[]).await;
    assert!(me.is_null(), "not signed in after failures: {me}");
}

async fn repeated_failures_are_throttled(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    app.add_user("bo@firm.com", "correct horse battery", UserRole::Analyst).await;
    let client = app.client();
    for _ in 0..5 {
        let (_, body) = app.post(&client, "/api/login", &[("email", "ana@firm.com"), ("password", "guess")]).await;
        assert_eq!(kind(&body), "unauthorized");
    }
    // Even the right password is refused while the email is throttled...
    let (status, body) = app
        .post(&client, "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")])
        .await;
    assert_eq!(status, 429);
    assert_eq!(kind(&body), "throttled");
    // ...while other accounts are unaffected.
    let (status, _) = app
        .post(&client, "/api/login", &[("email", "bo@firm.com"), ("password", "correct horse battery")])
        .await;
    assert_eq!(status, 200);
}

async fn inactive_users_cannot_sign_in(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app.add_user("gone@firm.com", "correct horse battery", UserRole::Analyst).await;
    let client = app.signed_in("gone@firm.com", UserRole::Analyst).await;
    sqlx::query("UPDATE users SET active = 0 WHERE id = $1").bind(id).execute(&app.state.db.pool).await.unwrap();
    // An existing session stops working at once...
    let (status, body) = app.post(&client, "/api/deals/list", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(kind(&body), "unauthorized");
    // ...and signing in again is refused.
    let (status, body) = app
        .post(&client, "/api/login", &[("email", "gone@firm.com"), ("password", "correct horse battery")])
        .await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("deactivated"));
}

async fn session_id_changes_at_login_and_logout_ends_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let client = app.client();
    let mut cookies = Vec::new();
    for _ in 0..2 {
        let response = client
            .post(format!("{}/api/login", app.base))
            .form(&[("email", "ana@firm.com"), ("password", "correct horse battery")])
            .send()
            .await
            .unwrap();
        let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        cookies.push(cookie);
    }
    assert_ne!(cookies[0], cookies[1], "the session id is cycled at each sign-in");
    assert_eq!(app.count("sessions").await, 1, "the old session id is gone");

    let (status, _) = app.post(&client, "/api/logout", &[]).await;
    assert_eq!(status, 200);
    let (status, body) = app.post(&client, "/api/deals/list", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(kind(&body), "unauthorized");
    assert_eq!(app.count("sessions").await, 0);
}

async fn pages_require_a_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = app.client();
    for path in ["/", "/deals", "/deals/new", "/deals/1", "/admin/users"] {
        let response = client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login", "{path}");
    }
    let login = client.get(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(html.contains("Sign in"), "{html}");

    let health = client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let deals = client.get(format!("{}/deals", app.base)).send().await.unwrap();
    assert_eq!(deals.status(), 200);
    let back_to_login = client.get(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(back_to_login.status(), 303, "signed-in users skip the sign-in page");
}

async fn admin_functions_refuse_analysts(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let analyst = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (status, body) = app.post(&analyst, "/api/admin/users/list", &[]).await;
    assert_eq!(status, 403);
    assert_eq!(kind(&body), "forbidden");

    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let (status, body) = app.post(&admin, "/api/admin/users/list", &[]).await;
    assert_eq!(status, 200);
    let emails: Vec<&str> = body.as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ana@firm.com", "root@firm.com"]);
}

async fn user_add_updates_an_existing_account(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let first = app.add_user("ana@firm.com", "first password", UserRole::Analyst).await;
    let second = app.add_user("ANA@firm.com", "second password", UserRole::Admin).await;
    assert_eq!(first, second);
    assert_eq!(app.count("users").await, 1);
    let client = app.client();
    let (status, _) = app.post(&client, "/api/login", &[("email", "ana@firm.com"), ("password", "first password")]).await;
    assert_eq!(status, 401);
    let (status, user) = app.post(&client, "/api/login", &[("email", "ana@firm.com"), ("password", "second password")]).await;
    assert_eq!(status, 200);
    assert_eq!(user["role"], "admin");
}

async fn migrations_run_again_without_harm(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.add_user("ana@firm.com", "correct horse battery", UserRole::Analyst).await;
    let again = server::prepare(support::test_settings(), &app.db.url, server::leptos_options(), support::offline()).await;
    assert!(again.is_ok());
    assert_eq!(app.count("users").await, 1);
}

/// The session's user comes with the session's own read (one statement a request, not
/// two): fresh at each request, never stored with the session, and a user row found
/// in the stored data is not believed.
async fn the_user_is_read_with_the_session_and_never_stored(engine: Engine) {
    use app::auth::service::{SESSION_USER_KEY, USER_ID_KEY, user_from_session};
    let app = TestApp::spawn(engine).await;
    let ana = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let db = &app.state.db;
    let stored = || async { sqlx::query_as::<_, (String, String)>("SELECT id, data FROM sessions").fetch_one(&db.pool).await.unwrap() };
    let (id, data) = stored().await;
    assert!(!data.contains(SESSION_USER_KEY), "{data}");
    // The request's user is the row the session's read found: a change after that
    // read is not read again within the request.
    let store = std::sync::Arc::new(app::auth::session_store::DbSessionStore::new(db.clone()));
    let session = tower_sessions::Session::new(Some(id.parse().unwrap()), store, None);
    let user_id = session.get::<i64>(USER_ID_KEY).await.unwrap().expect("signed in");
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1").bind(user_id).execute(&db.pool).await.unwrap();
    let ctx = user_from_session(db, &session).await.unwrap();
    assert_eq!(ctx.role, UserRole::Analyst, "the user as read with the session");
    // The next request reads it afresh; its renewal stores the session without it.
    sqlx::query("UPDATE sessions SET data = $1").bind(serde_json::json!({"user_id": user_id, "seen_at": 0}).to_string()).execute(&db.pool).await.unwrap();
    let (status, me) = app.post(&ana, "/api/me", &[]).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")), "{me}");
    let (_, data) = stored().await;
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert!(data["seen_at"].as_i64().unwrap() > 0, "renewed: {data}");
    assert!(data.get(SESSION_USER_KEY).is_none(), "{data}");
    // Signing in again over a loaded session (its user read with it) stores none either.
    let (status, _) = app.post(&ana, "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")]).await;
    assert_eq!(status, 200);
    let (_, data) = stored().await;
    assert!(data.contains("user_id") && !data.contains(SESSION_USER_KEY), "{data}");
    // A user row in the stored data (no version writes one) is not believed, also when
    // the session's read finds no user to put in its place.
    let forged = serde_json::json!({"user_id": user_id, "seen_at": app::time::now_millis(), SESSION_USER_KEY: {"id": user_id, "email": "ana@firm.com", "role": "admin", "active": true}});
    sqlx::query("UPDATE sessions SET data = $1, user_id = NULL").bind(forged.to_string()).execute(&db.pool).await.unwrap();
    sqlx::query("UPDATE users SET active = 0 WHERE id = $1").bind(user_id).execute(&db.pool).await.unwrap();
    let (status, body) = app.post(&ana, "/api/deals/list", &[]).await;
    assert_eq!(status, 401, "the stored user was believed: {body}");
    assert_eq!(kind(&body), "unauthorized");
}

on_both_engines!(
    the_user_is_read_with_the_session_and_never_stored,
    login_succeeds_with_a_safe_cookie,
    login_fails_with_wrong_password_or_unknown_email,
    repeated_failures_are_throttled,
    inactive_users_cannot_sign_in,
    session_id_changes_at_login_and_logout_ends_it,
    pages_require_a_session,
    admin_functions_refuse_analysts,
    user_add_updates_an_existing_account,
    migrations_run_again_without_harm,
);
