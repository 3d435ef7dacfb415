//! Budget alerts: one row per threshold crossed per period — an analyst's monthly budget
//! at 50/75/90%, a deal's budget at its warning level and used up, a firm cap at its
//! warning, critical and stop levels, a projected overrun — recorded once whichever
//! instance sees it first. Analysts read their own; admins read all (on /admin/alerts
//! and `GET /api/alerts`) and acknowledge them. With a webhook configured each alert is
//! also posted, signed, retried with backoff, off the path of every Claude call.

pub mod api;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::format::{format_dollars, format_tokens};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertScope {
    User,
    Deal,
    Firm,
}

impl AlertScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertScope::User => "user",
            AlertScope::Deal => "deal",
            AlertScope::Firm => "firm",
        }
    }

    pub fn parse(text: &str) -> Option<AlertScope> {
        match text {
            "user" => Some(AlertScope::User),
            "deal" => Some(AlertScope::Deal),
            "firm" => Some(AlertScope::Firm),
            _ => None,
        }
    }
}

/// The level of a projected overrun (the other levels are shares and cap levels).
pub const PROJECTED_OVERRUN: &str = "projected_overrun";

/// Where the webhook delivery of an alert stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `delivered`, `pending` or `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// One alert as people read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: i64,
    pub scope: AlertScope,
    pub scope_id: i64,
    /// The budget it is about: "ana@firm.com's monthly budget", "Harbor Point's budget",
    /// "the firm's daily spending cap".
    pub subject: String,
    /// `50%`, `warning`, `blocked`, `critical`, `stop`, `projected_overrun`.
    pub level: String,
    pub period: String,
    pub used: i64,
    pub budget: i64,
    /// `tokens` or `microusd`.
    pub unit: String,
    pub message: String,
    /// `YYYY-MM-DD HH:MM` UTC.
    pub at: String,
    /// Who acknowledged it and when, if anyone has.
    pub acknowledged: Option<(String, String)>,
    pub delivery: Option<Delivery>,
}

/// An amount in an alert's unit.
pub fn amount(value: i64, unit: &str) -> String {
    if unit == "microusd" { format_dollars(value) } else { format!("{} tokens", format_tokens(value.max(0) as u64)) }
}

/// The sentence of an alert.
pub fn message(subject: &str, level: &str, used: i64, budget: i64, unit: &str) -> String {
    let used_text = amount(used, unit);
    let budget_text = amount(budget, unit);
    match level {
        PROJECTED_OVERRUN => format!("At this pace {subject} will be overrun before its period ends (projected {used_text} of {budget_text})."),
        "warning" => format!("{subject} has reached its warning level: {used_text} of {budget_text}."),
        "blocked" => format!("{subject} is used up: {used_text} of {budget_text}."),
        "critical" => format!("{subject} is at its critical level: {used_text} of {budget_text}; large requests are refused."),
        "stop" => format!("{subject} is at its stop level: {used_text} of {budget_text}; every call is refused until it resets."),
        share => format!("{subject}: {share} used ({used_text} of {budget_text})."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_read_as_sentences() {
        assert_eq!(message("ana@firm.com's monthly budget", "75%", 37_500_000, 50_000_000, "microusd"), "ana@firm.com's monthly budget: 75% used ($37.50 of $50.00).");
        assert_eq!(message("Harbor Point's budget", "warning", 800_000, 1_000_000, "tokens"), "Harbor Point's budget has reached its warning level: 800,000 tokens of 1,000,000 tokens.");
        assert!(message("the firm's daily spending cap", PROJECTED_OVERRUN, 1, 2, "microusd").starts_with("At this pace the firm's daily spending cap will be overrun"));
    }
}
