//! The connection pool: a connection the database dropped while it sat idle (a
//! PostgreSQL restart, an administrator ending sessions) is found out and replaced as it
//! is handed out, so the next requests are served. A connection in steady use is not
//! pinged before each use (sqlx already pings it as it goes back to the pool).

use std::time::Duration;

use app::auth::UserRole;
use sqlx::Connection;

use crate::support::{Engine, PG_ADMIN_URL, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_ended_while_idle_are_replaced() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let client = app.signed_in("pool@dealdesk.test", UserRole::Analyst).await;
    // Several requests at once: the pool opens several connections.
    let answers = futures::future::join_all((0..8).map(|_| app.post(&client, "/api/me", &[]))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let database = app.db.url.rsplit('/').next().unwrap().to_string();

    let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap();
    let ended: Vec<(bool,)> = sqlx::query_as("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&database)
        .fetch_all(&mut admin)
        .await
        .unwrap();
    assert!(!ended.is_empty(), "the app held no connection to end");
    // Idle past the pool's threshold: each connection is pinged before it is handed out.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for attempt in 0..ended.len() + 2 {
        let (status, body) = app.post(&client, "/api/me", &[]).await;
        assert_eq!(status, 200, "request {attempt} after the connections were ended: {body}");
        assert_eq!(body["email"], "pool@dealdesk.test");
    }
}
