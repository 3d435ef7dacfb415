//! The firm's limits: money budgets per user per month, firm-wide caps with their levels,
//! rate limits and the per-request cap. Configured under `[limits]` in `Leptos.toml`;
//! admins may change them on `/admin/limits` (kept in the database, applied by every
//! instance without a restart). Shared by the server and the browser (the admin form).

use serde::{Deserialize, Serialize};

/// A limit that is not valid, naming its key (`limits.…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError {
    pub key: &'static str,
    pub reason: String,
}

fn bad(key: &'static str, reason: impl Into<String>) -> LimitError {
    LimitError { key, reason: reason.into() }
}

/// Money budgets, firm-wide caps and rate limits. Admins may change every one of these on
/// `/admin/limits`; their values are kept in the database and apply, without a restart,
/// on every instance, until an admin resets them to these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Each analyst's budget per calendar month in `time.zone`, in USD (admins are exempt;
    /// per-user overrides on /admin/users).
    pub user_monthly_usd: f64,
    /// Shares of the monthly budget at which an analyst is alerted, once each per month.
    pub user_monthly_alert_ratios: Vec<f64>,
    /// Firm-wide caps per hour, calendar day and calendar month, in tokens and in USD,
    /// counting every user's calls (admins' too); 0 leaves a cap unset.
    pub firm_hourly_tokens: u64,
    pub firm_daily_tokens: u64,
    pub firm_monthly_tokens: u64,
    pub firm_hourly_usd: f64,
    pub firm_daily_usd: f64,
    pub firm_monthly_usd: f64,
    /// A firm cap enforced below its nominal value: 0.7 stops at 70% of it.
    pub firm_enforce_ratio: f64,
    /// Shares of an (enforced) firm cap: a warning for admins; then calls larger than
    /// `firm_critical_max_request_tokens` are refused; then every call is.
    pub firm_warning_ratio: f64,
    pub firm_critical_ratio: f64,
    pub firm_stop_ratio: f64,
    pub firm_critical_max_request_tokens: u64,
    /// Calls each user may start per minute and per calendar day; 0 means no limit.
    pub user_requests_per_minute: u32,
    pub user_requests_per_day: u32,
    /// Largest call accepted: estimated input plus `max_tokens`.
    pub max_request_tokens: u64,
    /// When a budget cannot take a call's `max_tokens` but can take its input and at
    /// least this many output tokens, the call goes ahead with `max_tokens` lowered.
    pub min_useful_output_tokens: u32,
    /// Budget-aware model choice for every analyst (each may be set otherwise on
    /// /admin/users): the tightest remaining budget picks the model.
    pub model_choice: bool,
    /// Models from best to cheapest.
    pub model_tiers: Vec<String>,
    /// A tier is used while the tightest remaining budget is above its share; below the
    /// last share the last tier takes only calls that fit.
    pub model_tier_shares: Vec<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            user_monthly_usd: 50.0,
            user_monthly_alert_ratios: vec![0.5, 0.75, 0.9],
            firm_hourly_tokens: 0,
            firm_daily_tokens: 0,
            firm_monthly_tokens: 0,
            firm_hourly_usd: 0.0,
            firm_daily_usd: 0.0,
            firm_monthly_usd: 0.0,
            firm_enforce_ratio: 1.0,
            firm_warning_ratio: 0.8,
            firm_critical_ratio: 0.95,
            firm_stop_ratio: 0.98,
            firm_critical_max_request_tokens: 10_000,
            user_requests_per_minute: 30,
            user_requests_per_day: 2_000,
            max_request_tokens: 200_000,
            min_useful_output_tokens: 512,
            model_choice: false,
            model_tiers: vec!["claude-opus-5-5".into(), "claude-sonnet-5-5".into(), "claude-haiku-5-5".into()],
            model_tier_shares: vec![0.7, 0.3, 0.1],
        }
    }
}

impl Limits {
    /// The first problem, naming its key (`limits.…`).
    pub fn validate(&self) -> Result<(), LimitError> {
        let usd = [
            ("limits.user_monthly_usd", self.user_monthly_usd),
            ("limits.firm_hourly_usd", self.firm_hourly_usd),
            ("limits.firm_daily_usd", self.firm_daily_usd),
            ("limits.firm_monthly_usd", self.firm_monthly_usd),
        ];
        for (key, value) in usd {
            if !(value.is_finite() && (0.0..=1_000_000_000.0).contains(&value)) {
                return Err(bad(key, format!("{value} is not an amount in USD between 0 and 1,000,000,000")));
            }
        }
        let ratios = self.user_monthly_alert_ratios.iter();
        if self.user_monthly_alert_ratios.len() > 10 || ratios.clone().any(|r| !(*r > 0.0 && *r < 1.0)) {
            return Err(bad("limits.user_monthly_alert_ratios", "at most 10 shares, each above 0 and below 1"));
        }
        if self.user_monthly_alert_ratios.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("limits.user_monthly_alert_ratios", "shares must rise: e.g. [0.5, 0.75, 0.9]"));
        }
        let shares = [
            ("limits.firm_enforce_ratio", self.firm_enforce_ratio),
            ("limits.firm_warning_ratio", self.firm_warning_ratio),
            ("limits.firm_critical_ratio", self.firm_critical_ratio),
            ("limits.firm_stop_ratio", self.firm_stop_ratio),
        ];
        for (key, value) in shares {
            if !(value > 0.0 && value <= 1.0) {
                return Err(bad(key, format!("{value} is not in (0, 1]")));
            }
        }
        if !(self.firm_warning_ratio <= self.firm_critical_ratio && self.firm_critical_ratio <= self.firm_stop_ratio) {
            return Err(bad("limits.firm_critical_ratio", "the levels must rise: warning ≤ critical ≤ stop"));
        }
        for (key, value) in [
            ("limits.firm_hourly_tokens", self.firm_hourly_tokens),
            ("limits.firm_daily_tokens", self.firm_daily_tokens),
            ("limits.firm_monthly_tokens", self.firm_monthly_tokens),
        ] {
            if value > 1_000_000_000_000_000 {
                return Err(bad(key, "at most 10^15 tokens"));
            }
        }
        if self.firm_critical_max_request_tokens == 0 {
            return Err(bad("limits.firm_critical_max_request_tokens", "must be at least 1"));
        }
        if self.max_request_tokens < 1_000 {
            return Err(bad("limits.max_request_tokens", "must be at least 1000"));
        }
        if !(1..=128_000).contains(&self.min_useful_output_tokens) {
            return Err(bad("limits.min_useful_output_tokens", "must be between 1 and 128000"));
        }
        let name_ok = |m: &String| !m.is_empty() && m.len() <= 100 && m.chars().all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c));
        if self.model_tiers.is_empty() || self.model_tiers.len() > 5 || !self.model_tiers.iter().all(name_ok) {
            return Err(bad("limits.model_tiers", "one to five model names, best first"));
        }
        if self.model_tier_shares.len() != self.model_tiers.len() || self.model_tier_shares.iter().any(|s| !(*s > 0.0 && *s < 1.0)) {
            return Err(bad("limits.model_tier_shares", "one share per tier, each above 0 and below 1"));
        }
        if self.model_tier_shares.windows(2).any(|w| w[0] <= w[1]) {
            return Err(bad("limits.model_tier_shares", "shares must fall from the best tier to the cheapest: e.g. [0.7, 0.3, 0.1]"));
        }
        Ok(())
    }
}

