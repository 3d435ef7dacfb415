//! Fuzzing of every parser of user or model text: the offline model, comps validation,
//! price and budget parsing, the Markdown renderer, the settings loader, the token
//! estimator and the history window. Each target feeds generated input — arbitrary
//! Unicode, and text built from the characters and words that have broken parsers
//! before (`İ`, which grows when lowercased; multi-byte letters next to digits and
//! dashes; HTML, Markdown and URL syntax) — and checks that nothing panics and that
//! what comes out keeps its promises.
//!
//! `FUZZ_CASES` sets the cases per target (`make test` runs a bounded number; `make
//! fuzz` a long campaign); each target prints how many it ran.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
}

/// Runs `check` on `cases()` inputs from `strategy`; a failure is shrunk and reported.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = cases();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    if let Err(err) = runner.run(&strategy, check) {
        panic!("fuzz target {name} failed: {err}");
    }
    eprintln!("fuzz {name}: {cases} cases, no failure");
}

/// Pieces that have broken text handling before, or that parsers treat specially.
const PIECES: &[&str] = &[
    "İ", "ı", "é", "ß", "ẞ", "Σ", "ﬁ", "😀", "中", "\u{301}", "\u{200b}", "\u{0}", "\t", "\n", "\n\n", "\r\n", " ", "-", "—", ".",
    ",", ";", ":", "$", "%", "/", "'", "\"", "<", ">", "&", "[", "]", "(", ")", "!", "|", "*", "_", "`", "#", "\\", "=", "+",
    "@", "0", "1", "2025", "2025-", "2025-1", "2025-03", "2025-03-01", "2024-02-29", "2025-02-29", "2026-11-24", "2026-12", "-1é", "12.5", "1e9", "M", "mm", "k", "bn", "SF", "sq ft",
    "psf", "/SF", "cap", "cap rate", "%", "million", "per", "Buyer:", "buyer:", "BUYER:", "Seller:", "seller:", "Deal:", "Asking price:",
    "Property type:", "| Property |", "|---|", "</textarea>", "<script>", "<img src=x onerror=alert(1)>", "javascript:", "data:",
    "http://", "https://", "mailto:", "![x](", "](", "[a]", "![", "```", "~~", "**", "> ", "1. ", "- ", "March", "sold", "for",
    "$24,500,000", "98,000", "6.1%", "0.0625", "NaN", "inf", "-0", "9999999999999999999999",
];

/// Text built from `PIECES` and arbitrary characters, up to about `max` pieces.
fn tricky_text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
        1 => "[a-zA-Z0-9 ]{1,12}",
    ];
    prop::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

/// Either tricky text or arbitrary Unicode.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![3 => tricky_text(max), 1 => any::<String>()]
}

mod offline_model {
    use super::*;
    use crate::claude::types::{ClaudeRequest, ToolSpec};
    use crate::claude::history::Turn;
    use crate::claude::{Operation, Speaker, offline};

    #[test]
    fn the_offline_model_answers_any_text() {
        fuzz("offline_model", (any_text(80), any_text(40), 1u32..5000), |(user, deal, max_tokens)| {
            let system = format!("You are an analyst.\nDeal: {deal}\nProperty type: {deal}\nAsking price: {deal}\n| {deal} |\n");
            let turns = vec![Turn { role: Speaker::User, content: user.clone() }];
            for (operation, tool) in [(Operation::Chat, None), (Operation::Report, None), (Operation::Title, None), (Operation::Summary, None), (Operation::Extraction, Some(()))] {
                let request = ClaudeRequest {
                    model: "m".into(),
                    max_tokens,
                    system: system.clone(),
                    messages: turns.clone(),
                    tool: tool.map(|_| ToolSpec { name: "t".into(), description: String::new(), input_schema: json!({"type": "object"}) }),
                };
                let reply = offline::reply(operation, &request);
                prop_assert!(reply.usage.output_tokens <= u64::from(max_tokens));
                if let Some(input) = reply.tool_input {
                    prop_assert!(input["sales"].is_array());
                }
            }
            Ok(())
        });
    }
}

mod comps {
    use super::*;
    use crate::comps::validate::{RawComp, from_tool_input, validate};

    /// JSON a model might return for the extraction tool, well-formed or not.
    fn tool_input() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<i64>().prop_map(Value::from),
            tricky_text(12).prop_map(Value::from),
        ];
        let field = proptest::sample::select(&[
            "property_name", "address", "sale_date", "sale_price", "building_size_sf", "price_per_sf", "cap_rate", "buyer",
            "seller", "notes", "source_excerpt", "other",
        ][..]);
        let sale = prop_oneof![
            4 => prop::collection::btree_map(field, scalar.clone(), 0..11)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            1 => scalar.clone(),
            1 => prop::collection::vec(scalar, 0..3).prop_map(Value::Array),
        ];
        prop_oneof![
            6 => prop::collection::vec(sale, 0..6).prop_map(|sales| json!({ "sales": sales })),
            1 => tricky_text(10).prop_map(|t| json!({ "sales": t })),
            1 => Just(json!({})),
        ]
    }

    /// Text shaped like a date, real or not: years mostly around today's, months and days out
    /// of range, padded or not, with or without a day.
    fn date_text() -> impl Strategy<Value = String> {
        let year = prop_oneof![3 => 2020u32..2029, 1 => 1940u32..2030];
        (year, 0u32..14, prop::option::of(0u32..33), any::<bool>()).prop_map(|(y, m, d, pad)| match (d, pad) {
            (None, true) => format!("{y}-{m:02}"),
            (None, false) => format!("{y}-{m}"),
            (Some(d), true) => format!("{y}-{m:02}-{d:02}"),
            (Some(d), false) => format!("{y}-{m}-{d}"),
        })
    }

    /// A stored sale date: `YYYY-MM-DD` or `YYYY-MM`, a real day or month, at most a year
    /// after today.
    fn is_stored_sale_date(date: &str, today: chrono::NaiveDate) -> bool {
        use chrono::Datelike;
        let parse = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        let first_day = match date.len() {
            10 => parse(date),
            7 => parse(&format!("{date}-01")),
            _ => None,
        };
        let latest = chrono::NaiveDate::from_ymd_opt(today.year() + 1, today.month(), today.day()).unwrap_or(today);
        first_day.is_some_and(|d| d <= latest && d.format(if date.len() == 10 { "%Y-%m-%d" } else { "%Y-%m" }).to_string() == date)
    }

    #[test]
    fn comps_validation_accepts_only_plausible_sales_and_never_panics() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        fuzz("comps_tool_input", tool_input(), |input| {
            if let Ok(sales) = from_tool_input(&input, today) {
                for sale in sales {
                    prop_assert!(!(sale.property_name.is_empty() && sale.address.is_empty()));
                    prop_assert!(sale.sale_price.is_none_or(|p| (10_000..=50_000_000_000).contains(&p)));
                    prop_assert!(sale.cap_rate.is_none_or(|c| (0.5..=25.0).contains(&c)));
                    prop_assert!(sale.building_sf.is_none_or(|sf| (100..=50_000_000).contains(&sf)));
                    prop_assert!(sale.price_per_sf.is_none_or(|p| p.is_finite()));
                    prop_assert!(sale.sale_date.as_deref().is_none_or(|d| is_stored_sale_date(d, today)), "{:?}", sale.sale_date);
                }
            }
            Ok(())
        });
        let field = || any_text(8);
        let date = prop_oneof![1 => any_text(8), 2 => date_text()];
        // Numbers often left empty, so whole sales often pass and the date invariant bites.
        let maybe = || prop_oneof![1 => any_text(8), 1 => Just(String::new())];
        let raw = (field(), field(), date, maybe(), maybe(), maybe(), maybe(), field());
        fuzz("comps_edit_form", raw, |(name, address, date, price, sf, psf, cap, notes)| {
            let raw = RawComp {
                property_name: name,
                address,
                sale_date: date,
                sale_price: price,
                building_sf: sf,
                price_per_sf: psf,
                cap_rate: cap,
                buyer: notes.clone(),
                seller: notes.clone(),
                notes,
                source_excerpt: String::new(),
            };
            if let Ok(fields) = validate(raw, today) {
                prop_assert!(fields.sale_date.as_deref().is_none_or(|d| is_stored_sale_date(d, today)), "{:?}", fields.sale_date);
            }
            Ok(())
        });
    }
}

mod prices_and_inputs {
    use super::*;

    #[test]
    fn prices_budgets_and_deal_fields_parse_or_refuse() {
        fuzz("asking_price", any_text(12), |raw| {
            if let Ok(Some(price)) = crate::deals::parse_price(&raw) {
                prop_assert!((0..=crate::deals::MAX_ASKING_PRICE).contains(&price));
            }
            Ok(())
        });
        fuzz("budget_override", any_text(12), |raw| {
            if let Ok(Some(budget)) = crate::budget::parse_budget(&raw) {
                prop_assert!(budget >= 1);
            }
            Ok(())
        });
        fuzz("deal_form", (any_text(20), any_text(20), any_text(4), any_text(6), any_text(30)), |(name, address, kind, price, notes)| {
            let _ = crate::deals::DealInput::parse(&name, &address, &kind, &price, &notes);
            let _ = crate::auth::validate_credentials(&name, &notes);
            let _ = crate::claude::retry::parse_retry_after(&price);
            Ok(())
        });
    }
}

mod markdown {
    use super::*;
    use crate::markdown::markdown_to_safe_html;

    const TAGS: &[&str] = &[
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "ul", "ol", "li", "a", "code", "pre", "blockquote", "table",
        "thead", "tbody", "tr", "th", "td", "hr", "br", "span",
    ];
    const ATTRIBUTES: &[&str] = &["href", "title", "rel", "target", "class", "start", "style"];

    /// Every tag in `html` must be an allowed one with allowed attributes; links must
    /// go to http(s), mailto or nowhere.
    fn check_markup(html: &str) -> Result<(), String> {
        let mut rest = html;
        while let Some(at) = rest.find('<') {
            let end = rest[at..].find('>').ok_or_else(|| format!("unclosed tag in {html}"))? + at;
            let tag = &rest[at + 1..end];
            rest = &rest[end + 1..];
            let tag = tag.trim_start_matches('/').trim_end_matches('/').trim();
            let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            if !TAGS.contains(&name) {
                return Err(format!("tag <{name}> in {html}"));
            }
            while let Some(eq) = attrs.find("=\"") {
                let attr = attrs[..eq].trim();
                let value_end = attrs[eq + 2..].find('"').ok_or("unterminated attribute")? + eq + 2;
                let value = &attrs[eq + 2..value_end];
                if !ATTRIBUTES.contains(&attr) {
                    return Err(format!("attribute {attr} in {html}"));
                }
                if attr == "href" && !(value.starts_with("http://") || value.starts_with("https://") || value.starts_with("mailto:") || value == "#") {
                    return Err(format!("link to {value} in {html}"));
                }
                if attr == "style" && !value.starts_with("text-align:") {
                    return Err(format!("style {value} in {html}"));
                }
                attrs = &attrs[value_end + 1..];
            }
        }
        Ok(())
    }

    #[test]
    fn the_markdown_renderer_emits_only_safe_markup() {
        fuzz("markdown", any_text(120), |text| {
            let html = markdown_to_safe_html(&text);
            check_markup(&html).map_err(TestCaseError::fail)
        });
    }

    #[test]
    fn the_markup_checker_catches_what_it_must() {
        assert!(check_markup("<p>ok <a href=\"https://x\" rel=\"noopener noreferrer\">x</a></p>").is_ok());
        assert!(check_markup("<img src=\"x\">").is_err());
        assert!(check_markup("<a href=\"javascript:alert(1)\">x</a>").is_err());
        assert!(check_markup("<p onclick=\"x\">").is_err());
    }
}

mod settings {
    use super::*;
    use crate::settings::Settings;

    fn toml_text() -> impl Strategy<Value = String> {
        let section = proptest::sample::select(&["claude", "history", "budget", "chat", "pricing", "time", "auth", "session", "server", "demo", "x"][..]);
        let key = proptest::sample::select(&[
            "model", "max_tokens_chat", "max_retries", "timeout_seconds", "max_messages", "max_input_tokens", "user_daily_tokens",
            "deal_tokens", "warn_ratio", "cooldown_seconds", "input_per_mtok", "zone", "max_failed_logins", "idle_hours",
            "secure_cookie", "max_body_bytes", "request_timeout_seconds", "seed", "models",
        ][..]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            tricky_text(6).prop_map(|t| format!("{t:?}")),
            tricky_text(6),
        ];
        prop::collection::vec((section, key, value), 0..6)
            .prop_map(|entries| entries.into_iter().map(|(s, k, v)| format!("[{s}]\n{k} = {v}\n")).collect())
    }

    #[test]
    fn settings_load_or_name_the_problem() {
        fuzz("settings", (toml_text(), any_text(6)), |(toml, env_value)| {
            let env = vec![("APP_BUDGET__WARN_RATIO".to_string(), env_value.clone()), ("APP_TIME__ZONE".to_string(), env_value)];
            if let Err(err) = Settings::from_sources(Some(&toml), env) {
                prop_assert!(!err.to_string().is_empty());
            }
            Ok(())
        });
    }
}

mod estimates {
    use super::*;
    use crate::claude::Speaker;
    use crate::claude::estimate::estimate_text_tokens;
    use crate::claude::history::{Turn, build_window};

    #[test]
    fn estimates_windows_and_titles_hold_for_any_text() {
        fuzz("estimate_and_window", (prop::collection::vec((any::<bool>(), any_text(30)), 1..12), 1usize..25, 0u64..3000), |(turns, max_messages, limit)| {
            let mut thread: Vec<Turn> = turns
                .into_iter()
                .map(|(user, content)| Turn { role: if user { Speaker::User } else { Speaker::Assistant }, content })
                .collect();
            thread.push(Turn { role: Speaker::User, content: "last".into() });
            for turn in &thread {
                let alone = estimate_text_tokens(&turn.content);
                let doubled = estimate_text_tokens(&format!("{}{}", turn.content, turn.content));
                prop_assert!(doubled >= alone);
            }
            if let Ok(window) = build_window(10, &thread, max_messages, limit) {
                prop_assert!(window.estimated_input_tokens <= limit);
                prop_assert!(window.messages.len() <= max_messages);
                prop_assert_eq!(window.messages.first().map(|t| t.role), Some(Speaker::User));
                prop_assert_eq!(window.messages.last().map(|t| t.role), Some(Speaker::User));
            }
            let title = crate::chat::thread_title(&thread[0].content);
            prop_assert!(title.chars().count() <= 60);
            Ok(())
        });
    }
}

mod streams {
    use super::*;
    use crate::chat::{WindowTurn, plan_call};
    use crate::claude::Speaker;
    use crate::claude::history::Turn;
    use crate::claude::sse::{SseDecoder, StreamedReply};

    /// Event-stream text: well-formed events of the kinds Claude sends, broken ones, and
    /// arbitrary text, with any line endings.
    fn stream_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => any_text(6).prop_map(|t| format!("event: content_block_delta\ndata: {}\n\n", json!({"delta": {"type": "text_delta", "text": t}}))),
            1 => (0u64..1_000_000).prop_map(|n| format!("event: message_start\ndata: {}\n\n", json!({"message": {"usage": {"input_tokens": n}}}))),
            1 => (0u64..1_000_000).prop_map(|n| format!("event: message_delta\ndata: {}\n\n", json!({"delta": {}, "usage": {"output_tokens": n}}))),
            1 => Just("event: ping\r\ndata: {}\r\n\r\n".to_string()),
            1 => Just(": keep-alive\n".to_string()),
            1 => tricky_text(8),
        ];
        prop::collection::vec(piece, 0..20).prop_map(|p| p.concat())
    }

    /// However a stream's bytes are split, the decoder yields the same events, never
    /// panics, and the reply's text is exactly the deltas it handed out.
    #[test]
    fn event_streams_decode_the_same_however_they_are_split() {
        fuzz("sse_decoder", (stream_text(), any::<prop::sample::Index>()), |(text, cut)| {
            let bytes = text.as_bytes();
            let cut = cut.index(bytes.len() + 1);
            let whole = SseDecoder::default().feed(bytes);
            let mut split = SseDecoder::default();
            let parts = split.feed(&bytes[..cut]).and_then(|mut first| {
                first.extend(split.feed(&bytes[cut..])?);
                Ok(first)
            });
            prop_assert_eq!(&whole, &parts);
            if let Ok(events) = whole {
                let mut reply = StreamedReply::default();
                let mut handed = String::new();
                for event in &events {
                    match reply.apply(event) {
                        Ok(Some(text)) => handed.push_str(&text),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
                prop_assert_eq!(&handed, &reply.text);
            }
            Ok(())
        });
    }

    /// A send's plan keeps every pinned message (in the window or the context block) and
    /// stays within the limit it was given whenever it succeeds.
    #[test]
    fn call_plans_keep_pinned_messages_within_the_limit() {
        let turns = prop::collection::vec((any::<bool>(), any::<bool>(), any_text(20)), 0..14);
        fuzz("plan_call", (turns, 1usize..12, 50u64..4000, prop::option::of(any_text(20))), |(turns, max_messages, limit, summary)| {
            let mut thread: Vec<WindowTurn> = turns
                .into_iter()
                .enumerate()
                .map(|(i, (user, pinned, content))| WindowTurn {
                    id: i as i64,
                    turn: Turn { role: if user { Speaker::User } else { Speaker::Assistant }, content: format!("#{i} {content}") },
                    pinned,
                })
                .collect();
            thread.push(WindowTurn { id: 99, turn: Turn { role: Speaker::User, content: "new".into() }, pinned: false });
            if let Ok(plan) = plan_call(20, summary.as_deref(), &[], &thread, max_messages, limit) {
                prop_assert!(plan.window.estimated_input_tokens <= limit);
                let sent_from = plan.window.dropped.min(thread.len());
                for t in thread[..sent_from].iter().filter(|t| t.pinned) {
                    prop_assert!(plan.context.contains(t.turn.content.trim()), "pinned message {} dropped", t.id);
                }
            }
            Ok(())
        });
    }
}
