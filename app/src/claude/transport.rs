//! The Messages API over HTTP: one attempt, its request body, and what its answer means.
//! Bodies are read up to a cap; once Claude has answered 200, a body that cannot be read
//! or understood is a billed call of unknown usage, not a free failure.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::pricing::TokenUsage;
use super::retry::{is_retryable_status, parse_retry_after};
use super::sse::{SseDecoder, StreamedReply};
use super::types::{ClaudeReply, ClaudeRequest, StopReason, Streaming};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Largest response body read (a 128k-token reply is well under 1 MiB of JSON).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest `count_tokens` answer read (it is `{"input_tokens": N}`).
const MAX_COUNT_BYTES: usize = 64 * 1024;
/// Largest event stream read (a 128k-token reply in small deltas is about 10 MiB).
pub const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// The API key: never logged, never serialised.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: &str) -> ApiKey {
        ApiKey(key.to_string())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub enum AttemptError {
    /// 429: never retried.
    Busy { request_id: Option<String>, detail: String },
    /// 5xx, timeouts and dropped connections before an answer. `reached` is false when
    /// no connection was made (nothing could have been billed, so nothing is recorded).
    Retryable { request_id: Option<String>, retry_after: Option<Duration>, detail: String, reached: bool },
    /// Other 4xx (nothing billed), or a 200 whose body could not be read or understood
    /// (`usage_unknown`: billed, amount unknown). Never retried.
    Fatal { request_id: Option<String>, detail: String, usage_unknown: bool },
    /// A streamed reply that broke after the 200: an `error` event, a dropped connection,
    /// an event that makes no sense. Billed: `usage` is what its events had billed (None
    /// before `message_start`, when the amount is unknown). Never retried.
    Broken { request_id: Option<String>, detail: String, usage: Option<TokenUsage>, model: Option<String> },
}

/// Sends one attempt and reads its answer.
pub async fn send(http: &reqwest::Client, base_url: &str, api_key: &ApiKey, body: &Value) -> Result<ClaudeReply, AttemptError> {
    let (mut response, request_id) = open(http, base_url, "/v1/messages", api_key, body).await?;
    let bytes = read_capped(&mut response, MAX_BODY_BYTES)
        .await
        .map_err(|detail| AttemptError::Fatal { request_id: request_id.clone(), usage_unknown: true, detail })?;
    let parsed: ApiResponse = serde_json::from_slice(&bytes).map_err(|e| AttemptError::Fatal {
        request_id: request_id.clone(),
        usage_unknown: true,
        detail: format!("malformed response body ({e}): {}", snippet(&bytes)),
    })?;
    Ok(parsed.into_reply(request_id))
}

/// Sends one streamed attempt (`"stream": true` in `body`) and reads its events as they
/// come, handing each piece of text to `streaming`. Once Claude has answered 200 the
/// call is billed: a stream that breaks after that is `Broken` (never retried), with
/// what its events had billed by then. When `streaming.stop` turns true the stream is
/// closed as soon as its input is known (`message_start`), and the reply so far comes
/// back `stopped`, billed for the input and the output written until then.
pub async fn send_streaming(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &ApiKey,
    body: &Value,
    streaming: &mut Streaming,
) -> Result<ClaudeReply, AttemptError> {
    let (mut response, request_id) = open(http, base_url, "/v1/messages", api_key, body).await?;
    let broken = |reply: &StreamedReply, detail: String| AttemptError::Broken {
        request_id: request_id.clone(),
        usage: reply.usage(),
        model: reply.model.clone(),
        detail,
    };
    let mut decoder = SseDecoder::default();
    let mut reply = StreamedReply::default();
    let mut stopping = *streaming.stop.borrow();
    let mut watching = true;
    let mut received = 0usize;
    loop {
        if stopping && reply.started() {
            // Dropping the response closes the connection: Claude stops writing.
            drop(response);
            return Ok(streamed_reply(reply, request_id.clone(), true));
        }
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            changed = streaming.stop.changed(), if watching && !stopping => {
                match changed {
                    Ok(()) => stopping = *streaming.stop.borrow_and_update(),
                    // Nobody can ask to stop any more.
                    Err(_) => watching = false,
                }
                continue;
            }
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Err(broken(&reply, "the stream ended before message_stop".into())),
            Err(e) => return Err(broken(&reply, format!("reading the stream: {e}"))),
        };
        received += chunk.len();
        if received > MAX_STREAM_BYTES {
            return Err(broken(&reply, format!("stream over {MAX_STREAM_BYTES} bytes")));
        }
        let events = decoder.feed(&chunk).map_err(|detail| broken(&reply, detail))?;
        for event in events {
            match reply.apply(&event) {
                Ok(Some(text)) => (streaming.on_text)(&text),
                Ok(None) => {}
                Err(e) => return Err(broken(&reply, e.to_string())),
            }
            if reply.finished {
                if !reply.started() {
                    return Err(broken(&reply, "message_stop without message_start".into()));
                }
                return Ok(streamed_reply(reply, request_id.clone(), false));
            }
        }
    }
}

/// The reply a stream built, `stopped` early or whole.
fn streamed_reply(reply: StreamedReply, request_id: Option<String>, stopped: bool) -> ClaudeReply {
    ClaudeReply {
        usage: reply.usage().unwrap_or_default(),
        model: reply.model.unwrap_or_default(),
        text: reply.text,
        tool_input: None,
        stop_reason: reply.stop_reason,
        request_id,
        usage_record_id: None,
        stored_with_record: None,
        stopped,
    }
}

/// Sends one attempt; returns the 2xx response (its body unread) with its request id,
/// or why the attempt failed, its error body read for the log.
async fn open(http: &reqwest::Client, base_url: &str, path: &str, api_key: &ApiKey, body: &Value) -> Result<(reqwest::Response, Option<String>), AttemptError> {
    let mut response = http
        .post(format!("{base_url}{path}"))
        .header("x-api-key", &api_key.0)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(body)
        .send()
        .await
        .map_err(|e| AttemptError::Retryable { request_id: None, retry_after: None, reached: !e.is_connect(), detail: format!("sending: {e}") })?;
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let request_id = header("request-id");
    let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
    if (200..300).contains(&status) {
        return Ok((response, request_id));
    }
    let bytes = match read_capped(&mut response, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(detail) => return Err(AttemptError::Retryable { request_id, retry_after: None, reached: true, detail }),
    };
    if status == 429 {
        return Err(AttemptError::Busy { request_id, detail: snippet(&bytes) });
    }
    if is_retryable_status(status) {
        return Err(AttemptError::Retryable { request_id, retry_after, reached: true, detail: format!("HTTP {status}: {}", snippet(&bytes)) });
    }
    Err(AttemptError::Fatal { request_id, usage_unknown: false, detail: format!("HTTP {status}: {}", snippet(&bytes)) })
}

/// The start of a body, for the log.
fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned()
}

/// The body, or why it could not be read whole: dropped, timed out, or over `cap`.
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(format!("response body over {cap} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("reading the body: {e}")),
        }
    }
}

/// The Messages API request for `request`, with `user_token` as `metadata.user_id`.
pub fn request_body(user_token: &str, request: &ClaudeRequest) -> Value {
    let mut body = input_body(request);
    body["max_tokens"] = request.max_tokens.into();
    body["metadata"] = serde_json::json!({"user_id": user_token});
    body
}

/// What `request` gives Claude to read — model, system, messages, tools — as both a call
/// and `count_tokens` send it (the count refuses the fields only a call takes).
fn input_body(request: &ClaudeRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|t| serde_json::json!({"role": t.role.as_str(), "content": t.content}))
        .collect();
    let mut body = serde_json::json!({
        "model": request.model,
        "system": request.system,
        "messages": messages,
    });
    if let Some(tool) = &request.tool {
        body["tools"] = serde_json::json!([tool]);
        // Current models (Sonnet 5.5, Opus 5.5, Fable 5.1) answer a forced tool choice
        // with a 400: the tool is offered and the system prompt asks for it.
        body["tool_choice"] = serde_json::json!({"type": "auto"});
    }
    body
}

/// Claude's own count of the input tokens `request` carries
/// (`POST /v1/messages/count_tokens`: free, billed nothing). One attempt: the caller's
/// estimate stands when it fails.
pub async fn count_tokens(http: &reqwest::Client, base_url: &str, api_key: &ApiKey, request: &ClaudeRequest) -> Result<u64, AttemptError> {
    #[derive(Deserialize)]
    struct Counted {
        input_tokens: u64,
    }
    let (mut response, request_id) = open(http, base_url, "/v1/messages/count_tokens", api_key, &input_body(request)).await?;
    let fatal = |detail: String| AttemptError::Fatal { request_id: request_id.clone(), usage_unknown: false, detail };
    let bytes = read_capped(&mut response, MAX_COUNT_BYTES).await.map_err(fatal)?;
    let counted: Counted = serde_json::from_slice(&bytes).map_err(|e| fatal(format!("malformed count ({e}): {}", snippet(&bytes))))?;
    Ok(counted.input_tokens)
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
    /// Cache writes split by lifetime (missing on older replies: all 5-minute).
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
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
            stop_reason: self.stop_reason.as_deref().map(StopReason::parse),
            model: self.model,
            usage: TokenUsage {
                input_tokens: self.usage.input_tokens,
                output_tokens: self.usage.output_tokens,
                cache_creation_input_tokens: self.usage.cache_creation_input_tokens.unwrap_or(0),
                cache_read_input_tokens: self.usage.cache_read_input_tokens.unwrap_or(0),
                cache_creation_1h_input_tokens: self.usage.cache_creation.and_then(|c| c.ephemeral_1h_input_tokens).unwrap_or(0),
            },
            request_id,
            usage_record_id: None,
            stored_with_record: None,
            stopped: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::Speaker;
    use crate::claude::history::Turn;

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
        assert_eq!(reply.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(reply.usage, TokenUsage { input_tokens: 25, output_tokens: 31, ..Default::default() });
        assert_eq!(reply.request_id.as_deref(), Some("req_1"));
    }

    #[test]
    fn cache_writes_are_split_by_lifetime() {
        let body = r#"{"content":[],"model":"m","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2,
            "cache_creation_input_tokens":300,"cache_read_input_tokens":4,
            "cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}}}"#;
        let usage = serde_json::from_str::<ApiResponse>(body).unwrap().into_reply(None).usage;
        assert_eq!((usage.cache_creation_input_tokens, usage.cache_creation_1h_input_tokens), (300, 200));
        let null_split = r#"{"content":[],"model":"m","usage":{"input_tokens":1,"output_tokens":2,"cache_creation":null}}"#;
        assert_eq!(serde_json::from_str::<ApiResponse>(null_split).unwrap().into_reply(None).usage.cache_creation_1h_input_tokens, 0);
    }

    #[test]
    fn request_body_has_top_level_system_and_no_sampling_parameters() {
        let request = ClaudeRequest {
            model: "claude-sonnet-4-6".into(),
            max_tokens: 4096,
            system: "You are...".into(),
            messages: vec![Turn { role: Speaker::User, content: "Hi".into() }],
            tool: None,
        };
        let body = request_body("token-of-user-3", &request);
        assert_eq!(body["system"], "You are...");
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["metadata"]["user_id"], "token-of-user-3");
        for absent in ["temperature", "top_p", "top_k", "tools", "tool_choice"] {
            assert!(body.get(absent).is_none(), "{absent}");
        }
        assert_eq!(body["max_tokens"], 4096);
    }

    #[test]
    fn a_count_carries_what_the_call_gives_claude_to_read_and_nothing_else() {
        let tool = super::super::types::ToolSpec { name: "record_sales".into(), description: "d".into(), input_schema: serde_json::json!({"type": "object"}) };
        let request = ClaudeRequest {
            model: "claude-sonnet-5-5".into(),
            max_tokens: 4096,
            system: "Deal facts".into(),
            messages: vec![Turn { role: Speaker::User, content: "Hi".into() }],
            tool: Some(tool),
        };
        let count = input_body(&request);
        let call = request_body("token", &request);
        for read in ["model", "system", "messages", "tools", "tool_choice"] {
            assert_eq!(count[read], call[read], "{read}");
        }
        let mut keys: Vec<&String> = count.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["messages", "model", "system", "tool_choice", "tools"], "count_tokens refuses max_tokens, metadata, stream");
    }
}
