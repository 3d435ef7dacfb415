//! Offline token estimation. Claude has no public offline tokenizer, so this is a
//! character-class rule: letters run about 4 characters per token in English prose,
//! digits about 2.5, and punctuation/symbols (frequent in code, tables and JSON) close
//! to one token each. Pure and dependency-free so the browser runs the very same code
//! for the pre-flight estimate. The gateway calibrates it per model and operation
//! against the usage Claude reports.

/// Tokens added per message for its role and framing.
pub const PER_MESSAGE_TOKENS: u64 = 4;
/// Tokens added once per request for its framing.
pub const PER_REQUEST_TOKENS: u64 = 8;

/// Estimated tokens of one text.
pub fn estimate_text_tokens(text: &str) -> u64 {
    let (mut letters, mut digits, mut symbols, mut other) = (0u64, 0u64, 0u64, 0u64);
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            letters += 1;
        } else if c.is_ascii_digit() {
            digits += 1;
        } else if c.is_whitespace() {
            // Spaces mostly merge into the following word's token.
        } else if c.is_ascii() {
            symbols += 1;
        } else {
            // Accented letters, CJK, emoji: roughly one token per character or more.
            other += 1;
        }
    }
    // Work in tenths to keep the arithmetic in integers (identical in wasm and native).
    let tenths = letters * 10 / 4 + digits * 10 * 2 / 5 + symbols * 8 + other * 12;
    tenths.div_ceil(10)
}

/// Estimated input tokens of a request: the system prompt plus its messages.
pub fn estimate_request_tokens<'a>(system: &str, messages: impl IntoIterator<Item = &'a str>) -> u64 {
    estimate_with_system_tokens(estimate_text_tokens(system), messages)
}

/// The same, when only the system prompt's estimate is known (the browser's case).
pub fn estimate_with_system_tokens<'a>(system_tokens: u64, messages: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut total = PER_REQUEST_TOKENS + system_tokens;
    for content in messages {
        total += PER_MESSAGE_TOKENS + estimate_text_tokens(content);
    }
    total
}

/// The tightest and loosest corrections calibration may apply: the estimator is built
/// to be within about 30% of Claude's tokenizer, so a larger gap means odd samples, not
/// a better estimate.
pub const CALIBRATION_RANGE: (f64, f64) = (0.75, 1.5);

/// Correction of the estimator for one model and operation: actual input tokens over
/// estimated ones, from recent calls `(estimated, actual)`. Clamped to
/// `CALIBRATION_RANGE` so a few unusual texts cannot make the estimator absurd; 1.0
/// without data.
pub fn calibration_factor(samples: &[(u64, u64)]) -> f64 {
    let estimated: u64 = samples.iter().map(|s| s.0).sum();
    let actual: u64 = samples.iter().map(|s| s.1).sum();
    if estimated == 0 || actual == 0 {
        return 1.0;
    }
    (actual as f64 / estimated as f64).clamp(CALIBRATION_RANGE.0, CALIBRATION_RANGE.1)
}

/// A raw estimate corrected by a calibration factor.
pub fn corrected(estimate: u64, factor: f64) -> u64 {
    (estimate as f64 * factor).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_free() {
        assert_eq!(estimate_text_tokens(""), 0);
        assert_eq!(estimate_text_tokens("   \n\t"), 0);
    }

    #[test]
    fn prose_is_about_four_characters_per_token() {
        let prose = "The property is a twenty storey office tower with a strong tenant roster and good access to transit";
        let tokens = estimate_text_tokens(prose);
        let chars = prose.chars().count() as u64;
        assert!(tokens * 35 / 10 <= chars && chars <= tokens * 55 / 10, "{tokens} tokens for {chars} chars");
    }

    #[test]
    fn code_costs_more_per_character_than_prose() {
        let code = "fn cap(noi: f64, price: f64) -> f64 { (noi / price) * 100.0 }";
        let prose = "the capital rate is the net operating income divided by the price we pay";
        let per_char = |t: &str| estimate_text_tokens(t) as f64 / t.chars().count() as f64;
        assert!(per_char(code) > per_char(prose) * 1.3);
    }

    #[test]
    fn requests_add_framing_per_message() {
        let single = estimate_request_tokens("sys", ["hello"]);
        let double = estimate_request_tokens("sys", ["hello", "hello"]);
        assert_eq!(double - single, PER_MESSAGE_TOKENS + estimate_text_tokens("hello"));
        assert_eq!(estimate_request_tokens("", []), PER_REQUEST_TOKENS);
    }

    #[test]
    fn calibration_converges_on_what_claude_reports() {
        // A tokenizer that counts 30% more than the estimator, with ±10% noise per call.
        let mut samples: Vec<(u64, u64)> = Vec::new();
        let mut errors = Vec::new();
        for i in 0..60u64 {
            let estimated = 500 + (i * 137) % 900;
            let noise = [1.0, 0.9, 1.05, 1.1, 0.95][(i % 5) as usize];
            let actual = (estimated as f64 * 1.3 * noise).round() as u64;
            let recent = &samples[samples.len().saturating_sub(50)..];
            let predicted = corrected(estimated, calibration_factor(recent));
            errors.push((predicted as f64 - actual as f64).abs() / actual as f64);
            samples.push((estimated, actual));
        }
        assert!(errors[0] > 0.2, "uncalibrated estimates are off by {:.0}%", errors[0] * 100.0);
        let late: f64 = errors[40..].iter().sum::<f64>() / 20.0;
        assert!(late < 0.08, "calibrated estimates are off by {:.1}% on average", late * 100.0);
        let factor = calibration_factor(&samples[10..]);
        assert!((factor - 1.3).abs() < 0.05, "factor {factor}");
    }

    #[test]
    fn calibration_without_data_or_with_outliers_stays_sane() {
        assert_eq!(calibration_factor(&[]), 1.0);
        assert_eq!(calibration_factor(&[(0, 100)]), 1.0);
        assert_eq!(calibration_factor(&[(10, 100_000)]), 1.5);
        assert_eq!(calibration_factor(&[(100_000, 10)]), 0.75);
        assert_eq!(corrected(100, 1.3), 130);
        assert_eq!(corrected(101, 1.0), 101);
    }

    #[test]
    fn estimates_grow_monotonically_with_text() {
        let mut text = String::new();
        let mut last = 0;
        for word in ["cap", " rate", " 6.5%", " on", " $12,500,000", " {json: true}"] {
            text.push_str(word);
            let now = estimate_text_tokens(&text);
            assert!(now >= last);
            last = now;
        }
    }
}
