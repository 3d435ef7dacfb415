//! User and budget administration, and the rule that every admin function refuses
//! non-admins on the server, on SQLite and PostgreSQL.

use app::auth::UserRole;
use crate::support::{Engine, TestApp, kind};

async fn id_of(app: &TestApp, email: &str) -> String {
    app::auth::store::find_user_by_email(&app.state.db, email).await.unwrap().unwrap().id.to_string()
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post(&app.client(), "/api/login", &[("email", email), ("password", password)]).await.0
}

async fn admins_create_users_and_bad_input_stores_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let create = |email: &'static str, password: &'static str, role: &'static str, budget: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.post(&admin, "/api/admin/users/create", &[("email", email), ("password", password), ("role", role), ("daily_tokens", budget)]).await
        }
    };
    let (status, _) = create("new@firm.com", "a good password", "analyst", "250,000").await;
    assert_eq!(status, 200);
    assert_eq!(sign_in(&app, "new@firm.com", "a good password").await, 200);
    let (_, users) = app.post(&admin, "/api/admin/users/list", &[]).await;
    let new = users.as_array().unwrap().iter().find(|u| u["email"] == "new@firm.com").unwrap();
    assert_eq!((new["role"].as_str(), new["daily_token_budget"].as_i64()), (Some("analyst"), Some(250_000)));

    for (email, password, role, budget) in [
        ("new@firm.com", "a good password", "analyst", ""),
        ("other@firm.com", "short", "analyst", ""),
        ("other@firm.com", "a good password", "owner", ""),
        ("not-an-email", "a good password", "analyst", ""),
        ("other@firm.com", "a good password", "analyst", "-3"),
    ] {
        let (status, body) = create(email, password, role, budget).await;
        assert_eq!((status, kind(&body)), (400, "invalid"), "{email} {role} {budget}");
    }
    assert_eq!(app.count("users").await, 2);
}

async fn roles_activation_and_passwords_are_managed_without_locking_admins_out(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let ana_client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let ana = id_of(&app, "ana@firm.com").await;
    let root = id_of(&app, "root@firm.com").await;

    let (status, _) = app.post(&admin, "/api/admin/users/role", &[("user_id", &ana), ("role", "admin")]).await;
    assert_eq!(status, 200);
    let (_, me) = app.post(&ana_client, "/api/me", &[]).await;
    assert!(me.is_null(), "a role change ends the user's sessions: {me}");
    assert_eq!(sign_in(&app, "ana@firm.com", "correct horse battery").await, 200);
    let ana_client = app.client();
    app.post(&ana_client, "/api/login", &[("email", "ana@firm.com"), ("password", "correct horse battery")]).await;
    let (_, me) = app.post(&ana_client, "/api/me", &[]).await;
    assert_eq!(me["role"], "admin");
    let (status, body) = app.post(&admin, "/api/admin/users/role", &[("user_id", &root), ("role", "analyst")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"), "no self-demotion");
    let (status, body) = app.post(&admin, "/api/admin/users/active", &[("user_id", &root), ("active", "false")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"), "no self-deactivation");

    let (status, _) = app.post(&admin, "/api/admin/users/active", &[("user_id", &ana), ("active", "false")]).await;
    assert_eq!(status, 200);
    let (status, _) = app.post(&ana_client, "/api/deals/list", &[]).await;
    assert_eq!(status, 401, "a deactivated user's session stops working");
    assert_eq!(sign_in(&app, "ana@firm.com", "correct horse battery").await, 401);
    app.post(&admin, "/api/admin/users/active", &[("user_id", &ana), ("active", "true")]).await;
    assert_eq!(sign_in(&app, "ana@firm.com", "correct horse battery").await, 200);

    let (status, body) = app.post(&admin, "/api/admin/users/password", &[("user_id", &ana), ("password", "short")]).await;
    assert_eq!((status, kind(&body)), (400, "invalid"));
    let (status, _) = app.post(&admin, "/api/admin/users/password", &[("user_id", &ana), ("password", "a brand new secret")]).await;
    assert_eq!(status, 200);
    assert_eq!(sign_in(&app, "ana@firm.com", "correct horse battery").await, 401);
    assert_eq!(sign_in(&app, "ana@firm.com", "a brand new secret").await, 200);
    let (status, body) = app.post(&admin, "/api/admin/users/password", &[("user_id", "999"), ("password", "a brand new secret")]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
}

async fn every_admin_function_refuses_analysts(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let analyst = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let ana = id_of(&app, "ana@firm.com").await;
    let calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/admin/users/list", vec![]),
        ("/api/admin/users/create", vec![("email", "x@firm.com"), ("password", "a good password"), ("role", "admin"), ("daily_tokens", "")]),
        ("/api/admin/users/role", vec![("user_id", &ana), ("role", "admin")]),
        ("/api/admin/users/active", vec![("user_id", &ana), ("active", "true")]),
        ("/api/admin/users/password", vec![("user_id", &ana), ("password", "a good password")]),
        ("/api/admin/users/budget", vec![("user_id", &ana), ("daily_tokens", "")]),
        ("/api/admin/deals/budget", vec![("deal_id", "1"), ("tokens", "")]),
        ("/api/admin/usage/dashboard", vec![("range", "30"), ("from", ""), ("to", ""), ("user", ""), ("deal", "")]),
    ];
    for (path, form) in calls {
        let (status, body) = app.post(&analyst, path, &form).await;
        assert_eq!((status, kind(&body)), (403, "forbidden"), "{path}");
    }
    let usage = analyst.get(format!("{}/api/usage", app.base)).send().await.unwrap();
    assert_eq!(usage.status(), 403);
    for page in ["/admin/tokens", "/admin/users", "/admin/deals"] {
        assert_eq!(analyst.get(format!("{}{page}", app.base)).send().await.unwrap().status(), 403, "{page}");
    }
    let (_, me) = app.post(&analyst, "/api/me", &[]).await;
    assert_eq!(me["role"], "analyst", "nothing changed");
    assert_eq!(app.count("users").await, 1);
}

/// Each account is a group of its own in the users table (a `tbody`), so what one of its
/// actions answers — an error, or a word that it is done — is drawn right below it, never
/// at the top of the page; the refusals it would show leave the account as it was.
async fn each_account_is_drawn_with_room_for_its_actions_outcome(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    app.signed_in("ana@firm.com", UserRole::Analyst).await;
    app.signed_in("bo@firm.com", UserRole::Analyst).await;
    let response = admin.get(format!("{}/admin/users", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("</html>"));
    assert_eq!(html.matches(r#"<tbody data-testid="account" class="account">"#).count(), 3, "{html}");
    let groups: Vec<&str> = html.split(r#"<tbody data-testid="account""#).skip(1).map(|g| &g[..g.find("</tbody>").unwrap()]).collect();
    assert_eq!(groups.len(), 3, "one group per account: {html}");
    for email in ["root@firm.com", "ana@firm.com", "bo@firm.com"] {
        let group = groups.iter().find(|g| g.contains(email)).unwrap_or_else(|| panic!("no group for {email}: {html}"));
        assert_eq!(group.matches(r#"data-testid="user-row""#).count(), 1, "{email}: {group}");
        assert!(group.contains("Set daily budget") && (group.contains("Make admin") || group.contains("Make analyst")), "{group}");
    }
    assert!(!html.contains(r#"data-testid="row-outcome""#), "nothing to say before any action: {html}");

    // What the rows' forms answer when refused: a kind and a message to show in the row.
    let ana = id_of(&app, "ana@firm.com").await;
    let root = id_of(&app, "root@firm.com").await;
    for (path, form) in [
        ("/api/admin/users/budget", vec![("user_id", ana.as_str()), ("daily_tokens", "lots")]),
        ("/api/admin/users/monthly", vec![("user_id", ana.as_str()), ("monthly_usd", "-5")]),
        ("/api/admin/users/active", vec![("user_id", root.as_str()), ("active", "false")]),
    ] {
        let (status, body) = app.post(&admin, path, &form).await;
        assert_eq!((status, kind(&body)), (400, "invalid"), "{path}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{path}");
    }
    let (_, users) = app.post(&admin, "/api/admin/users/list", &[]).await;
    let ana = users.as_array().unwrap().iter().find(|u| u["email"] == "ana@firm.com").unwrap();
    assert_eq!((ana["daily_token_budget"].is_null(), ana["monthly_budget_microusd"].is_null()), (true, true));
}

on_both_engines!(
    each_account_is_drawn_with_room_for_its_actions_outcome,
    admins_create_users_and_bad_input_stores_nothing,
    roles_activation_and_passwords_are_managed_without_locking_admins_out,
    every_admin_function_refuses_analysts,
);
