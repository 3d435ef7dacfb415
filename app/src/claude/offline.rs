//! The built-in simulated Claude, used when no `ANTHROPIC_API_KEY` is set: deterministic,
//! deal-aware canned replies with usage computed from the request and reply text, so a
//! fresh checkout works end to end and the budgets and dashboards see realistic numbers.

use super::types::{ClaudeReply, ClaudeRequest, StopReason};
use super::estimate::{estimate_request_tokens, estimate_text_tokens};
use super::pricing::TokenUsage;
use super::{OFFLINE_MODEL, Operation, Speaker};

pub fn reply(operation: Operation, request: &ClaudeRequest) -> ClaudeReply {
    let question = request
        .messages
        .iter()
        .rev()
        .find(|t| t.role == Speaker::User)
        .map(|t| t.content.as_str())
        .unwrap_or_default();
    let turn = request.messages.iter().filter(|t| t.role == Speaker::User).count();
    let facts = DealFacts::from_system(&request.system);
    let (text, tool_input) = match (operation, &request.tool) {
        (_, Some(_)) => (String::new(), Some(extract_sales(question))),
        (Operation::Report, None) => (memo(&facts, &request.system), None),
        (Operation::Title, None) => (title(question, &facts), None),
        (Operation::Summary, None) => (summary(question, &facts), None),
        _ => (answer(question, turn, &facts), None),
    };
    let tool_tokens = request.tool.as_ref().map_or(0, |t| estimate_text_tokens(&t.input_schema.to_string()));
    let input_tokens = estimate_request_tokens(&request.system, request.messages.iter().map(|t| t.content.as_str())) + tool_tokens;
    let written = tool_input.as_ref().map_or_else(|| text.clone(), |v| v.to_string());
    let output_tokens = estimate_text_tokens(&written).min(u64::from(request.max_tokens));
    ClaudeReply {
        request_id: Some(format!("offline_{:016x}", fingerprint(request))),
        text,
        stop_reason: Some(if tool_input.is_some() { StopReason::ToolUse } else { StopReason::EndTurn }),
        tool_input,
        model: OFFLINE_MODEL.into(),
        usage: TokenUsage { input_tokens, output_tokens, ..Default::default() },
        usage_record_id: None,
        stored_with_record: None,
        stopped: false,
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

/// A conversation's title from its transcript ("Analyst: …" lines): its latest topic and
/// the deal.
fn title(transcript: &str, deal: &DealFacts) -> String {
    let first = transcript.lines().filter_map(|l| l.strip_prefix("Analyst: ")).last().unwrap_or_default().to_lowercase();
    let topic = if first.contains("table") || first.contains("sensitivity") {
        "Cap rate sensitivity".to_string()
    } else if first.contains("cap") || first.contains("noi") || first.contains("yield") {
        "Cap rate and NOI".to_string()
    } else if first.contains("risk") {
        "Underwriting risks".to_string()
    } else if first.contains("price") || first.contains("value") || first.contains("offer") {
        "Pricing an offer".to_string()
    } else {
        "Deal questions".to_string()
    };
    format!("{topic} for {}", deal.name)
}

/// A summary of a transcript ("Analyst: …" and "Claude: …" lines): what was asked, in
/// order, and how long the conversation was.
fn summary(transcript: &str, deal: &DealFacts) -> String {
    let asked: Vec<String> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("Analyst: "))
        .map(|q| {
            let q: String = q.chars().take(90).collect();
            format!("- The analyst asked: {}", q.trim())
        })
        .collect();
    let answers = transcript.lines().filter(|l| l.starts_with("Claude: ")).count();
    let shown = asked.len().min(6);
    format!(
        "Conversation about {} so far ({} questions, {answers} answers):\n\n{}\n\nClaude answered each with the deal's facts; \
         no figures were agreed beyond those in the deal notes.\n\n(Offline model — simulated summary.)",
        deal.name,
        asked.len(),
        asked[asked.len() - shown..].join("\n"),
    )
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
    let body = if q.contains("in detail") || q.contains("walk me through") {
        walkthrough(name, &price, &kind)
    } else if q.contains("table") || q.contains("sensitivity") {
        let rows: String = [5.5f64, 6.0, 6.5, 7.0]
            .iter()
            .map(|cap| {
                // $14.3M to $18.2M: always millions, so grouped by hand (claude/ names no base module).
                let value = (1_000_000.0 / (cap / 100.0)).round() as i64;
                format!("| {cap:.1}% | ${},{:03},{:03} |\n", value / 1_000_000, value / 1000 % 1000, value % 1000)
            })
            .collect();
        format!("Value of **$1,000,000 of NOI** for {name} at each cap rate:\n\n| Cap rate | Value |\n|---|---|\n{rows}")
    } else if q.contains("cap") || q.contains("noi") || q.contains("yield") {
        format!(
            "For {name}, the going-in cap rate is NOI divided by price. At {price}, every \
             $100,000 of stabilised NOI moves the cap rate by about {} basis points. Check \
             the rent roll against the broker's NOI: normalise vacancy to market, add a \
             management fee if the seller self-manages, and reserve for capital items.",
            bps_per_100k(&deal.asking_price)
        )
    } else if q.contains("risk") {
        format!(
            "**The main risks I would underwrite for {name}:**\n\n\
             1. Tenant rollover in the next three years, and the downtime and leasing costs that come with it.\n\
             2. Exit cap expansion: model at least 50 bp above going-in.\n\
             3. Deferred capital expenditure typical for a {kind}.\n\
             4. Interest-rate exposure if the debt floats."
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

/// A long answer (about 300 words), for questions asked "in detail".
fn walkthrough(name: &str, price: &str, kind: &str) -> String {
    let steps = [
        ("Rent roll", "Tie every lease to the rent roll: base rent, escalations, expiries, options and any free rent still to burn off. Mark leases that expire within the hold and price the downtime."),
        ("Operating statements", "Rebuild three years of operating statements line by line. Normalise vacancy and credit loss to market, add a management fee if the seller self-manages, and replace one-off savings with run-rate costs."),
        ("Net operating income", "Take stabilised NOI from the cleaned statements, not the broker's pro forma. Reconcile the two and explain every difference larger than one percent of revenue."),
        ("Capital plan", "Walk the roof, the mechanical systems and the parking. Put a reserve per square foot into the model and a separate line for known projects with contractor quotes."),
        ("Pricing", "Test the asking price three ways: a direct cap on in-place NOI, a five-year discounted cash flow with an exit cap at least 50 basis points above going-in, and price per square foot against recent comparable sales."),
        ("Debt", "Size the loan on debt yield and coverage, not only loan to value. If the debt floats, run the cash flows with the forward curve and with rates 200 basis points higher."),
        ("Returns", "Report levered and unlevered IRR, equity multiple and cash-on-cash by year. Show how each moves with exit cap, rent growth and downtime."),
        ("Recommendation", "Proceed only if the deal clears the fund's hurdle in the downside case; otherwise set the bid where it does."),
    ];
    let body: Vec<String> = steps.iter().enumerate().map(|(i, (head, text))| format!("{}. **{head}.** {text}", i + 1)).collect();
    format!("Here is how I would underwrite {name}, a {kind} at {price}, step by step:\n\n{}", body.join("\n\n"))
}

/// A reply streamed as Claude streams one: a piece (a word and the space after it) every
/// `interval`, handed to `streaming`; when it asks to stop, the reply ends there, billed
/// for the text written.
pub async fn stream(mut reply: ClaudeReply, interval: std::time::Duration, streaming: &mut super::types::Streaming) -> ClaudeReply {
    let text = std::mem::take(&mut reply.text);
    let mut written = 0;
    let mut watching = true;
    for piece in pieces(&text) {
        if *streaming.stop.borrow() {
            reply.text = text[..written].to_string();
            reply.usage.output_tokens = estimate_text_tokens(&reply.text);
            reply.stopped = true;
            return reply;
        }
        (streaming.on_text)(piece);
        written += piece.len();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = streaming.stop.changed(), if watching => watching = changed.is_ok(),
        }
    }
    reply.text = text;
    reply
}

/// `text` in pieces: each word with the white space after it.
pub fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let end = rest[word_end..].find(|c: char| !c.is_whitespace()).map_or(rest.len(), |n| word_end + n);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// A deterministic memo in Markdown from the deal facts and the comps table.
fn memo(deal: &DealFacts, system: &str) -> String {
    let comps: Vec<&str> = system.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Property")).collect();
    let kind = if deal.property_type.is_empty() { "property".to_string() } else { deal.property_type.to_lowercase() };
    let comps_text = if comps.is_empty() {
        "No comparable sales are recorded yet; extract some on the Sales comps tab to ground the valuation.".to_string()
    } else {
        format!(
            "{} comparable sales are on file:\n\n| Property | Address | Date | Price | SF | $/SF | Cap rate |\n|---|---|---|---|---|---|---|\n{}",
            comps.len(),
            comps.join("\n")
        )
    };
    format!(
        "## Summary\n\n{name} is a {kind} offered at {price}. This draft sets out the case, the numbers to verify and \
         a recommendation.\n\n## Property\n\nA {kind} asset; confirm the rent roll, lease expiries and capital needs in diligence.\n\n\
         ## Market and comps\n\n{comps_text}\n\n## Valuation view\n\nTriangulate {price} with a direct cap on in-place NOI, \
         a five-year DCF and price per SF against the comps.\n\n## Risks\n\n- Tenant rollover and leasing costs\n- Exit cap \
         expansion of 50 bp or more\n- Deferred capital expenditure\n\n## Recommendation\n\nProceed to a non-binding offer \
         subject to diligence on the points above.\n\n*Offline model — simulated memo; no Claude call was made.*",
        name = deal.name,
        price = if deal.asking_price.is_empty() { "an undisclosed price".to_string() } else { deal.asking_price.clone() },
    )
}

/// Comparable sales read from the text's numbers: each paragraph (or line) with a
/// dollar amount is a sale.
fn extract_sales(text: &str) -> serde_json::Value {
    let paragraphs: Vec<&str> = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect();
    let chunks: Vec<&str> = if paragraphs.len() > 1 { paragraphs } else { text.lines().map(str::trim).filter(|l| !l.is_empty()).collect() };
    let sales: Vec<serde_json::Value> = chunks.into_iter().filter_map(sale_from_chunk).collect();
    serde_json::json!({ "sales": sales })
}

fn sale_from_chunk(chunk: &str) -> Option<serde_json::Value> {
    let words: Vec<&str> = chunk.split_whitespace().collect();
    let number = |w: &str| -> Option<f64> {
        let cleaned: String = w.trim_matches(|c: char| !c.is_ascii_digit() && c != '.').replace(',', "");
        cleaned.parse().ok()
    };
    let mut price: Option<f64> = None;
    let mut sf = None;
    let mut cap = None;
    for (i, raw) in words.iter().enumerate() {
        let w = &raw.trim_end_matches([',', ';', ':', '.', ')']);
        let lower = w.to_lowercase();
        let next = words.get(i + 1).map(|n| n.to_lowercase()).unwrap_or_default();
        if w.starts_with('$') && !lower.contains("/sf") && !next.starts_with("per") && !next.starts_with("psf") {
            if let Some(mut v) = number(w) {
                if lower.ends_with('m') || next.starts_with("million") {
                    v *= 1e6;
                }
                if v >= 100_000.0 && price.is_none_or(|p| v > p) {
                    price = Some(v);
                }
            }
        } else if (next.starts_with("sf") || next.starts_with("square") || next.starts_with("sq")) && !w.starts_with('$') {
            sf = sf.or(number(w));
        } else if lower.ends_with('%') && words[i..words.len().min(i + 3)].iter().any(|n| n.to_lowercase().starts_with("cap")) {
            cap = cap.or(number(w));
        }
    }
    let price = price?;
    let head = chunk.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')' || c == '-' || c == '•' || c.is_whitespace());
    let name = head.split([',', '—', ';']).next().unwrap_or("").trim().to_string();
    let after = |label: &str| -> String {
        find_ascii_case_insensitive(chunk, label).map_or(String::new(), |at| {
            chunk[at + label.len()..].split([';', '.', '\n']).next().unwrap_or("").trim().to_string()
        })
    };
    Some(serde_json::json!({
        "property_name": name,
        "sale_date": sale_date(chunk),
        "sale_price": price.round(),
        "building_size_sf": sf,
        "cap_rate": cap,
        "buyer": after("buyer:"),
        "seller": after("seller:"),
        "source_excerpt": chunk,
    }))
}

/// The sale date the text gives, at the precision it gives it: `YYYY-MM-DD` as a day,
/// `YYYY-MM` or `Month YYYY` as a month (`YYYY-MM`).
fn sale_date(chunk: &str) -> Option<String> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let words: Vec<String> = chunk.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-').to_lowercase()).collect();
    for (i, w) in words.iter().enumerate() {
        let b = w.as_bytes();
        let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        // YYYY-MM: seven ASCII bytes, so the slices below cannot cut a character.
        if digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) {
            // YYYY-MM-DD, not followed by another digit: a day.
            if b.get(7) == Some(&b'-') && digits(8..10) && !b.get(10).is_some_and(u8::is_ascii_digit) {
                return Some(w[..10].to_string());
            }
            return Some(w[..7].to_string());
        }
        if let Some(month) = MONTHS.iter().position(|m| w.len() >= 3 && w.starts_with(m)) {
            if let Some(year) = words.get(i + 1).filter(|y| y.len() == 4 && y.chars().all(|c| c.is_ascii_digit())) {
                return Some(format!("{year}-{:02}", month + 1));
            }
        }
    }
    None
}

/// Byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case. Searching the
/// text itself, not a lowercased copy whose offsets differ (`İ` grows when lowercased),
/// and at an ASCII byte, so the offset is always a character boundary.
fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() || n.len() > h.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
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
            messages: vec![Turn { role: Speaker::User, content: question.into() }],
            tool: None,
        }
    }

    #[test]
    fn titles_follow_the_latest_topic_and_summaries_list_the_questions() {
        let facts = DealFacts { name: "Harbor Point".into(), ..Default::default() };
        let transcript = "Analyst: What is the cap rate?\nClaude: 6.1%\nAnalyst: How should we price an offer?\nClaude: ...";
        assert_eq!(title(transcript, &facts), "Pricing an offer for Harbor Point");
        let summary = summary(transcript, &facts);
        assert!(summary.contains("(2 questions, 2 answers)") && summary.contains("- The analyst asked: How should we price an offer?"), "{summary}");
    }

    #[test]
    fn a_reply_streams_in_pieces_that_make_it_whole() {
        for text in ["", "one", "  lead and trail  ", "a\n\nb | c |\n", "İ é 中😀 x"] {
            assert_eq!(pieces(text).collect::<String>(), text);
        }
        assert_eq!(pieces("Cap rate  is\n6%").collect::<Vec<_>>(), ["Cap ", "rate  ", "is\n", "6%"]);
    }

    #[tokio::test]
    async fn a_stopped_stream_keeps_and_bills_what_was_written() {
        let whole = reply(Operation::Chat, &request("Walk me through the underwriting in detail"));
        assert!(whole.text.split_whitespace().count() > 250, "a long answer to stop");
        let (stop, watch) = tokio::sync::watch::channel(false);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        let on_text = std::sync::Arc::new(move |t: &str| {
            let mut seen = sink.lock().unwrap();
            seen.push_str(t);
            if seen.split_whitespace().count() == 10 {
                stop.send_replace(true);
            }
        });
        let mut streaming = crate::claude::types::Streaming { on_text, stop: watch };
        let stopped = stream(whole.clone(), std::time::Duration::ZERO, &mut streaming).await;
        assert!(stopped.stopped);
        assert_eq!(stopped.text, *seen.lock().unwrap());
        assert_eq!(stopped.text.split_whitespace().count(), 10);
        assert_eq!(stopped.usage.output_tokens, estimate_text_tokens(&stopped.text));
        assert_eq!(stopped.usage.input_tokens, whole.usage.input_tokens, "the whole input is billed");
        assert!(stopped.usage.output_tokens < whole.usage.output_tokens);
    }

    #[test]
    fn replies_are_deterministic_and_deal_aware() {
        let a = reply(Operation::Chat, &request("What is the cap rate?"));
        let b = reply(Operation::Chat, &request("What is the cap rate?"));
        assert_eq!(a, b);
        assert!(a.text.contains("Harbor Point"));
        assert!(a.text.contains("cap rate"));
        assert!(a.text.contains("Offline model"));
        assert_eq!(a.model, OFFLINE_MODEL);
        assert_ne!(a.text, reply(Operation::Chat, &request("What are the risks?")).text);
    }

    #[test]
    fn answers_use_markdown_where_it_reads_better() {
        let table = reply(Operation::Chat, &request("Show me a cap rate sensitivity table")).text;
        assert!(table.contains("| Cap rate | Value |\n|---|---|\n| 5.5% | $18,181,818 |\n| 6.0% | $16,666,667 |"), "{table}");
        let risks = reply(Operation::Chat, &request("What are the risks?")).text;
        assert!(risks.starts_with("**The main risks I would underwrite for Harbor Point:**\n\n1. "), "{risks}");
        assert!(risks.contains("\n4. Interest-rate exposure"), "{risks}");
    }

    #[test]
    fn extracts_one_sale_per_paragraph_from_broker_text() {
        let text = "1. Bayview Commons, 40 Bay St, Tampa — sold March 2025 for $24,500,000; 98,000 SF; 6.1% cap rate. Buyer: Crane Capital; Seller: Bay LLC.\n\
                    2. Palm Court, 12 Palm Ave — sold 2024-11-15 for $18.2M, 70,000 square feet, 6.4% cap. Buyer: Harbor REIT\n\
                    3. Gulf Tower sold in January 2025 for $31,000,000 ($310/SF), 100,000 SF.";
        let sales = extract_sales(text);
        let sales = sales["sales"].as_array().unwrap();
        assert_eq!(sales.len(), 3);
        assert_eq!(sales[0]["property_name"], "Bayview Commons");
        assert_eq!(sales[0]["sale_price"], 24_500_000.0);
        assert_eq!(sales[0]["building_size_sf"], 98_000.0);
        assert_eq!(sales[0]["cap_rate"], 6.1);
        assert_eq!(sales[0]["sale_date"], "2025-03");
        assert_eq!(sales[0]["buyer"], "Crane Capital");
        assert_eq!(sales[1]["sale_price"], 18_200_000.0);
        assert_eq!(sales[1]["sale_date"], "2024-11-15", "a day stays a day");
        assert_eq!(sales[2]["sale_price"], 31_000_000.0);
        assert_eq!(sales[2]["building_size_sf"], 100_000.0);
        assert_eq!(sales[2]["sale_date"], "2025-01");
    }

    #[test]
    fn sale_dates_keep_the_precision_of_the_text() {
        for (text, date) in [
            ("sold March 2025", Some("2025-03")),
            ("sold in Sept. 2024", Some("2024-09")),
            ("closed 2024-11-15.", Some("2024-11-15")),
            ("closed 2024-11", Some("2024-11")),
            ("closed (2024-11-15)", Some("2024-11-15")),
            ("closed 2024-11-155", Some("2024-11")),
            ("closed 2024-11-1", Some("2024-11")),
            ("closed 2025-1é", None),
            ("no date here", None),
        ] {
            assert_eq!(sale_date(text).as_deref(), date, "{text}");
        }
    }

    #[test]
    fn text_that_changes_length_when_lowercased_or_cuts_characters_is_handled() {
        // `İ` lowercases to two characters (3 bytes): offsets from a lowercased copy
        // pointed into the middle of characters of the original.
        let text = "İİİİ Tower — sold 2025-1é for $12,000,000. Buyer: Crane İnc; Seller: Öz LLC.";
        let sales = extract_sales(text);
        let sale = &sales["sales"][0];
        assert_eq!(sale["buyer"], "Crane İnc");
        assert_eq!(sale["seller"], "Öz LLC");
        assert_eq!(sale["sale_date"], serde_json::Value::Null, "2025-1é is not a month");
        assert_eq!(find_ascii_case_insensitive("İİ BUYER: x", "buyer:"), Some(5));
        assert_eq!(find_ascii_case_insensitive("ab", "abc"), None);
    }

    #[test]
    fn usage_is_computed_from_the_texts() {
        let r = request("What are the risks?");
        let answer = reply(Operation::Chat, &r);
        assert_eq!(answer.usage.input_tokens, estimate_request_tokens(&r.system, ["What are the risks?"]));
        assert_eq!(answer.usage.output_tokens, estimate_text_tokens(&answer.text));
        assert!(answer.usage.output_tokens > 20);
    }
}
