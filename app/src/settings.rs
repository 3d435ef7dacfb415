//! Typed application settings: defaults in code, the documented `Leptos.toml`, and
//! `APP_<SECTION>__<KEY>` environment overrides (e.g. `APP_BUDGET__USER_DAILY_TOKENS`).
//! Invalid values stop start-up with a message naming the key.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::claude::pricing::{PriceTable, Rates};
use crate::claude::retry::RetryPolicy;

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
    pub chat: ChatSettings,
    pub pricing: PricingSettings,
    pub time: TimeSettings,
    pub auth: AuthSettings,
    pub session: SessionSettings,
    pub demo: DemoSettings,
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
}

impl Default for ClaudeSettings {
    fn default() -> Self {
        ClaudeSettings {
            model: "claude-sonnet-4-6".into(),
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
    /// Default rates, for models the table below does not list.
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Per-model rates; entries here override the built-in list prices.
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
    pub cache_write_per_mtok: f64,
    pub cache_read_per_mtok: f64,
}

/// List prices (late 2026) used when `Leptos.toml` does not list a model.
const LIST_PRICES: &[(&str, [f64; 4])] = &[
    ("claude-opus-4-6", [5.0, 25.0, 6.25, 0.50]),
    ("claude-opus-4-7", [5.0, 25.0, 6.25, 0.50]),
    ("claude-opus-4-8", [5.0, 25.0, 6.25, 0.50]),
    ("claude-sonnet-4-6", [3.0, 15.0, 3.75, 0.30]),
    ("claude-haiku-4-5", [1.0, 5.0, 1.25, 0.10]),
    ("claude-opus-5-5", [4.0, 20.0, 5.0, 0.20]),
    ("claude-sonnet-5-5", [2.0, 10.0, 2.50, 0.20]),
    // The offline model is priced like Sonnet so demo costs look like real ones.
    (crate::claude::OFFLINE_MODEL, [3.0, 15.0, 3.75, 0.30]),
];

impl PricingSettings {
    pub fn price_table(&self) -> PriceTable {
        let rates = |[input, output, cache_write, cache_read]: [f64; 4]| Rates { input, output, cache_write, cache_read };
        let mut models: HashMap<String, Rates> =
            LIST_PRICES.iter().map(|(model, r)| (model.to_string(), rates(*r))).collect();
        for (model, r) in &self.models {
            models.insert(
                model.clone(),
                rates([r.input_per_mtok, r.output_per_mtok, r.cache_write_per_mtok, r.cache_read_per_mtok]),
            );
        }
        PriceTable { models, default: Rates::from_input_output(self.input_per_mtok, self.output_per_mtok) }
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
    /// Failed sign-ins for one email within `lockout_minutes` before it is throttled.
    pub max_failed_logins: u32,
    pub lockout_minutes: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { max_failed_logins: 5, lockout_minutes: 15 }
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
        SessionSettings { idle_hours: 12, secure_cookie: false }
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
        let mut builder = config::Config::builder();
        if let Some(text) = toml_text {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        for (name, value) in env {
            if let Some(key) = env_key(&name) {
                builder = builder
                    .set_override(key, value)
                    .map_err(|e| SettingsError::Parse(e.to_string()))?;
            }
        }
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| SettingsError::Parse(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        fn bad(key: &'static str, reason: impl Into<String>) -> SettingsError {
            SettingsError::Invalid { key, reason: reason.into() }
        }
        let c = &self.claude;
        if c.model.trim().is_empty() {
            return Err(bad("claude.model", "must name a model"));
        }
        for (key, value) in [
            ("claude.max_tokens_chat", c.max_tokens_chat),
            ("claude.max_tokens_report", c.max_tokens_report),
            ("claude.max_tokens_extraction", c.max_tokens_extraction),
        ] {
            if !(1..=128_000).contains(&value) {
                return Err(bad(key, format!("{value} is outside 1..=128000")));
            }
        }
        if c.max_retries > 10 {
            return Err(bad("claude.max_retries", "at most 10 retries"));
        }
        if !(1..=3600).contains(&c.timeout_seconds) {
            return Err(bad("claude.timeout_seconds", "must be between 1 and 3600"));
        }
        if !(1..=300).contains(&c.connect_timeout_seconds) {
            return Err(bad("claude.connect_timeout_seconds", "must be between 1 and 300"));
        }
        if self.history.max_messages == 0 {
            return Err(bad("history.max_messages", "must be at least 1"));
        }
        if self.history.max_input_tokens < 100 {
            return Err(bad("history.max_input_tokens", "must be at least 100"));
        }
        if self.budget.user_daily_tokens == 0 {
            return Err(bad("budget.user_daily_tokens", "must be positive"));
        }
        if self.budget.deal_tokens == 0 {
            return Err(bad("budget.deal_tokens", "must be positive"));
        }
        let ratio = self.budget.warn_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(bad("budget.warn_ratio", format!("{ratio} is not in (0, 1]")));
        }
        if self.chat.cooldown_seconds > 3600 {
            return Err(bad("chat.cooldown_seconds", "at most 3600"));
        }
        for (key, value) in [
            ("pricing.input_per_mtok", self.pricing.input_per_mtok),
            ("pricing.output_per_mtok", self.pricing.output_per_mtok),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad(key, format!("{value} is not a price in USD")));
            }
        }
        for (model, r) in &self.pricing.models {
            let all = [r.input_per_mtok, r.output_per_mtok, r.cache_write_per_mtok, r.cache_read_per_mtok];
            if all.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(SettingsError::Invalid {
                    key: "pricing.models",
                    reason: format!("rates for \"{model}\" must be non-negative USD amounts"),
                });
            }
        }
        if self.claude.backoff_base_ms == 0 || self.claude.backoff_max_ms < self.claude.backoff_base_ms {
            return Err(bad("claude.backoff_max_ms", "must be at least claude.backoff_base_ms, which must be positive"));
        }
        if self.time.zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(
                "time.zone",
                format!("\"{}\" is not an IANA time zone such as UTC or America/New_York", self.time.zone),
            ));
        }
        if self.auth.max_failed_logins == 0 {
            return Err(bad("auth.max_failed_logins", "must be at least 1"));
        }
        if self.auth.lockout_minutes == 0 {
            return Err(bad("auth.lockout_minutes", "must be at least 1"));
        }
        if self.session.idle_hours == 0 {
            return Err(bad("session.idle_hours", "must be at least 1"));
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
        let table = s.pricing.price_table();
        assert_eq!(table.rates_for("claude-sonnet-4-6").0.cache_read, 0.30);
        assert!(table.rates_for("unknown-model").1);
    }

    #[test]
    fn model_prices_from_the_file_override_list_prices() {
        let toml = "[pricing.models.claude-sonnet-4-6]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\
                    cache_write_per_mtok = 1.25\ncache_read_per_mtok = 0.1\n";
        let s = Settings::from_sources(Some(toml), env(&[])).unwrap();
        let (rates, defaulted) = s.pricing.price_table().rates_for("claude-sonnet-4-6");
        assert!(!defaulted);
        assert_eq!(rates.output, 2.0);
        assert_eq!(s.pricing.price_table().rates_for("claude-haiku-4-5").0.input, 1.0);
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
