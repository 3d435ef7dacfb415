//! The built-in simulated Claude, used when no `ANTHROPIC_API_KEY` is set: deterministic,
//! deal-aware canned replies with usage computed from the request and reply text, so a
//! fresh checkout works end to end and the budgets and dashboards see realistic numbers.

use super::client::{ClaudeReply, ClaudeRequest};
use super::estimate::{estimate_request_tokens, estimate_text_tokens};
use super::pricing::TokenUsage;
use super::{OFFLINE_MODEL, Role};

pub fn reply(request: &ClaudeRequest) -> ClaudeReply {
    let question = request
        .messages
        .iter()
        .rev()
        .find(|t| t.role == Role::User)
        .map(|t| t.content.as_str())
        .unwrap_or_default();
    let turn = request.messages.iter().filter(|t| t.role == Role::User).count();
    let facts = DealFacts::from_system(&request.system);
    let text = answer(question, turn, &facts);
    let input_tokens = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str()));
    let output_tokens = estimate_text_tokens(&text).min(u64::from(request.max_tokens));
    ClaudeReply {
        request_id: Some(format!("offline_{:016x}", fingerprint(request))),
        text,
        tool_input: None,
        stop_reason: Some("end_turn".into()),
        model: OFFLINE_MODEL.into(),
        usage: TokenUsage { input_tokens, output_tokens, ..Default::default() },
        usage_record_id: None,
    }
}

/// The deal facts the system prompt carries, one `Key: value` per line.
#[derive(Default)]
struct DealFacts {
    name: String,
    property_type: String,
    asking_price: String,
}

impl DealFacts {
    fn from_system(system: &str) -> DealFacts {
        let mut facts = DealFacts::default();
        for line in system.lines() {
            if let Some((key, value)) = line.split_once(':') {
                let value = value.trim().to_string();
                match key.trim() {
                    "Deal" => facts.name = value,
                    "Property type" => facts.property_type = value,
                    "Asking price" => facts.asking_price = value,
                    _ => {}
                }
            }
        }
        if facts.name.is_empty() {
            facts.name = "this deal".into();
        }
        facts
    }
}

fn answer(question: &str, turn: usize, deal: &DealFacts) -> String {
    let q = question.to_lowercase();
    let name = &deal.name;
    let price = if deal.asking_price.is_empty() || deal.asking_price == "not given" {
        "the asking price (not yet entered)".to_string()
    } else {
        format!("the {} asking price", deal.asking_price)
    };
    let kind = if deal.property_type.is_empty() { "property".to_string() } else { deal.property_type.to_lowercase() };
    let body = if q.contains("cap") || q.contains("noi") || q.contains("yield") {
        format!(
            "For {name}, the going-in cap rate is NOI divided by price. At {price}, every \
             $100,000 of stabilised NOI moves the cap rate by about {} basis points. Check \
             the rent roll against the broker's NOI: normalise vacancy to market, add a \
             management fee if the seller self-manages, and reserve for capital items.",
            bps_per_100k(&deal.asking_price)
        )
    } else if q.contains("risk") {
        format!(
            "The main risks I would underwrite for {name}: (1) tenant rollover in the next \
             three years and the downtime and leasing costs that come with it; (2) exit cap \
             expansion — model at least 50 bp above going-in; (3) deferred capital \
             expenditure typical for a {kind}; (4) interest-rate exposure if the debt floats."
        )
    } else if q.contains("price") || q.contains("value") || q.contains("offer") || q.contains("discount") {
        format!(
            "On pricing {name}: start from {price}, then test it three ways — a direct cap on \
             in-place NOI, a five-year DCF with a conservative exit, and price per square foot \
             against recent comparable sales. A bid 5% under ask is a reasonable opening if \
             the comps support it."
        )
    } else {
        format!(
            "Here is how I would approach your question on {name}, a {kind} at {price}: \
             confirm the rent roll and operating statements, compare the pricing with recent \
             sales comps, and stress the cash flows for vacancy and exit cap rate. Ask me about \
             the cap rate, pricing or risks for specifics."
        )
    };
    format!("{body}\n\n(Offline model — simulated reply {turn} in this conversation; no Claude call was made.)")
}

fn bps_per_100k(asking_price: &str) -> String {
    let digits: String = asking_price.chars().filter(char::is_ascii_digit).collect();
    match digits.parse::<f64>() {
        Ok(price) if price > 0.0 => format!("{:.0}", 100_000.0 / price * 10_000.0),
        _ => "a few".into(),
    }
}

/// FNV-1a over the request, for a deterministic request id.
fn fingerprint(request: &ClaudeRequest) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |text: &str| {
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&request.system);
    for turn in &request.messages {
        feed(turn.role.as_str());
        feed(&turn.content);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::history::Turn;

    fn request(question: &str) -> ClaudeRequest {
        ClaudeRequest {
            model: "claude-sonnet-4-6".into(),
            max_tokens: 4096,
            system: "You are an analyst assistant.\nDeal: Harbor Point\nProperty type: Office\nAsking price: $86,500,000\n".into(),
            messages: vec![Turn { role: Role::User, content: question.into() }],
            tool: None,
        }
    }

    #[test]
    fn replies_are_deterministic_and_deal_aware() {
        let a = reply(&request("What is the cap rate?"));
        let b = reply(&request("What is the cap rate?"));
        assert_eq!(a, b);
        assert!(a.text.contains("Harbor Point"));
        assert!(a.text.contains("cap rate"));
        assert!(a.text.contains("Offline model"));
        assert_eq!(a.model, OFFLINE_MODEL);
        assert_ne!(a.text, reply(&request("What are the risks?")).text);
    }

    #[test]
    fn usage_is_computed_from_the_texts() {
        let r = request("What are the risks?");
        let answer = reply(&r);
        assert_eq!(answer.usage.input_tokens, estimate_request_tokens(&r.system, ["What are the risks?"]));
        assert_eq!(answer.usage.output_tokens, estimate_text_tokens(&answer.text));
        assert!(answer.usage.output_tokens > 20);
    }
}
