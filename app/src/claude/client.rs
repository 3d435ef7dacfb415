//! `ClaudeClient`: the one way to Claude. It speaks the Messages API (or runs the
//! built-in offline model), applies the retry policy, and records every attempt that
//! reached Claude through the usage tracker — failures included.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history::Turn;
use super::pricing::TokenUsage;
use super::retry::{RetryPolicy, is_retryable_status, parse_retry_after};
use super::{Operation, Outcome};
use crate::error::{AppError, ErrorKind};
use crate::usage::tracker::{AttemptReport, UsageTracker};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const BUSY_MESSAGE: &str = "The service is busy, please try again in a moment.";
pub const UPSTREAM_MESSAGE: &str = "Claude could not answer just now. Please try again.";

/// The API key: never logged, never serialised.
#[derive(Clone)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

/// Where calls go: the Messages API over HTTP, or the built-in simulated model.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Http { base_url: String, api_key: ApiKey },
    Offline { delay: Duration },
}

impl Endpoint {
    /// `ANTHROPIC_API_KEY` (and optional `ANTHROPIC_BASE_URL`), else the offline model.
    pub fn from_env(offline_delay: Duration) -> Endpoint {
        match std::env::var("ANTHROPIC_API_KEY") {
            Ok(key) if !key.trim().is_empty() => Endpoint::http(
                std::env::var("ANTHROPIC_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_string()),
                key.trim(),
            ),
            _ => Endpoint::Offline { delay: offline_delay },
        }
    }

    pub fn http(base_url: impl Into<String>, api_key: &str) -> Endpoint {
        Endpoint::Http {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: ApiKey(api_key.to_string()),
        }
    }
}

/// A tool Claude must answer through (structured extraction).
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
    /// Forces Claude to answer through this tool when set.
    pub tool: Option<ToolSpec>,
}

/// Who a call is for; recorded with every attempt.
#[derive(Clone, Debug)]
pub struct CallMeta {
    pub user_id: i64,
    pub deal_id: Option<i64>,
    pub operation: Operation,
    pub estimated_input_tokens: u64,
}

/// Claude's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaudeReply {
    pub text: String,
    pub tool_input: Option<Value>,
    pub stop_reason: Option<String>,
    pub model: String,
    pub usage: TokenUsage,
    pub request_id: Option<String>,
    /// Id of the usage record of the successful attempt.
    pub usage_record_id: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct ClaudeClient {
    endpoint: Endpoint,
    http: reqwest::Client,
    policy: RetryPolicy,
}

/// Why one attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// 429: never retried.
    Busy { request_id: Option<String>, detail: String },
    /// 5xx, timeouts, dropped connections. `reached` is false when no connection was
    /// made (nothing could have been billed, so nothing is recorded).
    Retryable { request_id: Option<String>, retry_after: Option<Duration>, detail: String, reached: bool },
    /// Other 4xx and unreadable bodies.
    Fatal { request_id: Option<String>, detail: String },
}

impl ClaudeClient {
    pub fn new(endpoint: Endpoint, policy: RetryPolicy, connect_timeout: Duration, timeout: Duration) -> Result<Self, AppError> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| AppError::internal("building the HTTP client", e))?;
        Ok(ClaudeClient { endpoint, http, policy })
    }

    pub fn is_offline(&self) -> bool {
        matches!(self.endpoint, Endpoint::Offline { .. })
    }

    /// The model whose usage a call will be recorded under.
    pub fn answering_model<'a>(&self, requested: &'a str) -> &'a str {
        if self.is_offline() { super::OFFLINE_MODEL } else { requested }
    }

    /// Calls Claude with retries, recording every attempt that reached it. Operations
    /// go through `budget::service::call_claude`, which reserves budget around this.
    pub(crate) async fn call(&self, tracker: &UsageTracker, meta: &CallMeta, request: &ClaudeRequest) -> Result<ClaudeReply, AppError> {
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let result = self.attempt(meta, request).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            let mut report = AttemptReport {
                model: request.model.clone(),
                usage: TokenUsage::default(),
                latency_ms,
                outcome: Outcome::Ok,
                request_id: None,
            };
            let failure = match result {
                Ok(mut reply) => {
                    report.model = reply.model.clone();
                    report.usage = reply.usage;
                    report.request_id = reply.request_id.clone();
                    reply.usage_record_id = tracker.record_logged(meta, &report).await;
                    return Ok(reply);
                }
                Err(failure) => failure,
            };
            match failure {
                AttemptError::Busy { request_id, detail } => {
                    tracing::warn!(%detail, ?request_id, "Claude rate limit (429): not retried");
                    report.outcome = Outcome::Busy;
                    report.request_id = request_id;
                    tracker.record_logged(meta, &report).await;
                    return Err(AppError::new(ErrorKind::ServiceBusy, BUSY_MESSAGE));
                }
                AttemptError::Fatal { request_id, detail } => {
                    tracing::error!(%detail, ?request_id, "Claude call failed");
                    report.outcome = Outcome::Error;
                    report.request_id = request_id;
                    tracker.record_logged(meta, &report).await;
                    return Err(AppError::new(ErrorKind::UpstreamError, UPSTREAM_MESSAGE));
                }
                AttemptError::Retryable { request_id, retry_after, detail, reached } => {
                    tracing::warn!(%detail, ?request_id, retry, "Claude call failed, may retry");
                    if reached {
                        report.outcome = Outcome::Error;
                        report.request_id = request_id;
                        tracker.record_logged(meta, &report).await;
                    }
                    if retry >= self.policy.max_retries {
                        return Err(AppError::new(ErrorKind::UpstreamError, UPSTREAM_MESSAGE));
                    }
                    tokio::time::sleep(self.policy.delay(retry, retry_after, rand::random::<f64>())).await;
                    retry += 1;
                }
            }
        }
    }

    async fn attempt(&self, meta: &CallMeta, request: &ClaudeRequest) -> Result<ClaudeReply, AttemptError> {
        match &self.endpoint {
            Endpoint::Offline { delay } => {
                tokio::time::sleep(*delay).await;
                Ok(super::offline::reply(meta.operation, request))
            }
            Endpoint::Http { base_url, api_key } => {
                let body = request_body(meta, request);
                self.send_http(base_url, api_key, &body).await
            }
        }
    }

    async fn send_http(&self, base_url: &str, api_key: &ApiKey, body: &Value) -> Result<ClaudeReply, AttemptError> {
        let response = self
            .http
            .post(format!("{base_url}/v1/messages"))
            .header("x-api-key", &api_key.0)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(body)
            .send()
            .await
            .map_err(|e| AttemptError::Retryable {
                request_id: None,
                retry_after: None,
                reached: !e.is_connect(),
                detail: format!("sending: {e}"),
            })?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let request_id = header("request-id");
        let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(|e| AttemptError::Retryable {
            request_id: request_id.clone(),
            retry_after: None,
            reached: true,
            detail: format!("reading the body: {e}"),
        })?;
        let snippet = || String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
        if status == 429 {
            return Err(AttemptError::Busy { request_id, detail: snippet() });
        }
        if is_retryable_status(status) {
            return Err(AttemptError::Retryable { request_id, retry_after, reached: true, detail: format!("HTTP {status}: {}", snippet()) });
        }
        if !(200..300).contains(&status) {
            return Err(AttemptError::Fatal { request_id, detail: format!("HTTP {status}: {}", snippet()) });
        }
        let parsed: ApiResponse = serde_json::from_slice(&bytes).map_err(|e| AttemptError::Fatal {
            request_id: request_id.clone(),
            detail: format!("malformed response body ({e}): {}", snippet()),
        })?;
        Ok(parsed.into_reply(request_id))
    }
}

/// An opaque, stable identifier for the user in `metadata.user_id`: never the email,
/// never the bare database id.
pub fn user_hash(user_id: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("dealdesk-user:{user_id}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn request_body(meta: &CallMeta, request: &ClaudeRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|t| serde_json::json!({"role": t.role.as_str(), "content": t.content}))
        .collect();
    let mut body = serde_json::json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "system": request.system,
        "messages": messages,
        "metadata": {"user_id": user_hash(meta.user_id)},
    });
    if let Some(tool) = &request.tool {
        body["tools"] = serde_json::json!([tool]);
        body["tool_choice"] = serde_json::json!({"type": "tool", "name": tool.name});
    }
    body
}

#[derive(Deserialize)]
struct ApiResponse {
    #[serde(default)]
    content: Vec<ContentBlock>,
    model: String,
    stop_reason: Option<String>,
    usage: ApiUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text { text: String },
    ToolUse { input: Value },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ApiUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl ApiResponse {
    fn into_reply(self, request_id: Option<String>) -> ClaudeReply {
        let mut text = String::new();
        let mut tool_input = None;
        for block in self.content {
            match block {
                ContentBlock::Text { text: t } => text.push_str(&t),
                ContentBlock::ToolUse { input } => tool_input = tool_input.or(Some(input)),
                ContentBlock::Other => {}
            }
        }
        ClaudeReply {
            text,
            tool_input,
            stop_reason: self.stop_reason,
            model: self.model,
            usage: TokenUsage {
                input_tokens: self.usage.input_tokens,
                output_tokens: self.usage.output_tokens,
                cache_creation_input_tokens: self.usage.cache_creation_input_tokens.unwrap_or(0),
                cache_read_input_tokens: self.usage.cache_read_input_tokens.unwrap_or(0),
            },
            request_id,
            usage_record_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_tool_use_and_missing_or_null_cache_fields() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-6",
            "content":[{"type":"text","text":"Hello "},{"type":"thinking","thinking":"..."},
                       {"type":"text","text":"there"},{"type":"tool_use","id":"t1","name":"x","input":{"a":1}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":25,"output_tokens":31,"cache_creation_input_tokens":null,"brand_new_field":7}}"#;
        let reply = serde_json::from_str::<ApiResponse>(body).unwrap().into_reply(Some("req_1".into()));
        assert_eq!(reply.text, "Hello there");
        assert_eq!(reply.tool_input, Some(serde_json::json!({"a": 1})));
        assert_eq!(reply.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(reply.usage, TokenUsage { input_tokens: 25, output_tokens: 31, ..Default::default() });
        assert_eq!(reply.request_id.as_deref(), Some("req_1"));
    }

    #[test]
    fn user_hash_is_opaque_and_stable() {
        assert_eq!(user_hash(7), user_hash(7));
        assert_ne!(user_hash(7), user_hash(8));
        assert_eq!(user_hash(7).len(), 32);
        assert!(user_hash(7).chars().all(|c| c.is_ascii_hexdigit()), "only hex digits");
        assert_ne!(user_hash(7), "7", "never the bare id");
    }

    #[test]
    fn request_body_has_top_level_system_and_no_sampling_parameters() {
        let meta = CallMeta { user_id: 3, deal_id: Some(1), operation: Operation::Chat, estimated_input_tokens: 10 };
        let request = ClaudeRequest {
            model: "claude-sonnet-4-6".into(),
            max_tokens: 4096,
            system: "You are...".into(),
            messages: vec![Turn { role: super::super::Role::User, content: "Hi".into() }],
            tool: None,
        };
        let body = request_body(&meta, &request);
        assert_eq!(body["system"], "You are...");
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["metadata"]["user_id"], user_hash(3));
        for absent in ["temperature", "top_p", "top_k", "tools", "tool_choice"] {
            assert!(body.get(absent).is_none(), "{absent}");
        }
    }
}
