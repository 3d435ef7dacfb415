//! Claude's streamed replies (`"stream": true`): a decoder that turns the event stream's
//! bytes, however they are split, into events, and the reply those events build up —
//! its text as it is written, and what it has been billed so far. Pure, so every way a
//! stream can be cut is tested without a network.

use serde::Deserialize;
use serde_json::Value;

use super::estimate::estimate_text_tokens;
use super::pricing::TokenUsage;
use super::types::StopReason;

/// Longest line (an event's `data:`) the decoder holds; a longer one is a broken stream.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One server-sent event: its `event:` name and its `data:` lines joined by `\n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub name: String,
    pub data: String,
}

/// Splits an event stream into events as its bytes arrive. Lines end with `\n` or
/// `\r\n`; a blank line ends an event; `:` starts a comment; fields other than `event`
/// and `data` are ignored, as the format says.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    event: SseEvent,
    has_data: bool,
}

impl SseDecoder {
    /// The events `bytes` complete. An over-long line or one that is not UTF-8 is an error
    /// (the stream cannot be trusted after it).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut events = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                if self.line.len() >= MAX_LINE_BYTES {
                    return Err(format!("an event line is longer than {MAX_LINE_BYTES} bytes"));
                }
                self.line.push(byte);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).map_err(|_| "an event line is not UTF-8".to_string())?;
            if line.is_empty() {
                if self.has_data || !self.event.name.is_empty() {
                    events.push(std::mem::take(&mut self.event));
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event.name = value.to_string(),
                "data" => {
                    if self.has_data {
                        self.event.data.push('\n');
                    }
                    self.event.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        Ok(events)
    }
}

/// Why a stream ended without its `message_stop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// Claude sent an `error` event after the 200: the call failed mid-way.
    Upstream { error_type: String, message: String },
    /// An event that is not what the API sends.
    Malformed(String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Upstream { error_type, message } => write!(f, "error event {error_type}: {message}"),
            StreamError::Malformed(detail) => write!(f, "malformed event: {detail}"),
        }
    }
}

/// A reply as its events have built it so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamedReply {
    /// From `message_start`: the model, and the input side of the bill.
    pub model: Option<String>,
    started: Option<TokenUsage>,
    /// The cumulative output count of the last `message_delta`.
    pub output_tokens: Option<u64>,
    pub text: String,
    pub stop_reason: Option<StopReason>,
    /// `message_stop` came: the reply is whole.
    pub finished: bool,
}

#[derive(Deserialize)]
struct StartEvent {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: Option<String>,
    usage: StartUsage,
}

#[derive(Deserialize)]
struct StartUsage {
    input_tokens: u64,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

impl StreamedReply {
    /// Applies one event; returns the text it adds, if any. `ping`, block starts and
    /// stops, and event kinds the API may add later change nothing.
    pub fn apply(&mut self, event: &SseEvent) -> Result<Option<String>, StreamError> {
        let data = || serde_json::from_str::<Value>(&event.data).map_err(|e| StreamError::Malformed(format!("{}: {e}", event.name)));
        match event.name.as_str() {
            "message_start" => {
                let start: StartEvent = serde_json::from_str(&event.data).map_err(|e| StreamError::Malformed(format!("message_start: {e}")))?;
                let u = start.message.usage;
                self.model = start.message.model;
                self.started = Some(TokenUsage {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens.unwrap_or(0),
                    cache_creation_input_tokens: u.cache_creation_input_tokens.unwrap_or(0),
                    cache_read_input_tokens: u.cache_read_input_tokens.unwrap_or(0),
                    cache_creation_1h_input_tokens: u.cache_creation.and_then(|c| c.ephemeral_1h_input_tokens).unwrap_or(0),
                });
                Ok(None)
            }
            "content_block_delta" => {
                let data = data()?;
                match data["delta"]["type"].as_str() {
                    Some("text_delta") => {
                        let text = data["delta"]["text"].as_str().ok_or_else(|| StreamError::Malformed("text_delta without text".into()))?;
                        self.text.push_str(text);
                        Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
                    }
                    // Tool input and thinking deltas: chat asks for neither.
                    _ => Ok(None),
                }
            }
            "message_delta" => {
                let data = data()?;
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(StopReason::parse(reason));
                }
                if let Some(output) = data["usage"]["output_tokens"].as_u64() {
                    self.output_tokens = Some(output);
                }
                Ok(None)
            }
            "message_stop" => {
                self.finished = true;
                Ok(None)
            }
            "error" => {
                let data = data().unwrap_or(Value::Null);
                Err(StreamError::Upstream {
                    error_type: data["error"]["type"].as_str().unwrap_or("unknown").chars().take(60).collect(),
                    message: data["error"]["message"].as_str().unwrap_or_default().chars().take(300).collect(),
                })
            }
            _ => Ok(None),
        }
    }

    /// Whether `message_start` came, so the input side of the bill is known.
    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// What the reply has been billed so far: the input from `message_start`, and the
    /// output from the last `message_delta` — or, when none came, counted from the text
    /// received (never less than `message_start`'s own count). None before
    /// `message_start`: then nothing is known.
    pub fn usage(&self) -> Option<TokenUsage> {
        let mut usage = self.started?;
        usage.output_tokens = self.output_tokens.unwrap_or_else(|| estimate_text_tokens(&self.text).max(usage.output_tokens));
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: &str = "event: message_start\n\
        data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-5-5\",\"usage\":{\"input_tokens\":472,\"output_tokens\":1,\"cache_read_input_tokens\":null}}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        event: ping\ndata: {\"type\": \"ping\"}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Cap rate \"}}\n\n\
        : a comment\n\
        event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"is 6.1% — Ünïcode\"}}\r\n\r\n\
        event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    fn replay(chunks: &[&[u8]]) -> (StreamedReply, Vec<String>) {
        let mut decoder = SseDecoder::default();
        let mut reply = StreamedReply::default();
        let mut deltas = Vec::new();
        for chunk in chunks {
            for event in decoder.feed(chunk).unwrap() {
                deltas.extend(reply.apply(&event).unwrap());
            }
        }
        (reply, deltas)
    }

    #[test]
    fn a_whole_stream_builds_the_reply_and_its_bill() {
        let (reply, deltas) = replay(&[WHOLE.as_bytes()]);
        assert_eq!(deltas, ["Cap rate ", "is 6.1% — Ünïcode"]);
        assert_eq!(reply.text, "Cap rate is 6.1% — Ünïcode");
        assert!(reply.finished);
        assert_eq!(reply.stop_reason, Some(StopReason::EndTurn));
        assert_eq!(reply.model.as_deref(), Some("claude-sonnet-5-5"));
        assert_eq!(reply.usage(), Some(TokenUsage { input_tokens: 472, output_tokens: 15, ..Default::default() }));
    }

    #[test]
    fn the_same_events_come_out_however_the_bytes_are_split() {
        let bytes = WHOLE.as_bytes();
        let (whole, _) = replay(&[bytes]);
        for cut in 0..bytes.len() {
            let (split, _) = replay(&[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(split, whole, "cut at byte {cut}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(replay(&single).0, whole, "one byte at a time, multi-byte letters included");
    }

    #[test]
    fn a_stream_cut_short_bills_the_input_and_the_text_received() {
        let cut = WHOLE.find("event: content_block_stop").unwrap();
        let (reply, _) = replay(&[WHOLE[..cut].as_bytes()]);
        assert!(!reply.finished);
        let usage = reply.usage().unwrap();
        assert_eq!(usage.input_tokens, 472);
        assert_eq!(usage.output_tokens, estimate_text_tokens("Cap rate is 6.1% — Ünïcode"));
        assert!(usage.output_tokens > 1, "counted from the text, not message_start's 1");
    }

    #[test]
    fn the_last_message_delta_counts_when_it_came() {
        let mut reply = StreamedReply::default();
        let start = SseEvent { name: "message_start".into(), data: r#"{"message":{"usage":{"input_tokens":10,"output_tokens":1}}}"#.into() };
        reply.apply(&start).unwrap();
        let delta = |n: u64| SseEvent { name: "message_delta".into(), data: format!(r#"{{"delta":{{}},"usage":{{"output_tokens":{n}}}}}"#) };
        reply.apply(&delta(40)).unwrap();
        reply.apply(&delta(120)).unwrap();
        assert_eq!(reply.usage().unwrap().output_tokens, 120);
    }

    #[test]
    fn nothing_is_known_before_message_start() {
        let (reply, _) = replay(&[b"event: ping\ndata: {}\n\n"]);
        assert_eq!(reply.usage(), None);
        assert!(!reply.started());
    }

    #[test]
    fn an_error_event_after_the_200_is_an_upstream_error() {
        let mut reply = StreamedReply::default();
        let error = SseEvent {
            name: "error".into(),
            data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
        };
        assert_eq!(reply.apply(&error), Err(StreamError::Upstream { error_type: "overloaded_error".into(), message: "Overloaded".into() }));
    }

    #[test]
    fn broken_events_are_errors_not_panics() {
        let mut reply = StreamedReply::default();
        for (name, data) in [("message_start", "{"), ("message_start", "{}"), ("content_block_delta", "[1"), ("content_block_delta", r#"{"delta":{"type":"text_delta"}}"#)] {
            assert!(matches!(reply.apply(&SseEvent { name: name.into(), data: data.into() }), Err(StreamError::Malformed(_))), "{name} {data}");
        }
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(&[0xff, b'\n']).is_err(), "not UTF-8");
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(&vec![b'a'; MAX_LINE_BYTES + 1]).is_err(), "over-long line");
    }

    #[test]
    fn multi_line_data_and_unknown_fields() {
        let mut decoder = SseDecoder::default();
        let events = decoder.feed(b"id: 7\nevent: x\ndata: a\ndata:b\nretry: 5\n\n").unwrap();
        assert_eq!(events, [SseEvent { name: "x".into(), data: "a\nb".into() }]);
    }
}
