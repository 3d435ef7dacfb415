//! A world for the limits and foresight tests: the app against the fake Claude, an admin,
//! and one deal whose budget does not bind, with the admin actions those tests repeat.

use app::auth::UserRole;
use app::settings::Settings;
use serde_json::{Value, json};

use super::fake_claude::{FakeClaude, Script};
use super::{Engine, TestApp, meters, test_settings};

pub const DAY: i64 = 86_400_000;

/// The test settings without the chat cooldown, so one analyst can send back to back.
pub fn settings() -> Settings {
    let mut s = test_settings();
    s.chat.cooldown_seconds = 0;
    s
}

/// A scripted reply of `input` and `output` tokens.
pub fn usage(input: u64, output: u64) -> Script {
    Script::Reply { text: "ok".into(), usage: json!({"input_tokens": input, "output_tokens": output}) }
}

pub struct World {
    pub app: TestApp,
    pub fake: FakeClaude,
    pub admin: reqwest::Client,
    pub deal: i64,
    /// `deal` as form fields take it.
    pub deal_id: String,
}

impl World {
    pub async fn start(engine: Engine, settings: Settings) -> World {
        let fake = FakeClaude::start().await;
        let app = TestApp::spawn_with(engine, settings, fake.endpoint()).await;
        let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
        let (_, id) = app
            .post(&admin, "/api/deals/create", &[("name", "Harbor Point"), ("address", ""), ("property_type", "Office"), ("asking_price", ""), ("notes", "")])
            .await;
        let deal = id.as_i64().unwrap();
        let w = World { app, fake, admin, deal, deal_id: deal.to_string() };
        w.admin_ok("/api/admin/deals/budget", &[("deal_id", &w.deal_id), ("tokens", "100000000")]).await;
        w
    }

    pub async fn admin_ok(&self, path: &str, form: &[(&str, &str)]) {
        let (status, body) = self.app.post(&self.admin, path, form).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    /// An analyst with a daily token budget large enough not to bind.
    pub async fn analyst(&self, email: &str) -> (reqwest::Client, i64) {
        let client = self.app.signed_in(email, UserRole::Analyst).await;
        let id = user_id(&self.app, email).await;
        self.admin_ok("/api/admin/users/budget", &[("user_id", &id.to_string()), ("daily_tokens", "100000000")]).await;
        (client, id)
    }

    /// An analyst as above, with a monthly budget of `monthly_usd`.
    pub async fn analyst_with_monthly(&self, email: &str, monthly_usd: &str) -> (reqwest::Client, i64) {
        let (client, id) = self.analyst(email).await;
        self.admin_ok("/api/admin/users/monthly", &[("user_id", &id.to_string()), ("monthly_usd", monthly_usd)]).await;
        (client, id)
    }

    pub async fn send(&self, client: &reqwest::Client, message: &str) -> (u16, Value) {
        self.app.post(client, "/api/chat/send", &[("deal_id", &self.deal_id), ("message", message)]).await
    }

    /// The caller's meters on the deal.
    pub async fn status(&self, client: &reqwest::Client) -> Value {
        let (status, body) = self.app.post(client, "/api/budget/status", &[("deal_id", &self.deal_id)]).await;
        assert_eq!(status, 200, "{body}");
        meters(&body)
    }

    /// Saves the firm's limits with `changes` applied to the form in force.
    pub async fn set_limits(&self, changes: &[(&str, &str)]) {
        let (_, view) = self.app.post(&self.admin, "/api/admin/limits/get", &[]).await;
        let mut form: serde_json::Map<String, Value> = view["form"].as_object().unwrap().clone();
        for (key, value) in changes {
            assert!(form.contains_key(*key), "no limit field {key}");
            form.insert(key.to_string(), json!(value));
        }
        let fields: Vec<(String, String)> = form.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect();
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.admin_ok("/api/admin/limits/save", &fields).await;
    }

    /// Records usage that happened `days_ago` days ago (0: now) directly in the ledger.
    pub async fn seed(&self, user_id: i64, deal_id: Option<i64>, days_ago: i64, tokens: u64, cost_microusd: i64) {
        let at = app::time::now_millis() - days_ago * DAY;
        let record = app::usage::store::NewRecord {
            user_id,
            deal_id,
            operation: "chat".into(),
            model: "claude-sonnet-5-5".into(),
            usage: app::claude::pricing::TokenUsage { input_tokens: tokens, ..Default::default() },
            estimated_input_tokens: tokens,
            cost_microusd,
            default_price: false,
            requested_model: String::new(),
            savings_microusd: 0,
            latency_ms: 1,
            outcome: "ok".into(),
            request_id: None,
            usage_unknown: false,
            stopped: false,
            created_at: at,
            day: app::time::local_day(at, chrono_tz::UTC),
        };
        let mut tx = self.app.state.db.begin_write().await.unwrap();
        app::usage::store::insert_record(&mut tx, &record).await.unwrap();
        tx.commit().await.unwrap();
    }
}

pub async fn user_id(app: &TestApp, email: &str) -> i64 {
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&app.state.db.pool).await.unwrap();
    id
}
