//! The ledger's side of the client, owned here so the client depends on no feature: a
//! `UsageRecorder` is handed to the client when it is built, and the client records
//! every attempt that reached Claude through it (there is no tracker argument to forget).

use async_trait::async_trait;

use super::pricing::TokenUsage;
use super::types::CallMeta;
use super::Outcome;

/// One attempt that reached Claude, as the ledger records it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub model: String,
    pub usage: TokenUsage,
    pub latency_ms: u64,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    /// Claude answered (and billed) but how much could not be read: `usage` is then the
    /// call's conservative estimate, never zero.
    pub usage_unknown: bool,
    /// The analyst stopped the streamed reply: `usage` is what was written until then.
    pub stopped: bool,
}

/// Whether an attempt ends its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// Another attempt follows (a retry).
    Retrying,
    /// The last attempt: its record settles the call's reservation in the same write.
    Final,
}

#[derive(Debug, thiserror::Error)]
#[error("usage could not be recorded: {0}")]
pub struct RecordError(pub String);

#[async_trait]
pub trait UsageRecorder: Send + Sync + 'static {
    /// Records one attempt and returns its record's id. A `Final` attempt's record also
    /// releases the reservation named in `meta`, atomically: either both happen or
    /// neither (and the reservation stays, to be settled when it expires).
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> Result<i64, RecordError>;
}
