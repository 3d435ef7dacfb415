//! Typed application settings: defaults in code, the documented `Leptos.toml`, and
//! `APP_<SECTION>__<KEY>` environment overrides (e.g. `APP_BUDGET__USER_DAILY_TOKENS`).
//! Invalid values stop start-up with a message naming the key.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::claude::client::Endpoint;
use crate::claude::price_book::{SharedPriceBook, built_in_prices};
use crate::claude::pricing::{ModelPrice, Rates, micro_per_mtok};
use crate::claude::retry::RetryPolicy;
use crate::limits::Limits;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("invalid setting: {0}")]
    Parse(String),
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub claude: ClaudeSettings,
    pub history: HistorySettings,
    pub budget: BudgetSettings,
    pub limits: Limits,
    pub alerts: AlertSettings,
    pub metrics: MetricsSettings,
    pub chat: ChatSettings,
    pub pricing: PricingSettings,
    pub time: TimeSettings,
    pub auth: AuthSettings,
    pub session: SessionSettings,
    pub server: ServerSettings,
    pub demo: DemoSettings,
    /// From the environment only, never the settings file: secrets and endpoints.
    #[serde(skip)]
    pub env: EnvSettings,
}

/// Secrets and endpoints, read from the environment: `DATABASE_URL`,
/// `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `ALERT_WEBHOOK_SECRET`.
#[derive(Clone, Debug)]
pub struct EnvSettings {
    /// Default: a SQLite file under `./data/`.
    pub database_url: Secret,
    /// None: the built-in offline model answers.
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: String,
    /// Signs the alert webhook's posts (required when `alerts.webhook_url` is set).
    pub alert_webhook_secret: Option<Secret>,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            database_url: Secret(crate::db::DEFAULT_DATABASE_URL.to_string()),
            anthropic_api_key: None,
            anthropic_base_url: crate::claude::client::DEFAULT_BASE_URL.to_string(),
            alert_webhook_secret: None,
        }
    }
}

impl EnvSettings {
    fn from_env(env: &[(String, String)]) -> EnvSettings {
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
        let defaults = EnvSettings::default();
        EnvSettings {
            database_url: var("DATABASE_URL").map(Secret).unwrap_or(defaults.database_url),
            anthropic_api_key: var("ANTHROPIC_API_KEY").map(Secret),
            anthropic_base_url: var("ANTHROPIC_BASE_URL").map(|u| u.trim_end_matches('/').to_string()).unwrap_or(defaults.anthropic_base_url),
            alert_webhook_secret: var("ALERT_WEBHOOK_SECRET").map(Secret),
        }
    }
}

/// A secret (an API key, a database URL that may hold a password): never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaudeSettings {
    pub model: String,
    pub max_tokens_chat: u32,
    pub max_tokens_report: u32,
    pub max_tokens_extraction: u32,
    pub max_retries: u32,
    pub timeout_seconds: u64,
    pub connect_timeout_seconds: u64,
    /// First retry waits this long, doubling per retry (minus up to 25% jitter)...
    pub backoff_base_ms: u64,
    /// ...up to this.
    pub backoff_max_ms: u64,
    /// A `retry-after` from Claude is honoured up to this many seconds.
    pub retry_after_cap_seconds: u64,
    /// Simulated thinking time of the offline model.
    pub offline_delay_ms: u64,
    /// How long past the longest possible call a reservation is kept; after that it can
    /// only belong to a process that died, and is settled as unknown usage.
    pub reservation_margin_seconds: u64,
}

impl Default for ClaudeSettings {
    fn default() -> Self {
        ClaudeSettings {
            model: "claude-sonnet-5-5".into(),
            max_tokens_chat: 4096,
            max_tokens_report: 8192,
            max_tokens_extraction: 4096,
            max_retries: 2,
            timeout_seconds: 120,
            connect_timeout_seconds: 10,
            backoff_base_ms: 500,
            backoff_max_ms: 8_000,
            retry_after_cap_seconds: 30,
            offline_delay_ms: 600,
            reservation_margin_seconds: 60,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    pub max_messages: u32,
    pub max_input_tokens: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings { max_messages: 20, max_input_tokens: 150_000 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSettings {
    pub user_daily_tokens: u64,
    pub deal_tokens: u64,
    pub warn_ratio: f64,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings { user_daily_tokens: 500_000, deal_tokens: 1_000_000, warn_ratio: 0.8 }
    }
}

/// Budget alerts beyond the app: a webhook, and how burn rates are measured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Each alert is POSTed here as JSON, signed with `ALERT_WEBHOOK_SECRET`; empty: no webhook.
    pub webhook_url: String,
    pub webhook_timeout_seconds: u64,
    /// The first retry of a failed delivery waits this long, doubling each time...
    pub webhook_retry_base_ms: u64,
    /// ... for at most this many attempts.
    pub webhook_max_attempts: u32,
    /// Burn rates (and so projections) are the average of this many past days.
    pub burn_window_days: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { webhook_url: String::new(), webhook_timeout_seconds: 10, webhook_retry_base_ms: 2_000, webhook_max_attempts: 8, burn_window_days: 7 }
    }
}

/// Prometheus metrics, on a listen address of their own.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// e.g. `127.0.0.1:9100`; empty: no metrics endpoint.
    pub listen_addr: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    pub cooldown_seconds: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings { cooldown_seconds: 2 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingSettings {
    /// Fallback rates (USD per million tokens) for a model the price book does not know:
    /// its calls are charged at these and flagged, never at $0.
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Per-model prices (e.g. negotiated ones); a model listed here has only these,
    /// replacing its built-in list prices. Admins add dated prices on /admin/prices.
    pub models: HashMap<String, ModelRates>,
}

impl Default for PricingSettings {
    fn default() -> Self {
        PricingSettings { input_per_mtok: 3.0, output_per_mtok: 15.0, models: HashMap::new() }
    }
}

/// USD per million tokens for one model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRates {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// 5-minute cache writes.
    pub cache_write_per_mtok: f64,
    /// 1-hour cache writes; default twice the input price.
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<f64>,
    pub cache_read_per_mtok: f64,
    /// `YYYY-MM-DD` (UTC) from which these apply; default: always.
    #[serde(default)]
    pub effective_from: Option<String>,
}

impl ModelRates {
    fn rates(&self) -> Rates {
        Rates {
            input: micro_per_mtok(self.input_per_mtok),
            output: micro_per_mtok(self.output_per_mtok),
            cache_write_5m: micro_per_mtok(self.cache_write_per_mtok),
            cache_write_1h: micro_per_mtok(self.cache_write_1h_per_mtok.unwrap_or(self.input_per_mtok * 2.0)),
            cache_read: micro_per_mtok(self.cache_read_per_mtok),
        }
    }

    fn effective_from_ms(&self) -> Option<i64> {
        match &self.effective_from {
            None => Some(0),
            Some(date) => chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis()),
        }
    }
}

impl PricingSettings {
    /// The rates of a model with no price.
    pub fn fallback(&self) -> Rates {
        Rates::from_input_output(micro_per_mtok(self.input_per_mtok), micro_per_mtok(self.output_per_mtok))
    }

    /// The built-in list prices, with every model configured here replaced by its
    /// configured price.
    pub fn base_prices(&self) -> Vec<ModelPrice> {
        let configured = self.models.iter().map(|(model, r)| ModelPrice {
            model: model.clone(),
            effective_from: r.effective_from_ms().unwrap_or(0),
            rates: r.rates(),
            long_prompt: None,
            source: "Leptos.toml".into(),
        });
        built_in_prices().into_iter().filter(|p| !self.models.contains_key(&p.model)).chain(configured).collect()
    }

    /// A price book of the base prices, before any stored ones are loaded.
    pub fn price_book(&self) -> SharedPriceBook {
        SharedPriceBook::new(self.base_prices(), self.fallback())
    }
}

impl ClaudeSettings {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            base: Duration::from_millis(self.backoff_base_ms),
            max_backoff: Duration::from_millis(self.backoff_max_ms),
            retry_after_cap: Duration::from_secs(self.retry_after_cap_seconds),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSettings {
    pub zone: String,
}

impl Default for TimeSettings {
    fn default() -> Self {
        TimeSettings { zone: "UTC".into() }
    }
}

impl TimeSettings {
    /// The configured zone; `Settings::validate` has already checked it parses.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Sign-in attempts for one email within `lockout_minutes` before it is throttled
    /// (a successful sign-in starts the count afresh).
    pub max_failed_logins: u32,
    pub lockout_minutes: u32,
    /// Failed sign-in attempts from one client address within `lockout_minutes`, across
    /// all emails, before that address is throttled.
    pub max_failed_logins_per_address: u32,
    /// Password hashes checked at once; 0 means one per CPU core. Sign-ins beyond it
    /// wait briefly, then are refused with `throttled`.
    pub password_checks_in_parallel: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { max_failed_logins: 5, lockout_minutes: 15, max_failed_logins_per_address: 50, password_checks_in_parallel: 0 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// Sign-out after this many hours without a request.
    pub idle_hours: u32,
    /// Mark the cookie `Secure`; turn on whenever the app is served over HTTPS.
    pub secure_cookie: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        // Release builds are what is deployed, behind HTTPS: secure by default there.
        SessionSettings { idle_hours: 12, secure_cookie: !cfg!(debug_assertions) }
    }
}

/// The HTTP server's own limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// A connection must send its request headers within this time.
    pub header_read_timeout_seconds: u64,
    /// A request body must arrive within this time.
    pub body_read_timeout_seconds: u64,
    /// Largest request body accepted; larger ones answer 413 `too_long`.
    pub max_body_bytes: usize,
    /// A server-rendered page must be complete within this time; a render still running
    /// then is cut off (and logged), never held open.
    pub render_deadline_seconds: u64,
    /// Longest any request may take to answer. Must leave room for a Claude call with
    /// every retry (`claude.timeout_seconds` × (`claude.max_retries` + 1)).
    pub request_timeout_seconds: u64,
    /// Requests worked on at once (a call waiting on Claude does not count); one more
    /// is refused at once with 503 `overloaded` instead of queueing without bound.
    pub max_busy_requests: usize,
    /// Header carrying the client's address when DealDesk runs behind a proxy (e.g.
    /// `x-forwarded-for`, last entry); empty means the connection's own address.
    pub client_address_header: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            max_body_bytes: 1_048_576,
            render_deadline_seconds: 30,
            request_timeout_seconds: 600,
            max_busy_requests: 64,
            client_address_header: String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// Seed the demo admin, analyst and deals at start-up. On in debug builds only.
    pub seed: bool,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings { seed: cfg!(debug_assertions) }
    }
}

impl Settings {
    /// Loads `Leptos.toml` (or the file named by `DEALDESK_CONFIG`) and the `APP_*`
    /// environment overrides, then validates.
    pub fn load() -> Result<Settings, SettingsError> {
        let (path, required) = match std::env::var("DEALDESK_CONFIG") {
            Ok(path) => (path, true),
            Err(_) => ("Leptos.toml".to_string(), false),
        };
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(SettingsError::File { path, detail: err.to_string() }),
        };
        Settings::from_sources(file.as_deref(), std::env::vars())
    }

    /// Builds settings from a TOML text and environment variables (testable core of `load`).
    pub fn from_sources(
        toml_text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut builder = config::Config::builder();
        if let Some(text) = toml_text {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        for (name, value) in &env {
            if let Some(key) = env_key(name) {
                builder = builder.set_override(key, value.clone()).map_err(|e| SettingsError::Parse(e.to_string()))?;
            }
        }
        let mut settings: Settings = builder.build().and_then(|c| c.try_deserialize()).map_err(|e| SettingsError::Parse(e.to_string()))?;
        settings.env = EnvSettings::from_env(&env);
        settings.validate()?;
        Ok(settings)
    }

    /// Every section's own checks, in file order; the first problem is reported.
    fn validate(&self) -> Result<(), SettingsError> {
        self.claude.validate()?;
        self.history.validate()?;
        self.budget.validate()?;
        self.limits.validate().map_err(|e| SettingsError::Invalid { key: e.key, reason: e.reason })?;
        self.validate_alerts()?;
        if !self.metrics.listen_addr.is_empty() && self.metrics.listen_addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad("metrics.listen_addr", "must be an address such as 127.0.0.1:9100, or empty"));
        }
        if self.chat.cooldown_seconds > 3600 {
            return Err(bad("chat.cooldown_seconds", "at most 3600"));
        }
        self.pricing.validate()?;
        if self.time.zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad("time.zone", format!("\"{}\" is not an IANA time zone such as UTC or America/New_York", self.time.zone)));
        }
        self.auth.validate()?;
        if self.session.idle_hours == 0 {
            return Err(bad("session.idle_hours", "must be at least 1"));
        }
        self.server.validate(&self.claude)
    }

    /// Where Claude calls go: the Messages API when an API key is set, else the
    /// built-in offline model.
    pub fn claude_endpoint(&self) -> Endpoint {
        match &self.env.anthropic_api_key {
            Some(key) => Endpoint::http(&self.env.anthropic_base_url, key.expose()),
            None => Endpoint::Offline { delay: Duration::from_millis(self.claude.offline_delay_ms) },
        }
    }
}

impl Settings {
    fn validate_alerts(&self) -> Result<(), SettingsError> {
        let a = &self.alerts;
        if !a.webhook_url.is_empty() {
            if !(a.webhook_url.starts_with("https://") || a.webhook_url.starts_with("http://")) {
                return Err(bad("alerts.webhook_url", "must be an http(s) URL, or empty"));
            }
            if self.env.alert_webhook_secret.is_none() {
                return Err(bad("alerts.webhook_url", "needs ALERT_WEBHOOK_SECRET in the environment to sign the posts"));
            }
        }
        if !(1..=300).contains(&a.webhook_timeout_seconds) {
            return Err(bad("alerts.webhook_timeout_seconds", "must be between 1 and 300"));
        }
        if !(1..=3_600_000).contains(&a.webhook_retry_base_ms) {
            return Err(bad("alerts.webhook_retry_base_ms", "must be between 1 and 3600000"));
        }
        if !(1..=50).contains(&a.webhook_max_attempts) {
            return Err(bad("alerts.webhook_max_attempts", "must be between 1 and 50"));
        }
        if !(1..=90).contains(&a.burn_window_days) {
            return Err(bad("alerts.burn_window_days", "must be between 1 and 90"));
        }
        Ok(())
    }
}

fn bad(key: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key, reason: reason.into() }
}

impl ClaudeSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.model.trim().is_empty() {
            return Err(bad("claude.model", "must name a model"));
        }
        for (key, value) in [
            ("claude.max_tokens_chat", self.max_tokens_chat),
            ("claude.max_tokens_report", self.max_tokens_report),
            ("claude.max_tokens_extraction", self.max_tokens_extraction),
        ] {
            if !(1..=128_000).contains(&value) {
                return Err(bad(key, format!("{value} is outside 1..=128000")));
            }
        }
        if self.max_retries > 10 {
            return Err(bad("claude.max_retries", "at most 10 retries"));
        }
        if !(1..=3600).contains(&self.timeout_seconds) {
            return Err(bad("claude.timeout_seconds", "must be between 1 and 3600"));
        }
        if !(1..=3600).contains(&self.reservation_margin_seconds) {
            return Err(bad("claude.reservation_margin_seconds", "must be between 1 and 3600"));
        }
        if !(1..=300).contains(&self.connect_timeout_seconds) {
            return Err(bad("claude.connect_timeout_seconds", "must be between 1 and 300"));
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            return Err(bad("claude.backoff_max_ms", "must be at least claude.backoff_base_ms, which must be positive"));
        }
        Ok(())
    }
}

impl HistorySettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.max_messages == 0 {
            return Err(bad("history.max_messages", "must be at least 1"));
        }
        if self.max_input_tokens < 100 {
            return Err(bad("history.max_input_tokens", "must be at least 100"));
        }
        Ok(())
    }
}

impl BudgetSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.user_daily_tokens == 0 {
            return Err(bad("budget.user_daily_tokens", "must be positive"));
        }
        if self.deal_tokens == 0 {
            return Err(bad("budget.deal_tokens", "must be positive"));
        }
        if !(self.warn_ratio > 0.0 && self.warn_ratio <= 1.0) {
            return Err(bad("budget.warn_ratio", format!("{} is not in (0, 1]", self.warn_ratio)));
        }
        Ok(())
    }
}

impl PricingSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        for (key, value) in [("pricing.input_per_mtok", self.input_per_mtok), ("pricing.output_per_mtok", self.output_per_mtok)] {
            if !(value.is_finite() && (0.0..=100_000.0).contains(&value)) {
                return Err(bad(key, format!("{value} is not a price in USD")));
            }
        }
        for (model, r) in &self.models {
            let all = [r.input_per_mtok, r.output_per_mtok, r.cache_write_per_mtok, r.cache_read_per_mtok, r.cache_write_1h_per_mtok.unwrap_or(0.0)];
            if all.iter().any(|v| !(v.is_finite() && (0.0..=100_000.0).contains(v))) {
                return Err(bad("pricing.models", format!("rates for \"{model}\" must be USD amounts between 0 and 100000")));
            }
            if r.effective_from_ms().is_none() {
                return Err(bad("pricing.models", format!("effective_from for \"{model}\" must be a date, YYYY-MM-DD")));
            }
        }
        Ok(())
    }
}

impl AuthSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.max_failed_logins == 0 {
            return Err(bad("auth.max_failed_logins", "must be at least 1"));
        }
        if self.lockout_minutes == 0 {
            return Err(bad("auth.lockout_minutes", "must be at least 1"));
        }
        if self.max_failed_logins_per_address == 0 {
            return Err(bad("auth.max_failed_logins_per_address", "must be at least 1"));
        }
        if self.password_checks_in_parallel > 1024 {
            return Err(bad("auth.password_checks_in_parallel", "at most 1024"));
        }
        Ok(())
    }
}

impl ServerSettings {
    fn validate(&self, claude: &ClaudeSettings) -> Result<(), SettingsError> {
        for (key, value) in [
            ("server.header_read_timeout_seconds", self.header_read_timeout_seconds),
            ("server.body_read_timeout_seconds", self.body_read_timeout_seconds),
            ("server.render_deadline_seconds", self.render_deadline_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                return Err(bad(key, "must be between 1 and 3600"));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(bad("server.max_body_bytes", "must be between 1 KiB and 64 MiB"));
        }
        if !(1..=100_000).contains(&self.max_busy_requests) {
            return Err(bad("server.max_busy_requests", "must be between 1 and 100000"));
        }
        let longest_call = claude.timeout_seconds * (u64::from(claude.max_retries) + 1);
        if self.request_timeout_seconds <= longest_call {
            return Err(bad("server.request_timeout_seconds", format!("must exceed the longest Claude call with retries ({longest_call} s)")));
        }
        if self.client_address_header.chars().any(|ch| !(ch.is_ascii_alphanumeric() || ch == '-')) {
            return Err(bad("server.client_address_header", "must be an HTTP header name"));
        }
        Ok(())
    }
}

/// `APP_BUDGET__USER_DAILY_TOKENS` → `budget.user_daily_tokens`; other names → None.
fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("APP_")?;
    let (section, key) = rest.split_once("__")?;
    if section.is_empty() || key.is_empty() {
        return None;
    }
    Some(format!("{}.{}", section.to_ascii_lowercase(), key.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(s.claude.max_tokens_chat, 4096);
        assert_eq!(s.claude.max_tokens_report, 8192);
        assert_eq!(s.claude.max_retries, 2);
        assert_eq!(s.claude.timeout_seconds, 120);
        assert_eq!(s.history.max_messages, 20);
        assert_eq!(s.history.max_input_tokens, 150_000);
        assert_eq!(s.budget.user_daily_tokens, 500_000);
        assert_eq!(s.budget.deal_tokens, 1_000_000);
        assert_eq!(s.budget.warn_ratio, 0.8);
        assert_eq!(s.chat.cooldown_seconds, 2);
        assert_eq!(s.pricing.input_per_mtok, 3.0);
        assert_eq!(s.pricing.output_per_mtok, 15.0);
        assert_eq!(s.time.zone, "UTC");
        assert_eq!(s.claude.model, "claude-sonnet-5-5");
        let book = s.pricing.price_book().current();
        let now = crate::time::now_millis();
        assert_eq!(book.rates_at("claude-sonnet-5-5", now, 0), (Rates { input: 2_000_000, output: 10_000_000, cache_write_5m: 2_500_000, cache_write_1h: 4_000_000, cache_read: 100_000 }, false));
        assert!(book.rates_at("unknown-model", now, 0).1);
    }

    #[test]
    fn model_prices_from_the_file_override_list_prices() {
        let toml = "[pricing.models.claude-sonnet-5-5]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\
                    cache_write_per_mtok = 1.25\ncache_read_per_mtok = 0.1\n";
        let s = Settings::from_sources(Some(toml), env(&[])).unwrap();
        let book = s.pricing.price_book().current();
        let now = crate::time::now_millis();
        let (rates, unpriced) = book.rates_at("claude-sonnet-5-5", now, 0);
        assert!(!unpriced);
        assert_eq!((rates.output, rates.cache_write_1h), (2_000_000, 2_000_000));
        // The configured price replaces every built-in one of that model, whatever its date.
        assert_eq!(book.all().iter().filter(|p| p.model == "claude-sonnet-5-5").count(), 1);
        assert_eq!(book.rates_at("claude-haiku-4-5", now, 0).0.input, 1_000_000);
        let bad_date = "[pricing.models.x]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\ncache_write_per_mtok = 1.25\n\
                        cache_read_per_mtok = 0.1\neffective_from = \"next week\"\n";
        assert!(Settings::from_sources(Some(bad_date), env(&[])).unwrap_err().to_string().contains("pricing.models"));
    }

    #[test]
    fn the_documented_leptos_toml_is_valid_and_states_the_defaults() {
        let shipped = Settings::from_sources(Some(include_str!("../../Leptos.toml")), env(&[])).unwrap();
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn file_then_env_override() {
        let toml = "[budget]\nuser_daily_tokens = 1000\n[time]\nzone = \"Europe/Berlin\"\n";
        let s = Settings::from_sources(
            Some(toml),
            env(&[("APP_BUDGET__USER_DAILY_TOKENS", "2000"), ("APP_ENV", "ignored"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(s.budget.user_daily_tokens, 2000);
        assert_eq!(s.time.zone, "Europe/Berlin");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = Settings::from_sources(None, env(&[("APP_BUDGET__USER_DAILY_TOKENS", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("budget.user_daily_tokens"), "{err}");

        let err = Settings::from_sources(None, env(&[("APP_TIME__ZONE", "Mars/Olympus")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("time.zone"), "{err}");

        let err = Settings::from_sources(None, env(&[("APP_BUDGET__WARN_RATIO", "1.5")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("budget.warn_ratio"), "{err}");

        let err = Settings::from_sources(Some("[claude]\nmodle = \"x\"\n"), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("modle"), "{err}");
    }
}
