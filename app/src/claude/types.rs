//! What goes to Claude and what comes back: a request, its reply, and who the call is for.

use serde::Serialize;
use serde_json::Value;

use super::history::Turn;
use super::pricing::TokenUsage;
use super::Operation;

/// A tool Claude is asked to answer through (structured extraction).
#[derive(Clone, Debug, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// One call, before it is sent.
#[derive(Clone, Debug)]
pub struct ClaudeRequest {
    pub model: String,
    pub max_tokens: u32,
    pub system: String,
    pub messages: Vec<Turn>,
    /// The tool Claude should answer through, when set (offered with `tool_choice`
    /// `auto`; the system prompt asks for it, since current models refuse forcing).
    pub tool: Option<ToolSpec>,
}

/// Why Claude stopped writing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    /// The reply was cut short at `max_tokens`.
    MaxTokens,
    ToolUse,
    /// Anything else the API reports (`stop_sequence`, `refusal`, future values).
    Other(String),
}

impl StopReason {
    pub fn parse(text: &str) -> StopReason {
        match text {
            "end_turn" => StopReason::EndTurn,
            "max_tokens" => StopReason::MaxTokens,
            "tool_use" => StopReason::ToolUse,
            other => StopReason::Other(other.to_string()),
        }
    }
}

/// Claude's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaudeReply {
    pub text: String,
    pub tool_input: Option<Value>,
    pub stop_reason: Option<StopReason>,
    pub model: String,
    pub usage: TokenUsage,
    pub request_id: Option<String>,
    /// Id of the usage record of the successful attempt (None if it could not be written).
    pub usage_record_id: Option<i64>,
    /// Id of the row the call's `ReplyWrite` stored in that record's transaction (None
    /// when there was none, or it could not be written with the record).
    pub stored_with_record: Option<i64>,
    /// A streamed reply the analyst stopped: `text` is what was written until then, and
    /// `usage` what that cost.
    pub stopped: bool,
}

/// A call whose reply is streamed: each piece of text goes to `on_text` as Claude writes
/// it, and the reply ends early once `stop` turns true.
pub struct Streaming {
    pub on_text: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming").field("stop", &*self.stop.borrow()).finish_non_exhaustive()
    }
}

/// The budget reservation a call was admitted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: i64,
    /// Input tokens reserved (the calibrated estimate, never below the raw one).
    pub input_tokens: u64,
    /// Output tokens reserved: the request's `max_tokens`.
    pub output_tokens: u64,
}

impl Reservation {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Who a call is for, recorded with every attempt.
#[derive(Clone, Debug)]
pub struct CallMeta {
    pub user_id: i64,
    pub deal_id: Option<i64>,
    pub operation: Operation,
    /// The offline estimate of the input, before calibration.
    pub estimated_input_tokens: u64,
    /// The reservation the call settles; None for a call made outside the gateway.
    pub reservation: Option<Reservation>,
    /// When budget-aware model choice picked a cheaper model: the model the call would
    /// otherwise have asked for, and the one it asks for.
    pub swap: Option<ModelSwap>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSwap {
    pub asked: String,
    pub chosen: String,
}

impl CallMeta {
    /// What an attempt whose usage cannot be known is recorded as: the reservation (the
    /// most the call was allowed to use), or the estimate plus `max_tokens`.
    pub fn conservative_usage(&self, max_tokens: u32) -> TokenUsage {
        match self.reservation {
            Some(r) => TokenUsage { input_tokens: r.input_tokens, output_tokens: r.output_tokens, ..Default::default() },
            None => TokenUsage { input_tokens: self.estimated_input_tokens, output_tokens: u64::from(max_tokens), ..Default::default() },
        }
    }
}

/// How a call's reservation ended, as the gateway needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The last attempt's record was written, releasing the reservation with it.
    Settled,
    /// No attempt that ended the call reached Claude: nothing more was billed, the
    /// reservation can simply be released.
    NotReached,
    /// The last attempt reached Claude but its record could not be written: the
    /// reservation stays until it expires and is then settled as unknown usage, so the
    /// spend is never lost.
    RecordFailed,
}

/// What a call through the client comes to: the reply or the error for the caller, and
/// what became of its reservation.
#[derive(Debug)]
pub struct CallOutcome {
    pub result: Result<ClaudeReply, crate::error::AppError>,
    pub settlement: Settlement,
}
