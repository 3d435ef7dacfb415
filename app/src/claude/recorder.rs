//! The ledger's side of the client, owned here so the client depends on no feature: a
//! `UsageRecorder` is handed to the client when it is built, and the client records
//! every attempt that reached Claude through it (there is no tracker argument to forget).

use async_trait::async_trait;

use super::pricing::TokenUsage;
use super::types::{CallMeta, ClaudeReply};
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
    /// Another attempt follows (a retry). `attempt` numbers this one in its call (1 for
    /// the first): with the call's reservation it names the record, which a write sent
    /// again after its answer was lost then finds instead of counting the attempt twice.
    Retrying { attempt: u32 },
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

    /// Records a successful call's last attempt, as `record` does, with what `with`
    /// stores of the reply written in the same transaction: one commit for both, never
    /// the reply without the record. Returns the record's id and, when `with` was
    /// stored, the id of its row. A record never waits on the reply: when the two
    /// cannot be written together the record is written alone and the id is None, and
    /// the operation stores the reply itself. A recorder with no database of its own
    /// (the tests') stores nothing with the record.
    async fn record_with(&self, meta: &CallMeta, attempt: &AttemptRecord, with: Alongside<'_>) -> Result<(i64, Option<i64>), RecordError> {
        let _ = with;
        Ok((self.record(meta, attempt, CallEnd::Final).await?, None))
    }
}

/// What an operation stores of Claude's reply (a chat send: the reply as a message of the
/// conversation), written in the transaction of the call's last record. It may run more
/// than once — a record whose write is retried — and is rolled back with the record, so
/// it must only write through `conn`. Returns the id of the row it stored.
#[async_trait]
pub trait ReplyWrite: Send {
    async fn write(&mut self, conn: &mut sqlx::AnyConnection, record: WrittenRecord, reply: &ClaudeReply) -> Result<i64, sqlx::Error>;

    /// The same write as one insert that takes the record's id from `record.id`, for a
    /// ledger that writes the record in one statement of data-modifying CTEs
    /// (PostgreSQL): the record, everything it adds to and the reply are then one
    /// statement, committed as it runs, with no transaction around it. None: `write` runs
    /// in the record's transaction. It may be asked again when the write is retried.
    fn insert(&mut self, reply: &ClaudeReply) -> Option<ReplyInsert> {
        let _ = reply;
        None
    }

    /// The row this reply already has with record `record`, if any: a call's last record
    /// is written once (it names the call's reservation), so a write sent again after
    /// its answer was lost finds the record — and, through this, the reply — that the
    /// first one stored. A record that settled the reservation some other way has none.
    async fn find(&mut self, conn: &mut sqlx::AnyConnection, record: i64) -> Result<Option<i64>, sqlx::Error>;

    /// What `insert` wrote was committed as row `id`, with `record`.
    fn inserted(&mut self, id: i64, record: WrittenRecord, reply: &ClaudeReply) {
        let _ = (id, record, reply);
    }
}

/// An insert of an operation's row for a reply, run with its record (`ReplyWrite::insert`):
/// its SQL reads the record's id from `record` (`... SELECT …, record.id FROM record
/// RETURNING id`) and names its own parameters `$1…`, whose values `args` holds in order.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyInsert {
    pub sql: String,
    pub args: Vec<SqlArg>,
}

/// A value bound to a parameter of a `ReplyInsert`.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlArg {
    Int(i64),
    Text(String),
}

/// The usage record a reply is written with, as the transaction writes it: what the
/// operation may show of it without reading it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenRecord {
    pub id: i64,
    /// What the attempt cost, priced as the record is.
    pub cost_microusd: i64,
}

/// A reply, and what its operation stores of it with its record.
pub struct Alongside<'a> {
    pub write: &'a mut dyn ReplyWrite,
    pub reply: &'a ClaudeReply,
}
