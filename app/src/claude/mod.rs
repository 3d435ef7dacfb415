//! Everything about talking to Claude. The pure core (token estimate, history window,
//! pricing, retry delays) compiles for the browser too; the HTTP client and the
//! built-in offline model are server-only. Every call goes through
//! `ClaudeClient::call`, which records each attempt with the usage tracker.

pub mod estimate;
pub mod history;
pub mod pricing;
pub mod retry;

#[cfg(feature = "ssr")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod offline;

use serde::{Deserialize, Serialize};

/// Who said a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// What a call to Claude was for; usage records and dashboards group by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Chat,
    Report,
    Extraction,
    Title,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Report => "report",
            Operation::Extraction => "extraction",
            Operation::Title => "title",
        }
    }
}

/// How one call attempt ended, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Busy,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Busy => "busy",
            Outcome::Error => "error",
        }
    }
}

/// The model id the built-in simulated Claude records its usage under.
pub const OFFLINE_MODEL: &str = "offline-simulated";
