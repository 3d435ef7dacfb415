//! Cost arithmetic, in integers, the same in the server and the browser. A rate is
//! micro-dollars per million tokens ($2.50 / MTok is 2_500_000), so tokens × rate is a
//! cost in micro-micro-dollars; a call's cost sums every kind of token before one
//! rounding to the micro-dollar. Cache writes are priced by lifetime (5 minutes or
//! 1 hour). The dated prices per model are in `price_book`.

use serde::{Deserialize, Serialize};

/// Micro-dollars per million tokens for each kind of token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

impl Rates {
    /// Rates from input and output prices, with the cache priced at Anthropic's usual
    /// multiples of input: 5-minute writes 1.25×, 1-hour writes 2×, reads 0.1×.
    pub fn from_input_output(input: u64, output: u64) -> Rates {
        Rates { input, output, cache_write_5m: input * 5 / 4, cache_write_1h: input * 2, cache_read: input / 10 }
    }
}

/// Micro-dollars per million tokens from US dollars per million tokens (`2.5` → 2_500_000).
pub fn micro_per_mtok(usd_per_mtok: f64) -> u64 {
    (usd_per_mtok * 1_000_000.0).round().max(0.0) as u64
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// All cache writes, 5-minute and 1-hour.
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// The part of `cache_creation_input_tokens` written for 1 hour.
    #[serde(default)]
    pub cache_creation_1h_input_tokens: u64,
}

impl TokenUsage {
    /// All input (uncached, cache writes, cache reads) plus output: what budgets count.
    pub fn budget_tokens(&self) -> u64 {
        self.prompt_tokens() + self.output_tokens
    }

    /// The prompt as a long-prompt tier measures it: input, cache writes and cache reads.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
    }

    fn cache_creation_1h(&self) -> u64 {
        self.cache_creation_1h_input_tokens.min(self.cache_creation_input_tokens)
    }
}

/// Cost in micro-dollars (USD × 10⁶), rounded once, to the nearest.
pub fn cost_microusd(usage: &TokenUsage, rates: &Rates) -> i64 {
    let one_hour = usage.cache_creation_1h();
    let five_minutes = usage.cache_creation_input_tokens - one_hour;
    let parts = [
        (usage.input_tokens, rates.input),
        (usage.output_tokens, rates.output),
        (five_minutes, rates.cache_write_5m),
        (one_hour, rates.cache_write_1h),
        (usage.cache_read_input_tokens, rates.cache_read),
    ];
    let total: u128 = parts.iter().map(|&(tokens, rate)| u128::from(tokens) * u128::from(rate)).sum();
    i64::try_from((total + 500_000) / 1_000_000).unwrap_or(i64::MAX)
}

/// Higher rates for every token of a call whose prompt is over `above_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongPromptTier {
    pub above_tokens: u64,
    pub rates: Rates,
}

/// A model's price from `effective_from` (epoch milliseconds) until a later one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub model: String,
    pub effective_from: i64,
    pub rates: Rates,
    pub long_prompt: Option<LongPromptTier>,
    /// Where the price comes from: `built-in`, `Leptos.toml`, or the admin who set it.
    pub source: String,
}

impl ModelPrice {
    /// The rates for a call whose prompt is `prompt_tokens` long.
    pub fn rates_for_prompt(&self, prompt_tokens: u64) -> Rates {
        match self.long_prompt {
            Some(tier) if prompt_tokens > tier.above_tokens => tier.rates,
            _ => self.rates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sonnet_4_6() -> Rates {
        usd(3.0, 15.0, 3.75, 6.0, 0.30)
    }

    fn usd(input: f64, output: f64, write_5m: f64, write_1h: f64, read: f64) -> Rates {
        Rates { input: micro_per_mtok(input), output: micro_per_mtok(output), cache_write_5m: micro_per_mtok(write_5m), cache_write_1h: micro_per_mtok(write_1h), cache_read: micro_per_mtok(read) }
    }

    #[test]
    fn cost_counts_every_kind_of_token() {
        let usage = TokenUsage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_creation_input_tokens: 200_000,
            cache_read_input_tokens: 1_000_000,
            cache_creation_1h_input_tokens: 0,
        };
        // 3.00 + 1.50 + 0.75 + 0.30 = 5.55 USD
        assert_eq!(cost_microusd(&usage, &sonnet_4_6()), 5_550_000);
        assert_eq!(usage.budget_tokens(), 2_300_000);
    }

    #[test]
    fn one_hour_cache_writes_cost_the_one_hour_rate() {
        let five_minutes = TokenUsage { cache_creation_input_tokens: 1_000_000, ..Default::default() };
        let one_hour = TokenUsage { cache_creation_1h_input_tokens: 1_000_000, ..five_minutes };
        assert_eq!(cost_microusd(&five_minutes, &sonnet_4_6()), 3_750_000);
        assert_eq!(cost_microusd(&one_hour, &sonnet_4_6()), 6_000_000);
        // A split: 400k for an hour, 600k for five minutes.
        let split = TokenUsage { cache_creation_1h_input_tokens: 400_000, ..five_minutes };
        assert_eq!(cost_microusd(&split, &sonnet_4_6()), 2_400_000 + 2_250_000);
        // A 1-hour part larger than the whole (a malformed reply) counts as the whole.
        let odd = TokenUsage { cache_creation_1h_input_tokens: 5_000_000, ..five_minutes };
        assert_eq!(cost_microusd(&odd, &sonnet_4_6()), 6_000_000);
    }

    #[test]
    fn small_calls_round_once_to_the_micro_dollar() {
        let usage = TokenUsage { input_tokens: 25, output_tokens: 31, ..Default::default() };
        assert_eq!(cost_microusd(&usage, &sonnet_4_6()), 75 + 465);
        // 1 token at $0.10 / MTok is 0.1 µUSD: 5 of them round to 1, 4 to 0.
        let cheap = Rates { input: 100_000, ..Default::default() };
        assert_eq!(cost_microusd(&TokenUsage { input_tokens: 5, ..Default::default() }, &cheap), 1);
        assert_eq!(cost_microusd(&TokenUsage { input_tokens: 4, ..Default::default() }, &cheap), 0);
        // No overflow at absurd counts.
        let huge = TokenUsage { input_tokens: u64::MAX, output_tokens: u64::MAX, ..Default::default() };
        assert!(cost_microusd(&huge, &sonnet_4_6()) > 0);
    }
}
