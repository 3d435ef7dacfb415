//! `ClaudeClient`: speaks the Messages API (or runs the built-in offline model), applies
//! the retry policy, and records every attempt that reached Claude through the
//! `UsageRecorder` it was built with — failures included. It knows nothing of budgets:
//! the gateway admits a call and hands it its reservation in `CallMeta`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Outcome;
use super::pricing::TokenUsage;
use super::recorder::{Alongside, AttemptRecord, CallEnd, RecordError, ReplyWrite, UsageRecorder};
use super::retry::RetryPolicy;
use super::transport::{self, ApiKey, AttemptError};
use super::types::{CallMeta, CallOutcome, ClaudeReply, ClaudeRequest, Settlement, Streaming};
use crate::error::{AppError, ErrorKind};

pub use super::transport::{ANTHROPIC_VERSION, DEFAULT_BASE_URL};

pub const BUSY_MESSAGE: &str = "The service is busy, please try again in a moment.";
pub const UPSTREAM_MESSAGE: &str = "Claude could not answer just now. Please try again.";
pub const COUNT_BUSY_MESSAGE: &str = "Claude is too busy to count this draft just now; the estimate stands.";
pub const COUNT_FAILED_MESSAGE: &str = "Claude could not count this draft just now; the estimate stands.";

/// Exact counts (`count_tokens`) one user may ask for in a minute, on one instance. The
/// composer asks once a draft rests, so someone typing stays well below it; a script
/// cannot spend the firm's `count_tokens` rate limit (Claude's, shared by everyone) from
/// one account.
pub const COUNTS_PER_USER_PER_MINUTE: u32 = 30;

/// Where calls go: the Messages API over HTTP, or the built-in simulated model.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Http { base_url: String, api_key: ApiKey },
    Offline { delay: Duration },
}

impl Endpoint {
    pub fn http(base_url: impl Into<String>, api_key: &str) -> Endpoint {
        Endpoint::Http { base_url: base_url.into().trim_end_matches('/').to_string(), api_key: ApiKey::new(api_key) }
    }
}

#[derive(Clone)]
pub struct ClaudeClient {
    endpoint: Endpoint,
    http: reqwest::Client,
    policy: RetryPolicy,
    /// Key of the opaque user ids sent as `metadata.user_id`.
    user_key: [u8; 32],
    recorder: Arc<dyn UsageRecorder>,
    counts: Arc<CountWindows>,
}

/// Each user's exact counts in the current minute.
#[derive(Debug, Default)]
struct CountWindows(std::sync::Mutex<std::collections::HashMap<i64, (i64, u32)>>);

impl CountWindows {
    /// Takes one of `user_id`'s counts of the minute of `now_ms`; Err with the seconds
    /// until the next minute when they are used up.
    fn take(&self, user_id: i64, now_ms: i64) -> Result<(), u64> {
        let minute = now_ms.div_euclid(60_000);
        let mut windows = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() >= 10_000 {
            windows.retain(|_, (at, _)| *at == minute);
        }
        let (at, taken) = windows.entry(user_id).or_insert((minute, 0));
        if *at != minute {
            (*at, *taken) = (minute, 0);
        }
        if *taken >= COUNTS_PER_USER_PER_MINUTE {
            return Err((((minute + 1) * 60_000 - now_ms).max(1) as u64).div_ceil(1000));
        }
        *taken += 1;
        Ok(())
    }
}

impl std::fmt::Debug for ClaudeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeClient").field("endpoint", &self.endpoint).field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// How the client connects: its endpoint, retry policy and timeouts.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub policy: RetryPolicy,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub user_key: [u8; 32],
}

impl ClaudeClient {
    pub fn new(config: ClientConfig, recorder: Arc<dyn UsageRecorder>) -> Result<Self, AppError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|e| AppError::internal("building the HTTP client", e))?;
        Ok(ClaudeClient { endpoint: config.endpoint, http, policy: config.policy, user_key: config.user_key, recorder, counts: Arc::default() })
    }

    pub fn is_offline(&self) -> bool {
        matches!(self.endpoint, Endpoint::Offline { .. })
    }

    /// The model whose usage a call will be recorded under.
    pub fn answering_model<'a>(&self, requested: &'a str) -> &'a str {
        if self.is_offline() { super::OFFLINE_MODEL } else { requested }
    }

    /// Claude's own count of the input tokens `request` carries (`count_tokens`: free, so
    /// nothing is recorded), or None from the offline model, which has no count of its
    /// own. Asked once, never retried: a failure is an error the caller shows while its
    /// estimate stands. `user_id` may ask `COUNTS_PER_USER_PER_MINUTE` times a minute
    /// (`now_ms`); more are refused with `rate_limited`, without asking Claude.
    pub async fn count_tokens(&self, user_id: i64, now_ms: i64, request: &ClaudeRequest) -> Result<Option<u64>, AppError> {
        let Endpoint::Http { base_url, api_key } = &self.endpoint else {
            return Ok(None);
        };
        if let Err(seconds) = self.counts.take(user_id, now_ms) {
            let message = format!("You have asked for {COUNTS_PER_USER_PER_MINUTE} exact counts this minute, the most allowed; the estimate stands.");
            return Err(AppError::new(ErrorKind::RateLimited, message).retry_after(Some(seconds)));
        }
        transport::count_tokens(&self.http, base_url, api_key, request).await.map(Some).map_err(|failure| {
            tracing::warn!(?failure, "Claude's count_tokens failed");
            match failure {
                AttemptError::Busy { .. } => AppError::new(ErrorKind::ServiceBusy, COUNT_BUSY_MESSAGE),
                _ => AppError::new(ErrorKind::UpstreamError, COUNT_FAILED_MESSAGE),
            }
        })
    }

    /// Calls Claude with retries, recording every attempt that reached it; the last
    /// attempt's record settles the reservation in `meta`.
    pub async fn call(&self, meta: &CallMeta, request: &ClaudeRequest) -> CallOutcome {
        self.call_streamed(meta, request, None, None).await
    }

    /// `call`, with the reply streamed to `streaming` when given. Retried only before
    /// Claude's first byte (an error status, a failed connection); a stream that breaks
    /// after the 200 is recorded with what it had billed and not retried. A stopped
    /// reply is recorded as `stopped`, with the input and the output written until then.
    /// `with`: what the operation stores of a reply, written with its record (see
    /// `UsageRecorder::record_with`).
    pub async fn call_streamed(&self, meta: &CallMeta, request: &ClaudeRequest, mut streaming: Option<Streaming>, mut with: Option<&mut dyn ReplyWrite>) -> CallOutcome {
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let result = self.attempt(meta, request, streaming.as_mut()).await;
            let mut attempt = AttemptRecord {
                model: request.model.clone(),
                usage: TokenUsage::default(),
                latency_ms: started.elapsed().as_millis() as u64,
                outcome: Outcome::Ok,
                request_id: None,
                usage_unknown: false,
                stopped: false,
            };
            let failure = match result {
                Ok(mut reply) => {
                    if reply.model.is_empty() {
                        reply.model = request.model.clone();
                    }
                    attempt.model = reply.model.clone();
                    attempt.stopped = reply.stopped;
                    attempt.usage = reply.usage;
                    attempt.request_id = reply.request_id.clone();
                    let recorded = match with.take() {
                        Some(write) => self.recorder.record_with(meta, &attempt, Alongside { write, reply: &reply }).await,
                        None => self.recorder.record(meta, &attempt, CallEnd::Final).await.map(|id| (id, None)),
                    };
                    let (ids, settlement) = settled(recorded, meta, &attempt, CallEnd::Final);
                    (reply.usage_record_id, reply.stored_with_record) = ids.map_or((None, None), |(id, stored)| (Some(id), stored));
                    return CallOutcome { result: Ok(reply), settlement };
                }
                Err(failure) => failure,
            };
            match failure {
                AttemptError::Busy { request_id, detail } => {
                    tracing::warn!(?detail, ?request_id, "Claude rate limit (429): not retried");
                    attempt.outcome = Outcome::Busy;
                    attempt.request_id = request_id;
                    let (_, settlement) = self.record(meta, &attempt, CallEnd::Final).await;
                    return CallOutcome { result: Err(AppError::new(ErrorKind::ServiceBusy, BUSY_MESSAGE)), settlement };
                }
                AttemptError::Fatal { request_id, detail, usage_unknown } => {
                    tracing::error!(?detail, ?request_id, usage_unknown, "Claude call failed");
                    attempt.outcome = Outcome::Error;
                    attempt.request_id = request_id;
                    if usage_unknown {
                        // Claude answered and billed; how much is unknown: count the most
                        // the call was allowed to use.
                        attempt.usage = meta.conservative_usage(request.max_tokens);
                        attempt.usage_unknown = true;
                    }
                    let (_, settlement) = self.record(meta, &attempt, CallEnd::Final).await;
                    return CallOutcome { result: Err(AppError::new(ErrorKind::UpstreamError, UPSTREAM_MESSAGE)), settlement };
                }
                AttemptError::Broken { request_id, detail, usage, model } => {
                    tracing::error!(?detail, ?request_id, "Claude's streamed reply broke off: not retried");
                    attempt.outcome = Outcome::Error;
                    attempt.request_id = request_id;
                    if let Some(model) = model.filter(|m| !m.is_empty()) {
                        attempt.model = model;
                    }
                    match usage {
                        Some(usage) => attempt.usage = usage,
                        None => {
                            attempt.usage = meta.conservative_usage(request.max_tokens);
                            attempt.usage_unknown = true;
                        }
                    }
                    let (_, settlement) = self.record(meta, &attempt, CallEnd::Final).await;
                    return CallOutcome { result: Err(AppError::new(ErrorKind::UpstreamError, UPSTREAM_MESSAGE)), settlement };
                }
                AttemptError::Retryable { request_id, retry_after, detail, reached } => {
                    tracing::warn!(?detail, ?request_id, retry, "Claude call failed, may retry");
                    let last = retry >= self.policy.max_retries;
                    let mut settlement = Settlement::NotReached;
                    if reached {
                        attempt.outcome = Outcome::Error;
                        attempt.request_id = request_id;
                        let end = if last { CallEnd::Final } else { CallEnd::Retrying { attempt: retry + 1 } };
                        settlement = self.record(meta, &attempt, end).await.1;
                    }
                    if last {
                        return CallOutcome { result: Err(AppError::new(ErrorKind::UpstreamError, UPSTREAM_MESSAGE)), settlement };
                    }
                    tokio::time::sleep(self.policy.delay(retry, retry_after, rand::random::<f64>())).await;
                    retry += 1;
                }
            }
        }
    }

    /// Records one attempt. A failed `Final` record leaves the reservation in place.
    async fn record(&self, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> (Option<i64>, Settlement) {
        settled(self.recorder.record(meta, attempt, end).await, meta, attempt, end)
    }

    async fn attempt(&self, meta: &CallMeta, request: &ClaudeRequest, streaming: Option<&mut Streaming>) -> Result<ClaudeReply, AttemptError> {
        match &self.endpoint {
            Endpoint::Offline { delay } => {
                tokio::time::sleep(*delay).await;
                let reply = super::offline::reply(meta.operation, request);
                match streaming {
                    // Writing at about 40 pieces per thinking time (15 ms a word by default).
                    Some(streaming) => Ok(super::offline::stream(reply, *delay / 40, streaming).await),
                    None => Ok(reply),
                }
            }
            Endpoint::Http { base_url, api_key } => {
                let mut body = transport::request_body(&user_token(&self.user_key, meta.user_id), request);
                match streaming {
                    Some(streaming) => {
                        body["stream"] = serde_json::Value::Bool(true);
                        transport::send_streaming(&self.http, base_url, api_key, &body, streaming).await
                    }
                    None => transport::send(&self.http, base_url, api_key, &body).await,
                }
            }
        }
    }
}

/// What a record's write came to for the call: a failed `Final` record leaves the
/// reservation in place, to be settled when it expires.
fn settled<T>(recorded: Result<T, RecordError>, meta: &CallMeta, attempt: &AttemptRecord, end: CallEnd) -> (Option<T>, Settlement) {
    match recorded {
        Ok(ids) => (Some(ids), Settlement::Settled),
        Err(err) => {
            tracing::error!(%err, ?meta, ?attempt, ?end, "USAGE RECORD NOT WRITTEN: the reservation stays until it expires and is settled as unknown usage");
            (None, Settlement::RecordFailed)
        }
    }
}

/// An opaque, stable identifier for the user in `metadata.user_id`: an HMAC of the id
/// under a server secret, so it cannot be reversed by trying ids; never the email.
pub fn user_token(key: &[u8; 32], user_id: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("dealdesk-user:{user_id}").as_bytes());
    mac.finalize().into_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_its_own_counts_each_minute() {
        let windows = CountWindows::default();
        let minute = 29_000_000 * 60_000;
        for _ in 0..COUNTS_PER_USER_PER_MINUTE {
            assert_eq!(windows.take(7, minute + 1_000), Ok(()));
        }
        assert_eq!(windows.take(7, minute + 1_000), Err(59), "used up: 59 s to the next minute");
        assert_eq!(windows.take(7, minute + 59_999), Err(1), "never zero seconds");
        assert_eq!(windows.take(8, minute + 2_000), Ok(()), "another user counts on");
        assert_eq!(windows.take(7, minute + 60_000), Ok(()), "a new minute, new counts");
    }

    #[test]
    fn user_tokens_are_opaque_stable_and_keyed() {
        let key = [7u8; 32];
        assert_eq!(user_token(&key, 7), user_token(&key, 7));
        assert_ne!(user_token(&key, 7), user_token(&key, 8));
        assert_ne!(user_token(&key, 7), user_token(&[8u8; 32], 7), "another server secret, another token");
        assert_eq!(user_token(&key, 7).len(), 32);
        assert!(user_token(&key, 7).chars().all(|c| c.is_ascii_hexdigit()), "only hex digits");
        // Not the bare hash of the id, which anyone could recompute for every id.
        use sha2::{Digest, Sha256};
        let bare: String = Sha256::digest(b"dealdesk-user:7").iter().take(16).map(|b| format!("{b:02x}")).collect();
        assert_ne!(user_token(&key, 7), bare);
    }
}
