//! Test support: the real DealDesk router on port 0 against a fresh database — a
//! throw-away SQLite file, or a PostgreSQL database created for the test on
//! 127.0.0.1:5432 and dropped afterwards.

#![allow(dead_code)]

pub mod fake_claude;
pub mod world;

use std::time::Duration;

use app::auth::UserRole;
use app::claude::client::Endpoint;
use app::settings::Settings;
use app::state::AppState;
use serde_json::Value;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Engine)` as two tests, `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::support::Engine::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::support::Engine::Postgres).await }
            )*
        }
    };
}

/// A fresh, empty database that disappears when dropped.
pub struct TestDb {
    pub url: String,
    engine: Engine,
    name: String,
}

impl TestDb {
    pub async fn create(engine: Engine) -> TestDb {
        let name = format!("dealdesk_test_{}", rand::random::<u64>());
        match engine {
            Engine::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDb { url: format!("sqlite://{}?mode=rwc", path.display()), engine, name: path.display().to_string() }
            }
            Engine::Postgres => {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL)
                    .await
                    .expect("PostgreSQL must be running on 127.0.0.1:5432 (make test starts it)");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
                // A commit returns before its WAL reaches the disk, in this database only:
                // what a test sees does not change (nothing here stops PostgreSQL itself),
                // and its commits stop waiting for the disk.
                sqlx::query(&format!("ALTER DATABASE {name} SET synchronous_commit = off")).execute(&mut admin).await.unwrap();
                TestDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), engine, name }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self.engine {
            Engine::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Engine::Postgres => {
                // Drop runs inside the test's runtime: do the async work on a thread of its own.
                let name = self.name.clone();
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    rt.block_on(async move {
                        use sqlx::Connection;
                        if let Ok(mut admin) = sqlx::PgConnection::connect(PG_ADMIN_URL).await {
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// The built-in offline model, answering at once.
pub fn offline() -> Endpoint {
    Endpoint::Offline { delay: Duration::ZERO }
}

/// The defaults, without demo data and without per-user rate limits (tests of other
/// behaviour send faster than analysts do; the rate-limit tests set them).
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.demo.seed = false;
    settings.limits.user_requests_per_minute = 0;
    settings.limits.user_requests_per_day = 0;
    settings
}

/// The running app. Keep it alive for the test's duration: dropping it drops the database.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub db: std::sync::Arc<TestDb>,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, test_settings(), offline()).await
    }

    pub async fn spawn_with(engine: Engine, settings: Settings, claude: Endpoint) -> TestApp {
        Self::serve(std::sync::Arc::new(TestDb::create(engine).await), settings, claude).await
    }

    /// Another app instance on the same database, as behind a load balancer.
    pub async fn second_instance(&self, settings: Settings, claude: Endpoint) -> TestApp {
        Self::serve(self.db.clone(), settings, claude).await
    }

    /// The app with `recorder` between the client and the ledger (to inject faults).
    pub async fn spawn_with_recorder(
        engine: Engine,
        settings: Settings,
        claude: Endpoint,
        recorder: impl FnOnce(app::usage::ledger::Ledger) -> std::sync::Arc<dyn app::claude::recorder::UsageRecorder>,
    ) -> TestApp {
        init_logging();
        let db = std::sync::Arc::new(TestDb::create(engine).await);
        let state = server::prepare_with_recorder(settings, &db.url, server::leptos_options(), claude, recorder).await.expect("app starts");
        Self::listen(db, state).await
    }

    async fn serve(db: std::sync::Arc<TestDb>, settings: Settings, claude: Endpoint) -> TestApp {
        init_logging();
        let state = server::prepare(settings, &db.url, server::leptos_options(), claude).await.expect("app starts");
        Self::listen(db, state).await
    }

    async fn listen(db: std::sync::Arc<TestDb>, state: AppState) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let serving = state.clone();
        tokio::spawn(server::serve(listener, serving, std::future::pending()));
        TestApp { base, state, db }
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub async fn add_user(&self, email: &str, password: &str, role: UserRole) -> i64 {
        app::auth::service::upsert_user(&self.state.db, &self.state.passwords, email, password, role).await.expect("user saved")
    }

    /// POSTs a URL-encoded form to a server function; returns the status and JSON body.
    pub async fn post(&self, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = client.post(format!("{}{path}", self.base)).form(form).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path} answered non-JSON: {text}"));
        (status, body)
    }

    /// A client signed in as a new user with the given role.
    pub async fn signed_in(&self, email: &str, role: UserRole) -> reqwest::Client {
        self.add_user(email, "correct horse battery", role).await;
        let client = self.client();
        let (status, body) = self.post(&client, "/api/login", &[("email", email), ("password", "correct horse battery")]).await;
        assert_eq!(status, 200, "sign-in failed: {body}");
        client
    }

    pub async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap();
        n
    }
}

/// Server logs in test output when `RUST_LOG` is set (e.g. `RUST_LOG=app=debug`).
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    }
}

/// The stable error kind of a server function's error body.
pub fn kind(body: &Value) -> &str {
    body["kind"].as_str().unwrap_or_else(|| panic!("no error kind in {body}"))
}

/// A budget status (`/api/budget/status`) by limit: `{"deal": meter, "daily": meter,
/// "monthly": meter, "firm_day_usd": meter, …}`, absent limits null; with the status's
/// `deal_state` and `alert`.
pub fn meters(status: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("deal_state".into(), status["deal_state"].clone());
    out.insert("alert".into(), status["alert"].clone());
    for limit in status["limits"].as_array().into_iter().flatten() {
        let kind = &limit["kind"];
        let name = match (kind["limit"].as_str().unwrap_or_default(), kind["window"].as_str()) {
            ("deal_tokens", _) => "deal".to_string(),
            ("user_daily_tokens", _) => "daily".to_string(),
            ("user_monthly_usd", _) => "monthly".to_string(),
            ("firm_tokens", Some(w)) => format!("firm_{w}_tokens"),
            ("firm_usd", Some(w)) => format!("firm_{w}_usd"),
            (other, _) => other.to_string(),
        };
        out.insert(name, limit["meter"].clone());
    }
    Value::Object(out)
}
