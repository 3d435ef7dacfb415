//! Multi-turn deal chat: threads per deal, private to their author (admins may read
//! all). Sending appends the user's message, sends the sliding window of the thread
//! with the deal's facts as system prompt, and stores Claude's reply with its usage.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::claude::Speaker;
use crate::deals::Deal;
use crate::format::format_price;
use crate::usage::ReplyUsage;

/// Longest chat message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 50_000;
/// Most messages one page of a thread returns.
pub const MAX_PAGE: usize = 200;
/// Longest conversation title, typed or written by Claude, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest search through conversations, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;
/// Claude titles a conversation after its first exchange, then every this many messages.
pub const TITLE_EVERY: i64 = 5;

/// Messages per page of a thread: at least a whole call window, so the browser's
/// pre-flight estimate sees every turn the next call would send.
pub fn page_size(max_messages: u32) -> usize {
    (max_messages as usize).clamp(50, MAX_PAGE)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: i64,
    pub role: Speaker,
    pub content: String,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub sent_at: String,
    /// For Claude's replies: what the call used and cost.
    pub usage: Option<ReplyUsage>,
    /// For Claude's replies: the Markdown rendered to sanitised HTML (as memos are).
    #[serde(default)]
    pub html: Option<String>,
    /// A reply the analyst stopped: the text written until then.
    #[serde(default)]
    pub stopped: bool,
    /// A summary of the conversation before it (Claude's, on the analyst's request):
    /// later calls send it instead of the messages it sums up.
    #[serde(default)]
    pub summary: bool,
    /// For a summary: the last message it sums up; later calls carry the messages after
    /// it (0 for other messages).
    #[serde(default)]
    pub summary_through: i64,
    /// Pinned by the analyst: every later call sends it, however long the conversation.
    #[serde(default)]
    pub pinned: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadSummary {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub updated_at: String,
    pub messages: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadView {
    pub id: i64,
    pub deal_id: i64,
    pub title: String,
    pub author: String,
    /// Whether the caller wrote it (and so may continue it).
    pub mine: bool,
    /// One page of messages, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist before this page.
    pub has_earlier: bool,
    /// The latest summary and every pinned message, wherever they are in the thread:
    /// with the page they let the browser plan the next call as the server will.
    #[serde(default)]
    pub summary: Option<ChatMessage>,
    #[serde(default)]
    pub pinned: Vec<ChatMessage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    pub thread_id: i64,
    pub reply: ChatMessage,
    /// Stored messages of the thread not sent with this call (older than the window).
    pub dropped: usize,
    /// Set when a budget could take only part of the reply: its `max_tokens` was lowered.
    pub limited: Option<String>,
    /// Set when budget-aware model choice asked a cheaper model than the best tier.
    #[serde(default)]
    pub model_note: Option<String>,
}

/// What the chat tab needs to know about the next call: which Claude answers (for its
/// label), and the inputs of the browser's pre-flight estimate — the same estimator and
/// window the server uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatContext {
    /// No API key: the built-in offline model answers.
    pub offline: bool,
    pub model: String,
    /// The raw token estimate of the deal's system prompt.
    pub system_tokens: u64,
    pub max_messages: u32,
    pub max_input_tokens: u64,
    pub max_output_tokens: u32,
    /// The estimator's current correction for chat calls, and the model's prices.
    pub calibration: f64,
    pub rates: crate::claude::pricing::Rates,
    /// The prices of the model-choice tiers (for the pre-flight when a tier answers).
    #[serde(default)]
    pub tier_rates: Vec<(String, crate::claude::pricing::Rates)>,
    pub cooldown_seconds: u64,
}

/// One event of a streamed send, one JSON object per line of the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendEvent {
    /// The message is stored (in a new conversation when it had none): from now on the
    /// reply can be stopped by naming this conversation and this question.
    Started { thread_id: i64, message_id: i64 },
    /// A piece of Claude's reply, as it is written.
    Delta { text: String },
    /// The reply, stored.
    Done { result: SendResult },
    /// The send was refused or failed; nothing more comes.
    Failed { error: crate::error::AppError },
}

impl SendEvent {
    /// The event as one line of the stream: JSON with every non-ASCII character escaped,
    /// so however the bytes are split on the way, no piece cuts a character in two.
    pub fn to_line(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| r#"{"failed":{"error":{"kind":"internal","message":"The reply could not be sent."}}}"#.into());
        let mut line = String::with_capacity(json.len() + 1);
        for c in json.chars() {
            if c.is_ascii() {
                line.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    line.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        line.push('\n');
        line
    }
}

/// Most a summary call may write.
pub const SUMMARY_MAX_TOKENS: u32 = 800;
/// Least the earlier turns of a send must cost before summarising them is suggested.
pub const MIN_SUMMARY_SAVING_TOKENS: u64 = 600;

/// A stored message as the call window sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowTurn {
    pub id: i64,
    pub turn: crate::claude::history::Turn,
    pub pinned: bool,
}

/// What a send carries besides the deal's facts: the context block added to the system
/// prompt (the latest summary, and the pinned messages the window would otherwise leave
/// out), and the window of turns.
#[derive(Clone, Debug, PartialEq)]
pub struct CallPlan {
    pub context: String,
    /// The raw estimate of the context block (0 when there is none).
    pub context_tokens: u64,
    pub window: crate::claude::history::HistoryWindow,
}

/// Plans a send, on the server and in the browser alike. `turns`: the messages after the
/// latest summary (and after the ones the analyst left out), ending with the new one;
/// `older_pinned`: pinned messages before them. The window is built as always; any
/// pinned message it leaves out moves into the context block, and the window is built
/// again with the larger system prompt, until no pinned message is left out.
pub fn plan_call(
    system_tokens: u64,
    summary: Option<&str>,
    older_pinned: &[crate::claude::history::Turn],
    turns: &[WindowTurn],
    max_messages: usize,
    max_input_tokens: u64,
) -> Result<CallPlan, crate::claude::history::WindowError> {
    use crate::claude::estimate::estimate_text_tokens;
    let plain: Vec<crate::claude::history::Turn> = turns.iter().map(|t| t.turn.clone()).collect();
    let mut pinned = older_pinned.to_vec();
    let mut moved = 0;
    loop {
        let context = context_block(summary, &pinned);
        let context_tokens = if context.is_empty() { 0 } else { estimate_text_tokens(&context) };
        let window = crate::claude::history::build_window(system_tokens + context_tokens, &plain, max_messages, max_input_tokens)?;
        let dropped = window.dropped.min(turns.len());
        let newly: Vec<_> = turns[moved.min(dropped)..dropped].iter().filter(|t| t.pinned).map(|t| t.turn.clone()).collect();
        if newly.is_empty() {
            return Ok(CallPlan { context, context_tokens, window });
        }
        pinned.extend(newly);
        moved = dropped;
    }
}

/// The context block: the summary the conversation continues from, and pinned messages.
pub fn context_block(summary: Option<&str>, pinned: &[crate::claude::history::Turn]) -> String {
    let mut block = String::new();
    if let Some(summary) = summary {
        block.push_str("\nSummary of the conversation so far (its earlier messages are not repeated):\n");
        block.push_str(summary.trim());
        block.push('\n');
    }
    if !pinned.is_empty() {
        block.push_str("\nMessages the analyst pinned from earlier in this conversation:\n");
        for turn in pinned {
            let who = if turn.role == Speaker::User { "Analyst" } else { "Claude" };
            block.push_str(&format!("{who}: {}\n", turn.content.trim()));
        }
    }
    block
}

/// The summary call's system prompt and its one message: the transcript since the last
/// summary (which it starts from), each message as "Analyst: …" or "Claude: …".
pub fn summary_prompt(deal_name: &str, previous: Option<&str>, turns: &[crate::claude::history::Turn]) -> (String, String) {
    let system = format!(
        "You summarise a conversation between an analyst and Claude about a commercial real-estate deal, so that \
         Claude can continue it from the summary alone. Keep every figure, assumption, decision and open question; \
         drop pleasantries. At most 300 words, in Markdown.\nDeal: {deal_name}\n"
    );
    let mut transcript = String::from("Summarise this conversation:\n\n");
    if let Some(previous) = previous {
        transcript.push_str(&format!("Summary of what came before: {}\n\n", previous.trim()));
    }
    for turn in turns {
        let who = if turn.role == Speaker::User { "Analyst" } else { "Claude" };
        transcript.push_str(&format!("{who}: {}\n", turn.content.trim()));
    }
    (system, transcript)
}

/// The system prompt for chats about `deal`: the assistant's brief and the deal's facts.
pub fn system_prompt(deal: &Deal) -> String {
    let or_not_given = |s: &str| if s.trim().is_empty() { "not given".to_string() } else { s.to_string() };
    let asking = if deal.asking_price.is_some() { format_price(deal.asking_price) } else { "not given".into() };
    format!(
        "You are an analyst assistant for a commercial real-estate investment firm. Answer \
         questions about the deal below precisely and concisely; show your arithmetic; say \
         when the facts given are not enough.\n\n\
         Deal: {}\nProperty type: {}\nAddress: {}\nAsking price: {}\nNotes: {}\n",
        deal.name,
        deal.property_type,
        or_not_given(&deal.address),
        asking,
        or_not_given(&deal.notes),
    )
}

/// A title as typed: one line, without control characters, 1 to `MAX_TITLE_CHARS` long.
pub fn checked_title(title: &str) -> Result<String, crate::error::AppError> {
    let title = one_line(title);
    match title.chars().count() {
        0 => Err(crate::error::AppError::invalid("Give the conversation a title.")),
        n if n > MAX_TITLE_CHARS => Err(crate::error::AppError::invalid(format!("A title is at most {MAX_TITLE_CHARS} characters."))),
        _ => Ok(title),
    }
}

/// A title as Claude wrote it: one line, quotes and a trailing full stop removed, cut at
/// `MAX_TITLE_CHARS`; None when nothing is left.
pub fn model_title(text: &str) -> Option<String> {
    let line = one_line(text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default());
    let line = line.trim_start_matches(|c: char| "#*\"'“”‘’ ".contains(c)).trim_end_matches(|c: char| "*\"'“”‘’. ".contains(c));
    let line = line.strip_prefix("Title:").map_or(line, str::trim);
    (!line.is_empty()).then(|| line.chars().take(MAX_TITLE_CHARS).collect())
}

/// Text on one line: control characters dropped, runs of white space as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A thread's title: the start of its first message, on one line.
pub fn thread_title(first_message: &str) -> String {
    let line: String = first_message.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= 60 {
        line
    } else {
        format!("{}…", line.chars().take(59).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::history::Turn;

    fn turn(id: i64, role: Speaker, words: usize, pinned: bool) -> WindowTurn {
        WindowTurn { id, turn: Turn { role, content: format!("m{id} {}", "word ".repeat(words)) }, pinned }
    }

    #[test]
    fn a_pinned_message_the_window_leaves_out_is_sent_in_the_context_block() {
        let mut turns: Vec<WindowTurn> = (1..=8).map(|i| turn(i, if i % 2 == 1 { Speaker::User } else { Speaker::Assistant }, 50, i == 2)).collect();
        turns.push(turn(9, Speaker::User, 5, false));
        let plan = plan_call(100, None, &[], &turns, 4, 100_000).unwrap();
        assert!(plan.window.dropped >= 2);
        assert!(plan.context.contains("pinned") && plan.context.contains("Claude: m2 "), "{}", plan.context);
        assert!(!plan.context.contains("m1 "), "only the pinned one");
        assert!(plan.window.estimated_input_tokens >= 100 + plan.context_tokens);
        // A pinned message the window sends anyway is not sent twice.
        let plan = plan_call(100, None, &[], &turns[6..], 4, 100_000).unwrap();
        assert!(plan.context.is_empty());
    }

    #[test]
    fn the_summary_and_older_pins_lead_the_context_block() {
        let turns = vec![turn(10, Speaker::User, 3, false)];
        let older = vec![Turn { role: Speaker::User, content: "Use a 6.25% exit cap".into() }];
        let plan = plan_call(100, Some("We agreed NOI is $4.1M."), &older, &turns, 20, 100_000).unwrap();
        assert!(plan.context.find("Summary").unwrap() < plan.context.find("Analyst: Use a 6.25% exit cap").unwrap());
        assert!(plan.context.contains("We agreed NOI is $4.1M."));
        assert_eq!(plan.window.messages.len(), 1);
    }

    #[test]
    fn stream_lines_are_ascii_json_that_reads_back() {
        let event = SendEvent::Delta { text: "Cap rate — 6.1% İ 😀\n| a |".into() };
        let line = event.to_line();
        assert!(line.is_ascii() && line.ends_with('\n') && line.matches('\n').count() == 1);
        assert_eq!(serde_json::from_str::<SendEvent>(line.trim_end()).unwrap(), event);
    }

    #[test]
    fn titles_are_one_short_line() {
        assert_eq!(thread_title("What is\n the  cap rate?"), "What is the cap rate?");
        let long = thread_title(&"word ".repeat(40));
        assert_eq!(long.chars().count(), 60);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn typed_titles_are_one_line_and_not_too_long() {
        assert_eq!(checked_title("  Cap rate\n\tquestions \u{7}").unwrap(), "Cap rate questions");
        assert_eq!(checked_title(" \n ").unwrap_err().kind, crate::error::ErrorKind::Invalid);
        assert!(checked_title(&"x".repeat(MAX_TITLE_CHARS)).is_ok());
        assert_eq!(checked_title(&"x".repeat(MAX_TITLE_CHARS + 1)).unwrap_err().kind, crate::error::ErrorKind::Invalid);
    }

    #[test]
    fn titles_from_claude_lose_their_decoration() {
        assert_eq!(model_title("\"Harbor Point: cap rate check.\"\n\nAnything else").as_deref(), Some("Harbor Point: cap rate check"));
        assert_eq!(model_title("## **Title: Pricing the offer**").as_deref(), Some("Pricing the offer"));
        assert_eq!(model_title("  \n  ").as_deref(), None);
        assert_eq!(model_title(&"word ".repeat(50)).map(|t| t.chars().count()), Some(MAX_TITLE_CHARS));
    }

    #[test]
    fn system_prompt_carries_the_deal_facts() {
        let deal = Deal {
            id: 1,
            name: "Harbor Point".into(),
            address: String::new(),
            property_type: crate::deals::PropertyType::Office,
            asking_price: Some(86_500_000),
            notes: "84% leased".into(),
            created_by: "a@b.c".into(),
            updated_on: "2026-11-23".into(),
        };
        let prompt = system_prompt(&deal);
        assert!(prompt.contains("Deal: Harbor Point\n"));
        assert!(prompt.contains("Asking price: $86,500,000\n"));
        assert!(prompt.contains("Address: not given\n"));
        assert!(prompt.contains("Notes: 84% leased\n"));
    }
}
