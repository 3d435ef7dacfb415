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

use crate::claude::Role;
use crate::deals::{Deal, format_price};
use crate::usage::ReplyUsage;

/// Longest chat message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 50_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: i64,
    pub role: Role,
    pub content: String,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub sent_at: String,
    /// For Claude's replies: what the call used and cost.
    pub usage: Option<ReplyUsage>,
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
    pub messages: Vec<ChatMessage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    pub thread_id: i64,
    pub reply: ChatMessage,
    /// Stored messages of the thread not sent with this call (older than the window).
    pub dropped: usize,
}

/// Which Claude answers, for the label in the chat tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaudeStatus {
    pub offline: bool,
    pub model: String,
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
            property_type: "Office".into(),
            asking_price: Some(86_500_000),
            notes: "84% leased".into(),
            created_by: "a@b.c".into(),
            updated_on: "2026-11-23".into(),
            budget: crate::budget::DealBudget { used: 0, limit: 1, state: crate::budget::BudgetState::Ok },
        };
        let prompt = system_prompt(&deal);
        assert!(prompt.contains("Deal: Harbor Point\n"));
        assert!(prompt.contains("Asking price: $86,500,000\n"));
        assert!(prompt.contains("Address: not given\n"));
        assert!(prompt.contains("Notes: 84% leased\n"));
    }
}
