//! The price book admins keep: the built-in list prices (cited beside each in
//! `claude::price_book`), the ones configured in `Leptos.toml`, and dated prices added
//! on `/admin/prices` (or `server prices set`), which apply to calls from their date on
//! without a restart. Every instance reloads the book when the stored prices change.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::claude::pricing::{LongPromptTier, Rates};
use crate::error::AppError;

/// Where a price stands on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceStatus {
    /// The price calls are charged at now.
    Current,
    /// Takes effect later.
    Scheduled,
    /// Replaced by a later one; kept for the calls it priced.
    Past,
}

/// One dated price as the admin page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceRow {
    pub model: String,
    /// `YYYY-MM-DD HH:MM` UTC.
    pub from: String,
    pub rates: Rates,
    pub long_prompt: Option<LongPromptTier>,
    pub source: String,
    pub status: PriceStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceBookView {
    pub prices: Vec<PriceRow>,
    /// What a model with no price is charged (and flagged).
    pub fallback: Rates,
    /// The model calls ask for (`claude.model`).
    pub default_model: String,
}

/// Longest model name accepted.
pub const MAX_MODEL_CHARS: usize = 100;
/// Highest price accepted, USD per million tokens.
pub const MAX_USD_PER_MTOK: u64 = 100_000;

/// A price in USD per million tokens as admins write it (`2.50`, `$2.5`, `0.125`), in
/// micro-dollars per million tokens. Exact: decimal digits, at most six after the point.
pub fn parse_usd_per_mtok(text: &str, field: &str) -> Result<u64, AppError> {
    let refuse = || AppError::invalid(format!("{field}: write a price in USD per million tokens, such as 2.50 (at most {MAX_USD_PER_MTOK})."));
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text).trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 6 || whole.len() > 6 {
        return Err(refuse());
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| refuse())? };
    let micro_fraction: u64 = format!("{fraction:0<6}").parse().map_err(|_| refuse())?;
    let micro = whole * 1_000_000 + micro_fraction;
    if micro > MAX_USD_PER_MTOK * 1_000_000 {
        return Err(refuse());
    }
    Ok(micro)
}

/// A model name as the API spells it: letters, digits, `-`, `.`, `_`, `:`, `[`, `]`.
pub fn parse_model(text: &str) -> Result<String, AppError> {
    let model = text.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if model.is_empty() || model.chars().count() > MAX_MODEL_CHARS || !model.chars().all(allowed) {
        return Err(AppError::invalid(format!(
            "Model: write the model's API name, such as claude-sonnet-5-5 (letters, digits, - . _ : [ ]; at most {MAX_MODEL_CHARS})."
        )));
    }
    Ok(model.to_string())
}

/// The form's rates: input and output are required; an empty cache price takes
/// Anthropic's usual multiple of the input price (5-minute writes 1.25×, 1-hour 2×,
/// reads 0.1×).
pub fn parse_rates(input: &str, output: &str, write_5m: &str, write_1h: &str, read: &str, prefix: &str) -> Result<Rates, AppError> {
    let input = parse_usd_per_mtok(input, &format!("{prefix}input"))?;
    let output = parse_usd_per_mtok(output, &format!("{prefix}output"))?;
    let defaults = Rates::from_input_output(input, output);
    let optional = |text: &str, field: &str, default: u64| {
        if text.trim().is_empty() { Ok(default) } else { parse_usd_per_mtok(text, &format!("{prefix}{field}")) }
    };
    Ok(Rates {
        input,
        output,
        cache_write_5m: optional(write_5m, "5-minute cache write", defaults.cache_write_5m)?,
        cache_write_1h: optional(write_1h, "1-hour cache write", defaults.cache_write_1h)?,
        cache_read: optional(read, "cache read", defaults.cache_read)?,
    })
}

/// An optional long-prompt tier: all of its fields empty, or a threshold and rates.
pub fn parse_long_prompt(above_tokens: &str, rates: [&str; 5]) -> Result<Option<LongPromptTier>, AppError> {
    if above_tokens.trim().is_empty() && rates.iter().all(|r| r.trim().is_empty()) {
        return Ok(None);
    }
    let threshold: u64 = above_tokens
        .trim()
        .replace([',', '_'], "")
        .parse()
        .ok()
        .filter(|n| (1..=10_000_000).contains(n))
        .ok_or_else(|| AppError::invalid("Long-prompt tier: the threshold is a whole number of prompt tokens, such as 100000."))?;
    let [input, output, write_5m, write_1h, read] = rates;
    let rates = parse_rates(input, output, write_5m, write_1h, read, "Long-prompt ")?;
    Ok(Some(LongPromptTier { above_tokens: threshold, rates }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_or_are_refused() {
        for (text, micro) in [("2.50", 2_500_000), ("$2.5", 2_500_000), ("0.125", 125_000), ("10", 10_000_000), (".01", 10_000), ("0.000001", 1)] {
            assert_eq!(parse_usd_per_mtok(text, "x").unwrap(), micro, "{text}");
        }
        for text in ["", "-1", "2,50", "1e3", "0.0000001", "100001", "abc", "1.2.3", " . ", "NaN"] {
            assert!(parse_usd_per_mtok(text, "x").is_err(), "{text}");
        }
    }

    #[test]
    fn empty_cache_prices_take_the_usual_multiples() {
        let rates = parse_rates("2", "10", "", "", "", "").unwrap();
        assert_eq!(rates, Rates { input: 2_000_000, output: 10_000_000, cache_write_5m: 2_500_000, cache_write_1h: 4_000_000, cache_read: 200_000 });
        assert_eq!(parse_rates("2", "10", "3", "", "0.1", "").unwrap().cache_write_5m, 3_000_000);
    }

    #[test]
    fn a_long_prompt_tier_is_all_or_nothing() {
        assert_eq!(parse_long_prompt(" ", ["", "", "", "", ""]).unwrap(), None);
        let tier = parse_long_prompt("100,000", ["0.5", "2.5", "", "", ""]).unwrap().unwrap();
        assert_eq!(tier.above_tokens, 100_000);
        assert!(parse_long_prompt("", ["0.5", "2.5", "", "", ""]).is_err());
        assert!(parse_long_prompt("100000", ["", "", "", "", ""]).is_err());
    }

    #[test]
    fn model_names_are_api_names() {
        assert_eq!(parse_model(" claude-haiku-5-5 ").unwrap(), "claude-haiku-5-5");
        assert!(parse_model("claude-sonnet-5-5[1m]").is_ok());
        for bad in ["", "claude sonnet", "<script>", &"x".repeat(101)] {
            assert!(parse_model(bad).is_err(), "{bad}");
        }
    }
}
