//! Offline token estimation. Claude has no public offline tokenizer, so this is a
//! character-class rule: letters run about 4 characters per token in English prose,
//! digits about 2.5, and punctuation/symbols (frequent in code, tables and JSON) close
//! to one token each. Pure and dependency-free so the browser runs the very same code
//! for the pre-flight estimate. Calibration against real usage comes with budgets.

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
    let mut total = PER_REQUEST_TOKENS + estimate_text_tokens(system);
    for content in messages {
        total += PER_MESSAGE_TOKENS + estimate_text_tokens(content);
    }
    total
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
