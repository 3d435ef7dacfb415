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
