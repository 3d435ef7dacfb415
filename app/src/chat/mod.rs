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
