//! Everything about talking to Claude, and nothing about the features that do: this
//! module imports none of them. The pure core (token estimate, history window, pricing,
//! retry delays) compiles for the browser too. Server-only: the request and reply
//! `types`, the HTTP `transport`, the built-in `offline` model, and the `client` with
//! its retry loop, which records every attempt through the `recorder` it is built with.

pub mod estimate;
pub mod history;
pub mod pricing;
pub mod retry;

#[cfg(feature = "ssr")]
pub mod calibration;
#[cfg(feature = "ssr")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod offline;
#[cfg(feature = "ssr")]
pub mod price_book;
#[cfg(feature = "ssr")]
pub mod recorder;
#[cfg(feature = "ssr")]
pub mod sse;
#[cfg(feature = "ssr")]
pub mod transport;
#[cfg(feature = "ssr")]
pub mod types;

use serde::{Deserialize, Serialize};

/// Who speaks a turn of a conversation: the analyst (`user`) or Claude (`assistant`),
/// as the Messages API names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    User,
    Assistant,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::User => "user",
            Speaker::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Speaker> {
        match text {
            "user" => Some(Speaker::User),
            "assistant" => Some(Speaker::Assistant),
            _ => None,
        }
    }
}

/// What a call to Claude was for; usage records and dashboards group by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Chat,
    Report,
    Extraction,
    Title,
    Summary,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Report => "report",
            Operation::Extraction => "extraction",
            Operation::Title => "title",
            Operation::Summary => "summary",
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
