//! Cost arithmetic: token counts times per-million-token rates, with a table per model
//! and default rates for models the table does not know (flagged, never silently $0).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

impl Rates {
    /// Rates from input/output prices, with cache writes at 1.25× and reads at 0.1× input
    /// (Anthropic's ratios for 5-minute caching).
    pub fn from_input_output(input: f64, output: f64) -> Rates {
        Rates { input, output, cache_write: input * 1.25, cache_read: input * 0.1 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl TokenUsage {
    /// All input (uncached, cache writes, cache reads) plus output: what budgets count.
    pub fn budget_tokens(&self) -> u64 {
        self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens + self.output_tokens
    }
}

/// Cost in micro-dollars (USD × 10⁶), rounded to the nearest.
pub fn cost_microusd(usage: &TokenUsage, rates: &Rates) -> i64 {
    // tokens × USD/Mtok = micro-USD exactly, before rounding.
    let micro = usage.input_tokens as f64 * rates.input
        + usage.output_tokens as f64 * rates.output
        + usage.cache_creation_input_tokens as f64 * rates.cache_write
        + usage.cache_read_input_tokens as f64 * rates.cache_read;
    micro.round() as i64
}

#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    pub models: HashMap<String, Rates>,
    pub default: Rates,
}

impl PriceTable {
    /// The model's rates, and whether the default rates had to stand in.
    pub fn rates_for(&self, model: &str) -> (Rates, bool) {
        match self.models.get(model) {
            Some(rates) => (*rates, false),
            None => (self.default, true),
        }
    }
}

pub fn format_usd(microusd: i64) -> String {
    let usd = microusd as f64 / 1e6;
    if usd != 0.0 && usd.abs() < 0.01 { format!("${usd:.4}") } else { format!("${usd:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sonnet() -> Rates {
        Rates { input: 3.0, output: 15.0, cache_write: 3.75, cache_read: 0.30 }
    }

    #[test]
    fn cost_counts_every_kind_of_token() {
        let usage = TokenUsage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_creation_input_tokens: 200_000,
            cache_read_input_tokens: 1_000_000,
        };
        // 3.00 + 1.50 + 0.75 + 0.30 = 5.55 USD
        assert_eq!(cost_microusd(&usage, &sonnet()), 5_550_000);
        assert_eq!(usage.budget_tokens(), 2_300_000);
    }

    #[test]
    fn small_calls_round_to_the_micro_dollar() {
        let usage = TokenUsage { input_tokens: 25, output_tokens: 31, ..Default::default() };
        assert_eq!(cost_microusd(&usage, &sonnet()), 75 + 465);
    }

    #[test]
    fn unknown_models_use_flagged_default_rates() {
        let table = PriceTable {
            models: HashMap::from([("claude-sonnet-4-6".to_string(), sonnet())]),
            default: Rates::from_input_output(3.0, 15.0),
        };
        assert_eq!(table.rates_for("claude-sonnet-4-6"), (sonnet(), false));
        let (rates, defaulted) = table.rates_for("claude-future-9");
        assert!(defaulted);
        assert!(rates.input > 0.0 && rates.output > 0.0);
        assert_eq!(rates.cache_write, 3.75);
    }

    #[test]
    fn formats_dollars() {
        assert_eq!(format_usd(5_550_000), "$5.55");
        assert_eq!(format_usd(540), "$0.0005");
        assert_eq!(format_usd(0), "$0.00");
    }
}
