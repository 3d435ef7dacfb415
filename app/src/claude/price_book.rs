//! The price book: dated prices per model. A record is priced with the price in force at
//! its time; a model with a long-prompt tier is priced by it for every token of a call
//! whose prompt (input, cache writes and cache reads) is over the tier's threshold; a
//! model with no price is charged at the fallback rates and flagged, never at $0.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::pricing::{LongPromptTier, ModelPrice, Rates, TokenUsage, cost_microusd, micro_per_mtok};

/// What a call costs, and whether its model had no price (fallback rates, flagged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priced {
    pub cost_microusd: i64,
    pub unpriced: bool,
}

/// Dated prices per model, and the fallback rates for a model with none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceBook {
    by_model: HashMap<String, Vec<ModelPrice>>,
    pub fallback: Rates,
    /// Identifies the stored prices this book was built from (the newest row's id).
    pub version: i64,
}

impl PriceBook {
    /// A book of `prices` (later ones win at equal dates) over `fallback`.
    pub fn new(prices: impl IntoIterator<Item = ModelPrice>, fallback: Rates, version: i64) -> PriceBook {
        let mut by_model: HashMap<String, Vec<ModelPrice>> = HashMap::new();
        for price in prices {
            let dated = by_model.entry(price.model.clone()).or_default();
            dated.retain(|p| p.effective_from != price.effective_from);
            dated.push(price);
        }
        for dated in by_model.values_mut() {
            dated.sort_by_key(|p| p.effective_from);
        }
        PriceBook { by_model, fallback, version }
    }

    /// The price of `model` in force at `at`.
    pub fn price_at(&self, model: &str, at: i64) -> Option<&ModelPrice> {
        self.by_model.get(model)?.iter().rev().find(|p| p.effective_from <= at)
    }

    /// The rates a call to `model` at `at` with a prompt of `prompt_tokens` is priced at,
    /// and whether they are the fallback (the model has no price then).
    pub fn rates_at(&self, model: &str, at: i64, prompt_tokens: u64) -> (Rates, bool) {
        match self.price_at(model, at) {
            Some(price) => (price.rates_for_prompt(prompt_tokens), false),
            None => (self.fallback, true),
        }
    }

    /// The cost of `usage` on `model` at `at`.
    pub fn cost(&self, model: &str, at: i64, usage: &TokenUsage) -> Priced {
        let (rates, unpriced) = self.rates_at(model, at, usage.prompt_tokens());
        Priced { cost_microusd: cost_microusd(usage, &rates), unpriced }
    }

    /// Every price, by model then date.
    pub fn all(&self) -> Vec<&ModelPrice> {
        let mut all: Vec<&ModelPrice> = self.by_model.values().flatten().collect();
        all.sort_by(|a, b| a.model.cmp(&b.model).then(a.effective_from.cmp(&b.effective_from)));
        all
    }
}

/// The price book every part of a running app reads, replaced whole when prices change.
#[derive(Clone, Debug)]
pub struct SharedPriceBook {
    /// The prices that never change while the app runs (built-in and configured).
    base: Arc<Vec<ModelPrice>>,
    fallback: Rates,
    current: Arc<RwLock<Arc<PriceBook>>>,
}

impl SharedPriceBook {
    pub fn new(base: Vec<ModelPrice>, fallback: Rates) -> SharedPriceBook {
        let book = PriceBook::new(base.clone(), fallback, 0);
        SharedPriceBook { base: Arc::new(base), fallback, current: Arc::new(RwLock::new(Arc::new(book))) }
    }

    pub fn current(&self) -> Arc<PriceBook> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuilds the book from the base and the stored prices (`version`: their newest id).
    pub fn reload(&self, stored: Vec<ModelPrice>, version: i64) {
        let book = PriceBook::new(self.base.iter().cloned().chain(stored), self.fallback, version);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(book);
    }
}

const SOURCE: &str = "built-in";

/// Epoch milliseconds of a UTC date.
fn utc_date_ms(year: i32, month: u32, day: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// `Rates` from US dollars per million tokens: input, output, 5-minute cache write,
/// 1-hour cache write, cache read.
fn usd(input: f64, output: f64, write_5m: f64, write_1h: f64, read: f64) -> Rates {
    Rates {
        input: micro_per_mtok(input),
        output: micro_per_mtok(output),
        cache_write_5m: micro_per_mtok(write_5m),
        cache_write_1h: micro_per_mtok(write_1h),
        cache_read: micro_per_mtok(read),
    }
}

/// Anthropic's list prices for the models a firm would use today (the current Fable,
/// Opus, Sonnet and Haiku) and the previous generation still served, as published in
/// November 2026. Each dated from the model's release or the price change. Prices before
/// a model's first date are unknown to the book (such calls cannot exist).
pub fn built_in_prices() -> Vec<ModelPrice> {
    let price = |model: &str, (y, m, d): (i32, u32, u32), rates: Rates| ModelPrice {
        model: model.to_string(),
        effective_from: utc_date_ms(y, m, d),
        rates,
        long_prompt: None,
        source: SOURCE.to_string(),
    };
    // Models in service before DealDesk's first release are dated from its start.
    const BEFORE: (i32, u32, u32) = (2025, 1, 1);
    let mut prices = vec![
        // Source: platform.claude.com/docs/en/about-claude/pricing, "Model pricing" (Claude
        // Fable 5.1: $10 input, $12.50 5m write, $20 1h write, $0.25 cache hits, $50 output).
        price("claude-fable-5-1", (2026, 9, 1), usd(10.0, 50.0, 12.50, 20.0, 0.25)),
        // Source: same table (Claude Fable 5: cache hits $1).
        price("claude-fable-5", BEFORE, usd(10.0, 50.0, 12.50, 20.0, 1.0)),
        // Source: platform.claude.com/docs/en/models/opus-5-5/overview, "Pricing" ($4 input,
        // $20 output, $5 5m write, $8 1h write, $0.20 cache read); released 2026-09-22.
        price("claude-opus-5-5", (2026, 9, 22), usd(4.0, 20.0, 5.0, 8.0, 0.20)),
        // Source: platform.claude.com/docs/en/models/opus-5/overview ($5 / $25, $6.25 5m,
        // $10 1h, $0.50 read); released 2026-07-24.
        price("claude-opus-5", (2026, 7, 24), usd(5.0, 25.0, 6.25, 10.0, 0.50)),
        // Source: platform.claude.com/docs/en/about-claude/pricing (Claude Opus 4.8, 4.7,
        // 4.6, 4.5 rows: $5 / $6.25 / $10 / $0.50 / $25).
        price("claude-opus-4-8", BEFORE, usd(5.0, 25.0, 6.25, 10.0, 0.50)),
        price("claude-opus-4-7", BEFORE, usd(5.0, 25.0, 6.25, 10.0, 0.50)),
        price("claude-opus-4-6", BEFORE, usd(5.0, 25.0, 6.25, 10.0, 0.50)),
        price("claude-opus-4-5", BEFORE, usd(5.0, 25.0, 6.25, 10.0, 0.50)),
        // Source: platform.claude.com/docs/en/models/sonnet-5-5/overview ($2 / $10, $2.50
        // 5m, $4 1h, $0.20 read); released 2026-09-28.
        price("claude-sonnet-5-5", (2026, 9, 28), usd(2.0, 10.0, 2.50, 4.0, 0.20)),
        // Source: platform.claude.com/docs/en/models/sonnet-5-5/migration-guide ("prompt
        // cache reads, which cost $0.10 USD per million tokens, half the Claude Sonnet 5
        // rate"); in force from 2026-10-07, the day the pricing page changed.
        price("claude-sonnet-5-5", (2026, 10, 7), usd(2.0, 10.0, 2.50, 4.0, 0.10)),
        // Source: platform.claude.com/docs/en/models/sonnet-5/overview ($2 / $10, $2.50 5m,
        // $4 1h, $0.20 read; the planned September increase to $3 / $15 was cancelled);
        // released 2026-06-30.
        price("claude-sonnet-5", (2026, 6, 30), usd(2.0, 10.0, 2.50, 4.0, 0.20)),
        // Source: platform.claude.com/docs/en/about-claude/pricing (Claude Sonnet 4.6:
        // $3 / $3.75 / $6 / $0.30 / $15).
        price("claude-sonnet-4-6", BEFORE, usd(3.0, 15.0, 3.75, 6.0, 0.30)),
        // Source: platform.claude.com/docs/en/about-claude/pricing (Claude Haiku 4.5:
        // $1 / $1.25 / $2 / $0.10 / $5).
        price("claude-haiku-4-5", BEFORE, usd(1.0, 5.0, 1.25, 2.0, 0.10)),
    ];
    // Source: platform.claude.com/docs/en/models/haiku-5-5/overview, "Pricing": prompts up
    // to 100,000 tokens $0.10 input / $0.50 output / $0.125 5m / $0.20 1h / $0.01 read;
    // over 100,000 tokens $0.50 / $2.50 / $0.625 / $1.00 / $0.05; released 2026-10-07.
    let mut haiku = price("claude-haiku-5-5", (2026, 10, 7), usd(0.10, 0.50, 0.125, 0.20, 0.01));
    haiku.long_prompt = Some(LongPromptTier { above_tokens: 100_000, rates: usd(0.50, 2.50, 0.625, 1.0, 0.05) });
    prices.push(haiku);
    // The offline model is priced like the default model, so demo costs look like real ones.
    prices.push(price(super::OFFLINE_MODEL, (1970, 1, 1), usd(2.0, 10.0, 2.50, 4.0, 0.10)));
    prices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_applies_from_its_date_and_later_prices_replace_it() {
        let book = PriceBook::new(built_in_prices(), Rates::from_input_output(3_000_000, 15_000_000), 0);
        let before_cut = utc_date_ms(2026, 10, 6);
        let after_cut = utc_date_ms(2026, 10, 7);
        let read = TokenUsage { cache_read_input_tokens: 1_000_000, ..Default::default() };
        assert_eq!(book.cost("claude-sonnet-5-5", before_cut, &read), Priced { cost_microusd: 200_000, unpriced: false });
        assert_eq!(book.cost("claude-sonnet-5-5", after_cut, &read), Priced { cost_microusd: 100_000, unpriced: false });
        // Before its release the model has no price: the fallback, flagged.
        assert!(book.cost("claude-sonnet-5-5", utc_date_ms(2026, 9, 1), &read).unpriced);
    }

    #[test]
    fn unknown_models_are_flagged_and_never_free() {
        let book = PriceBook::new(built_in_prices(), Rates::from_input_output(3_000_000, 15_000_000), 0);
        let usage = TokenUsage { input_tokens: 1000, output_tokens: 1000, ..Default::default() };
        let priced = book.cost("claude-future-9", utc_date_ms(2026, 11, 23), &usage);
        assert!(priced.unpriced);
        assert_eq!(priced.cost_microusd, 3_000 + 15_000);
    }

    #[test]
    fn a_long_prompt_is_priced_by_its_tier_for_every_token() {
        let book = PriceBook::new(built_in_prices(), Rates::default(), 0);
        let at = utc_date_ms(2026, 11, 23);
        let short = TokenUsage { input_tokens: 100_000, output_tokens: 1_000_000, ..Default::default() };
        // $0.01 + $0.50
        assert_eq!(book.cost("claude-haiku-5-5", at, &short).cost_microusd, 10_000 + 500_000);
        // One token more, counting cache reads: $0.50 per MTok in, $2.50 out.
        let long = TokenUsage { cache_read_input_tokens: 1, ..short };
        assert_eq!(book.cost("claude-haiku-5-5", at, &long).cost_microusd, 50_000 + 2_500_000);
    }

    #[test]
    fn later_entries_at_the_same_date_win() {
        let at = utc_date_ms(2026, 1, 1);
        let mut ours = built_in_prices().into_iter().find(|p| p.model == "claude-sonnet-4-6").unwrap();
        ours.rates.input = 1;
        ours.source = "admin".into();
        let book = PriceBook::new(built_in_prices().into_iter().chain([ours.clone()]), Rates::default(), 7);
        assert_eq!(book.price_at("claude-sonnet-4-6", at), Some(&ours));
        assert_eq!(book.version, 7);
    }

    #[test]
    fn the_shared_book_reloads_stored_prices_over_its_base() {
        let shared = SharedPriceBook::new(built_in_prices(), Rates::default());
        let at = utc_date_ms(2027, 1, 1);
        let mut new = built_in_prices().into_iter().find(|p| p.model == "claude-haiku-4-5").unwrap();
        new.effective_from = utc_date_ms(2026, 12, 1);
        new.rates.input = 2_000_000;
        shared.reload(vec![new], 3);
        let book = shared.current();
        assert_eq!(book.version, 3);
        assert_eq!(book.rates_at("claude-haiku-4-5", at, 0).0.input, 2_000_000);
        assert_eq!(book.rates_at("claude-haiku-4-5", utc_date_ms(2026, 11, 30), 0).0.input, 1_000_000);
    }
}
