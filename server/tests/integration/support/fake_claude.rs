//! A fake Claude Messages API on port 0: records every request, rejects malformed ones
//! with 400 as the real API does (anthropic-api.md), and answers each call from a script
//! — success with given usage, 429, 5xx/529, a slow reply, malformed JSON, a dropped
//! connection. Unscripted calls get a default success.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::claude::client::Endpoint;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

pub const FAKE_MODEL: &str = "claude-sonnet-5-5";

#[derive(Clone, Debug)]
pub enum Script {
    /// 200 with this text and usage JSON (the `usage` object as the API sends it).
    Reply { text: String, usage: Value },
    /// 200 with a `tool_use` block.
    Tool { input: Value, usage: Value },
    /// An error status with the API's error body, optionally with `retry-after`.
    Status { status: u16, retry_after: Option<String> },
    /// 200 whose input tokens are counted from the request text as a tokenizer would
    /// (about 3.5 characters per token plus framing), with the given output tokens.
    Counted { output: u64 },
    /// Waits, then answers with the default reply.
    Slow(Duration),
    /// Waits, then answers as the inner script says.
    Delayed(Duration, Box<Script>),
    /// 200 with a body that is not the API's JSON.
    Malformed,
    /// 200, part of the body, then the connection drops.
    DropMidBody,
    /// 200 and the start of the body at once; the rest only after this long.
    SlowBody(Duration),
    /// 200, streamed (the request must ask for a stream): `message_start` with `input`
    /// tokens, then one `content_block_delta` per piece, each piece one output token.
    /// `usage_each`: a `message_delta` with the output so far after each piece (else
    /// only at the end). `pause_after`: after that many pieces, nothing for that long.
    /// `error_after`: after that many pieces an `error` event (overloaded) ends it.
    Stream { pieces: Vec<String>, input: u64, usage_each: bool, pause_after: Option<(usize, Duration)>, error_after: Option<usize> },
}

impl Script {
    pub fn ok(text: &str, input: u64, output: u64) -> Script {
        Script::Reply { text: text.into(), usage: json!({"input_tokens": input, "output_tokens": output}) }
    }

    pub fn status(status: u16) -> Script {
        Script::Status { status, retry_after: None }
    }

    /// A streamed reply of `pieces` ("w1 ", "w2 ", …), `input` tokens in.
    pub fn stream(pieces: usize, input: u64) -> Script {
        Script::Stream { pieces: (1..=pieces).map(|i| format!("w{i} ")).collect(), input, usage_each: false, pause_after: None, error_after: None }
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
    /// Why the fake rejected it as malformed, if it did.
    pub rejected: Option<String>,
}

#[derive(Default)]
struct Inner {
    scripts: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<Recorded>>,
    /// `count_tokens` requests, apart from the calls (they are free and use no script).
    counts: Mutex<Vec<Recorded>>,
    /// When set, `count_tokens` answers with this error status.
    count_status: Mutex<Option<u16>>,
    /// When set, unscripted calls wait this long, then answer as their request asks:
    /// a tool call for a tool request (no sales), else a reply counted from the text.
    by_shape_after: Mutex<Option<Duration>>,
}

#[derive(Clone)]
pub struct FakeClaude {
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeClaude {
    pub async fn start() -> FakeClaude {
        let inner = Arc::new(Inner::default());
        let router = axum::Router::new()
            .route("/v1/messages", axum::routing::post(messages))
            .route("/v1/messages/count_tokens", axum::routing::post(count_tokens))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeClaude { base_url, inner }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::http(&self.base_url, "test-api-key")
    }

    /// Queues answers for the next calls, in order.
    pub fn script(&self, scripts: impl IntoIterator<Item = Script>) {
        self.inner.scripts.lock().unwrap().extend(scripts);
    }

    /// From now on, unscripted calls wait `delay` and answer as their request asks.
    pub fn answer_by_shape_after(&self, delay: Duration) {
        *self.inner.by_shape_after.lock().unwrap() = Some(delay);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The `count_tokens` requests so far.
    pub fn counts(&self) -> Vec<Recorded> {
        self.inner.counts.lock().unwrap().clone()
    }

    /// From now on `count_tokens` answers with this error status (None: it counts again).
    pub fn fail_counts(&self, status: Option<u16>) {
        *self.inner.count_status.lock().unwrap() = status;
    }

    /// What `count_tokens` answers for `body`: the input a `Counted` reply would bill.
    pub fn counted(body: &Value) -> u64 {
        count_input_tokens(body)
    }
}

fn body_has_tools(inner: &Inner, n: usize) -> bool {
    inner.requests.lock().unwrap().get(n - 1).is_some_and(|r| r.body.get("tools").is_some())
}

fn error_body(error_type: &str, message: &str, n: usize) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": format!("req_fake_{n}")})
}

/// Records a request to `api` in `list` and checks it as the real API would: its number
/// in `list`, the input it carries (counted as a tokenizer would) and its request id —
/// or the 400 a malformed request gets.
fn receive(list: &Mutex<Vec<Recorded>>, api: Api, headers: HeaderMap, body: &Bytes) -> Result<(usize, u64, String), Response> {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let counted = count_input_tokens(&parsed);
    let rejected = validate(&headers, &parsed, api).err();
    let n = {
        let mut list = list.lock().unwrap();
        list.push(Recorded { headers, body: parsed, at: Instant::now(), rejected: rejected.clone() });
        list.len()
    };
    let request_id = match api {
        Api::Messages => format!("req_fake_{n}"),
        Api::CountTokens => format!("req_fake_count_{n}"),
    };
    match rejected {
        Some(problem) => Err((StatusCode::BAD_REQUEST, [("request-id", request_id)], axum::Json(error_body("invalid_request_error", &problem, n)))
            .into_response()),
        None => Ok((n, counted, request_id)),
    }
}

async fn messages(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let (n, counted, request_id) = match receive(&inner.requests, Api::Messages, headers, &body) {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    let script = inner.scripts.lock().unwrap().pop_front();
    let by_shape = *inner.by_shape_after.lock().unwrap();
    let has_tools = body_has_tools(&inner, n);
    let script = script.unwrap_or_else(|| match by_shape {
        Some(delay) if has_tools => Script::Delayed(delay, Box::new(Script::Tool { input: json!({"sales": []}), usage: json!({"input_tokens": counted, "output_tokens": 40}) })),
        Some(delay) => Script::Delayed(delay, Box::new(Script::Counted { output: 80 })),
        None => Script::ok(&format!("Fake reply {n}."), 120, 30),
    });
    // Like Claude, never write more than `max_tokens`.
    let max_tokens = inner.requests.lock().unwrap()[n - 1].body["max_tokens"].as_u64().unwrap_or(u64::MAX);
    let streamed = inner.requests.lock().unwrap()[n - 1].body["stream"] == json!(true);
    if streamed {
        return answer_streamed(script, n, request_id, counted, max_tokens).await;
    }
    assert!(!matches!(script, Script::Stream { .. }), "a Stream script answers only a request that asks for a stream");
    answer(script, n, request_id, counted, max_tokens).await
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, N counted from the request
/// as a `Counted` reply would bill it; a malformed request is refused with 400.
async fn count_tokens(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let (n, counted, request_id) = match receive(&inner.counts, Api::CountTokens, headers, &body) {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    if let Some(status) = *inner.count_status.lock().unwrap() {
        let code = StatusCode::from_u16(status).unwrap();
        return (code, [("request-id", request_id)], axum::Json(error_body("rate_limit_error", "Counting is busy.", n))).into_response();
    }
    (StatusCode::OK, [("request-id", request_id)], axum::Json(json!({"input_tokens": counted}))).into_response()
}

/// One server-sent event.
fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A 200 event stream whose parts go out after their delays.
fn event_stream(request_id: String, parts: Vec<(Duration, Result<String, ()>)>) -> Response {
    let body = futures::stream::iter(parts).then(|(delay, part)| async move {
        tokio::time::sleep(delay).await;
        part.map(Bytes::from).map_err(|()| std::io::Error::other("connection dropped"))
    });
    Response::builder()
        .status(200)
        .header("request-id", request_id)
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

/// The events of a whole streamed reply, as Claude sends them.
fn reply_events(n: usize, pieces: &[String], usage: &Value, stop: &str, usage_each: bool) -> Vec<String> {
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut events = vec![
        event("message_start", json!({"type": "message_start", "message": {"id": format!("msg_fake_{n}"), "type": "message", "role": "assistant",
            "model": FAKE_MODEL, "content": [], "stop_reason": null, "usage": start_usage}})),
        event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        event("ping", json!({"type": "ping"})),
    ];
    for (i, piece) in pieces.iter().enumerate() {
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})));
        if usage_each {
            events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": null}, "usage": {"output_tokens": i + 1}})));
        }
    }
    events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": usage["output_tokens"]}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

/// Text in pieces of a word and the space after it.
fn words(text: &str) -> Vec<String> {
    text.split_inclusive(' ').map(str::to_string).collect()
}

/// How a script answers a request that asked for a stream: error statuses as always,
/// replies as events, and the broken answers broken in the middle of the first event (so
/// nothing of the bill is known).
async fn answer_streamed(script: Script, n: usize, request_id: String, counted_input: u64, max_tokens: u64) -> Response {
    let capped = |mut usage: Value| {
        let written = usage["output_tokens"].as_u64().unwrap_or(0);
        let stop = if written > max_tokens {
            usage["output_tokens"] = json!(max_tokens);
            "max_tokens"
        } else {
            "end_turn"
        };
        (usage, stop)
    };
    let whole = |text: &str, usage: Value| {
        let (usage, stop) = capped(usage);
        reply_events(n, &words(text), &usage, stop, false).concat()
    };
    let ms = Duration::from_millis;
    match script {
        Script::Reply { text, usage } => {
            let (usage, stop) = capped(usage);
            let parts = reply_events(n, &words(&text), &usage, stop, false).into_iter().map(|e| (ms(2), Ok(e))).collect();
            event_stream(request_id, parts)
        }
        Script::Counted { output } => {
            let usage = json!({"input_tokens": counted_input, "output_tokens": output});
            Box::pin(answer_streamed(Script::Reply { text: format!("Counted reply {n}."), usage }, n, request_id, counted_input, max_tokens)).await
        }
        Script::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer_streamed(Script::ok(&format!("Slow reply {n}."), 120, 30), n, request_id, counted_input, max_tokens)).await
        }
        Script::Delayed(delay, then) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer_streamed(*then, n, request_id, counted_input, max_tokens)).await
        }
        Script::Status { .. } | Script::Tool { .. } => answer(script, n, request_id, counted_input, max_tokens).await,
        Script::Malformed => event_stream(request_id, vec![(ms(0), Ok("event: message_start\ndata: {\"message\": [oops\n\n".into()))]),
        Script::DropMidBody => {
            let text = whole(&format!("Dropped {n}."), json!({"input_tokens": counted_input, "output_tokens": 30}));
            event_stream(request_id, vec![(ms(0), Ok(text[..40].to_string())), (ms(100), Err(()))])
        }
        Script::SlowBody(delay) => {
            let text = whole(&format!("Slow body {n}."), json!({"input_tokens": counted_input, "output_tokens": 30}));
            let (head, tail) = text.split_at(40);
            event_stream(request_id, vec![(ms(0), Ok(head.to_string())), (delay, Ok(tail.to_string()))])
        }
        Script::Stream { pieces, input, usage_each, pause_after, error_after } => {
            let usage = json!({"input_tokens": input, "output_tokens": pieces.len()});
            let events = reply_events(n, &pieces, &usage, "end_turn", usage_each);
            // Three events lead (start, block start, ping); each piece is one or two.
            let per_piece = if usage_each { 2 } else { 1 };
            let after = |k: usize| 3 + k * per_piece;
            let mut parts: Vec<(Duration, Result<String, ()>)> = Vec::new();
            for (i, e) in events.into_iter().enumerate() {
                if error_after.is_some_and(|k| i == after(k)) {
                    let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
                    parts.push((ms(2), Ok(event("error", error))));
                    break;
                }
                let delay = match pause_after {
                    Some((k, pause)) if i == after(k) => pause,
                    _ => ms(2),
                };
                parts.push((delay, Ok(e)));
            }
            event_stream(request_id, parts)
        }
    }
}

/// A stand-in for Claude's tokenizer: ~3.5 characters per token, 4 per message, 10 per request.
fn count_input_tokens(body: &Value) -> u64 {
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count() as u64);
    let messages = body["messages"].as_array().map_or(&[][..], |m| m.as_slice());
    let text: u64 = chars(&body["system"]) + messages.iter().map(|m| chars(&m["content"])).sum::<u64>();
    (text * 10).div_ceil(35) + 4 * messages.len() as u64 + 10
}

async fn answer(script: Script, n: usize, request_id: String, counted_input: u64, max_tokens: u64) -> Response {
    let message = |content: Value, mut usage: Value, stop: &str| {
        let written = usage["output_tokens"].as_u64().unwrap_or(0);
        let stop = if written > max_tokens {
            usage["output_tokens"] = json!(max_tokens);
            "max_tokens"
        } else {
            stop
        };
        json!({"id": format!("msg_fake_{n}"), "type": "message", "role": "assistant", "model": FAKE_MODEL,
               "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage,
               "some_future_field": {"ignored": true}})
    };
    match script {
        Script::Counted { output } => {
            let usage = json!({"input_tokens": counted_input, "output_tokens": output});
            Box::pin(answer(Script::Reply { text: format!("Counted reply {n}."), usage }, n, request_id, counted_input, max_tokens)).await
        }
        Script::Reply { text, usage } => {
            let body = message(json!([{"type": "text", "text": text}]), usage, "end_turn");
            (StatusCode::OK, [("request-id", request_id)], axum::Json(body)).into_response()
        }
        Script::Tool { input, usage } => {
            let body = message(json!([{"type": "tool_use", "id": "toolu_1", "name": "record", "input": input}]), usage, "tool_use");
            (StatusCode::OK, [("request-id", request_id)], axum::Json(body)).into_response()
        }
        Script::Status { status, retry_after } => {
            let error_type = match status {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                504 => "timeout_error",
                400 => "invalid_request_error",
                401 => "authentication_error",
                s if s >= 500 => "api_error",
                _ => "invalid_request_error",
            };
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                axum::Json(error_body(error_type, "scripted failure", n)),
            )
                .into_response();
            response.headers_mut().insert("request-id", request_id.parse().unwrap());
            if let Some(wait) = retry_after {
                response.headers_mut().insert("retry-after", wait.parse().unwrap());
            }
            response
        }
        Script::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer(Script::ok(&format!("Slow reply {n}."), 120, 30), n, request_id, counted_input, max_tokens)).await
        }
        Script::Delayed(delay, then) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer(*then, n, request_id, counted_input, max_tokens)).await
        }
        Script::Malformed => (StatusCode::OK, [("request-id", request_id), ("content-type", "application/json".into())], "{\"content\": [oops")
            .into_response(),
        Script::DropMidBody => {
            let start = futures::stream::once(async { Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{\"id\": \"msg_fake\", \"content\": [")) });
            // After the status line and the first bytes have gone out.
            let broken = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder().status(200).header("request-id", request_id).body(Body::from_stream(start.chain(broken))).unwrap()
        }
        Script::Stream { .. } => unreachable!("checked by the caller"),
        Script::SlowBody(delay) => {
            let usage = json!({"input_tokens": counted_input, "output_tokens": 30});
            let whole = message(json!([{"type": "text", "text": format!("Slow body {n}.")}]), usage, "end_turn").to_string();
            let (head, tail) = whole.split_at(whole.len() / 2);
            let (head, tail) = (Bytes::from(head.to_string()), Bytes::from(tail.to_string()));
            let first = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(head) });
            let rest = futures::stream::once(async move {
                tokio::time::sleep(delay).await;
                Ok::<Bytes, std::io::Error>(tail)
            });
            Response::builder().status(200).header("request-id", request_id).body(Body::from_stream(first.chain(rest))).unwrap()
        }
    }
}

/// Which endpoint a request came to: they accept different fields.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    Messages,
    /// `count_tokens`: the input of a call, without what only a call takes.
    CountTokens,
}

/// The checks the real API makes that our client could get wrong.
fn validate(headers: &HeaderMap, body: &Value, api: Api) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if header("x-api-key").is_empty() {
        return Err("missing x-api-key".into());
    }
    if header("anthropic-version") != "2023-06-01" {
        return Err(format!("unsupported anthropic-version {:?}", header("anthropic-version")));
    }
    if !header("content-type").starts_with("application/json") {
        return Err("content-type must be application/json".into());
    }
    let object = body.as_object().ok_or("body is not a JSON object")?;
    for sampling in ["temperature", "top_p", "top_k"] {
        if object.contains_key(sampling) {
            return Err(format!("{sampling} is not accepted"));
        }
    }
    if !body["model"].as_str().is_some_and(|m| !m.is_empty()) {
        return Err("model: field required".into());
    }
    if api == Api::CountTokens {
        // Like the real API, count_tokens refuses the fields only a call takes.
        for extra in ["max_tokens", "stream", "metadata", "stop_sequences"] {
            if object.contains_key(extra) {
                return Err(format!("{extra}: Extra inputs are not permitted"));
            }
        }
    } else if !body["max_tokens"].as_u64().is_some_and(|m| m >= 1) {
        return Err("max_tokens: must be a positive integer".into());
    }
    if object.contains_key("stream") && !body["stream"].is_boolean() {
        return Err("stream: must be a boolean".into());
    }
    if object.contains_key("system") && !body["system"].is_string() {
        return Err("system: must be a string".into());
    }
    let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or("messages: at least one message is required")?;
    let mut previous = "";
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(format!("messages.{i}.role: unexpected role {role:?}"));
        }
        if role == previous {
            return Err(format!("messages.{i}: roles must alternate"));
        }
        let content_ok = m["content"].as_str().is_some_and(|c| !c.is_empty()) || m["content"].as_array().is_some_and(|c| !c.is_empty());
        if !content_ok {
            return Err(format!("messages.{i}.content: must not be empty"));
        }
        previous = role;
    }
    if messages[0]["role"] != "user" {
        return Err("messages: the first message must use the user role".into());
    }
    if previous != "user" {
        return Err("This model does not support assistant message prefill.".into());
    }
    if let Some(metadata) = body.get("metadata") {
        let user_id = metadata["user_id"].as_str().ok_or("metadata.user_id must be a string")?;
        if user_id.contains('@') {
            return Err("metadata.user_id must not contain personal information".into());
        }
    }
    if let Some(tools) = body.get("tools") {
        let tools = tools.as_array().ok_or("tools must be a list")?;
        for tool in tools {
            if !tool["name"].is_string() || !tool["input_schema"].is_object() {
                return Err("tools: each tool needs a name and an input_schema".into());
            }
        }
        if let Some(choice) = body.get("tool_choice") {
            // Like the current models: forcing a tool is refused.
            if choice["type"] == "tool" || choice["type"] == "any" {
                return Err("tool_choice: forced tool use is not supported by this model; use auto".into());
            }
        }
    }
    Ok(())
}
