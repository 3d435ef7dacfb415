//! The sliding history window: which stored chat messages are sent with a
//! new one. Pure: the stored thread in, the API messages out.

use super::estimate::estimate_with_system_tokens;
use super::Speaker;

/// A stored chat message, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub role: Speaker,
    pub content: String,
}

/// What one call sends: alternating turns, user first and last.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryWindow {
    pub messages: Vec<Turn>,
    /// Stored messages left out of the call (older ones, still in the database).
    pub dropped: usize,
    pub estimated_input_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("the thread has no user message to answer")]
    NoUserMessage,
    #[error("the message alone is about {estimated} tokens, over the {limit}-token limit")]
    TooLong { estimated: u64, limit: u64 },
}

/// Chooses the newest messages that fit `max_messages` and `max_input_tokens`
/// (system prompt included), starting on a user turn. `thread` must end with the new
/// user message. Consecutive same-role turns (e.g. a message whose reply failed) are
/// merged so roles alternate.
pub fn build_window(
    system_tokens: u64,
    thread: &[Turn],
    max_messages: usize,
    max_input_tokens: u64,
) -> Result<HistoryWindow, WindowError> {
    let last_user = thread.iter().rposition(|t| t.role == Speaker::User).ok_or(WindowError::NoUserMessage)?;
    // Anything after the last user turn cannot be sent (the API rejects a trailing
    // assistant turn); it is counted as dropped.
    let sendable = &thread[..=last_user];
    let mut start = sendable.len().saturating_sub(max_messages.max(1));
    loop {
        while sendable[start].role != Speaker::User {
            start += 1;
        }
        let messages = merge_same_role(&sendable[start..]);
        let estimated = estimate_with_system_tokens(system_tokens, messages.iter().map(|t| t.content.as_str()));
        if estimated <= max_input_tokens {
            let dropped = start + (thread.len() - sendable.len());
            return Ok(HistoryWindow { messages, dropped, estimated_input_tokens: estimated });
        }
        if start == last_user {
            return Err(WindowError::TooLong { estimated, limit: max_input_tokens });
        }
        start += 1;
    }
}

fn merge_same_role(turns: &[Turn]) -> Vec<Turn> {
    let mut merged: Vec<Turn> = Vec::with_capacity(turns.len());
    for turn in turns {
        match merged.last_mut() {
            Some(last) if last.role == turn.role => {
                last.content.push_str("\n\n");
                last.content.push_str(&turn.content);
            }
            _ => merged.push(turn.clone()),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: u64 = 1;

    fn turn(role: Speaker, content: &str) -> Turn {
        Turn { role, content: content.to_string() }
    }

    fn conversation(n: usize) -> Vec<Turn> {
        (0..n)
            .map(|i| turn(if i % 2 == 0 { Speaker::User } else { Speaker::Assistant }, &format!("message {i}")))
            .collect()
    }

    fn assert_alternates_user_first_and_last(window: &HistoryWindow) {
        assert_eq!(window.messages.first().unwrap().role, Speaker::User);
        assert_eq!(window.messages.last().unwrap().role, Speaker::User);
        for pair in window.messages.windows(2) {
            assert_ne!(pair[0].role, pair[1].role);
        }
    }

    #[test]
    fn sends_everything_when_it_fits() {
        let thread = conversation(5);
        let window = build_window(SYS, &thread, 20, 150_000).unwrap();
        assert_eq!(window.messages, thread);
        assert_eq!(window.dropped, 0);
        assert_alternates_user_first_and_last(&window);
    }

    #[test]
    fn keeps_at_most_max_messages_starting_with_a_user_turn() {
        let thread = conversation(31); // 15 exchanges + the new message
        let window = build_window(SYS, &thread, 20, 150_000).unwrap();
        assert!(window.messages.len() <= 20);
        assert_eq!(window.messages.len(), 19);
        assert_eq!(window.dropped, 12);
        assert_eq!(window.messages.last().unwrap().content, "message 30");
        assert_alternates_user_first_and_last(&window);
    }

    #[test]
    fn shrinks_oldest_first_to_fit_the_token_limit() {
        let mut thread = conversation(9);
        thread[0].content = "x".repeat(4_000); // far the longest message
        let limit = estimate_with_system_tokens(SYS, thread.iter().map(|t| t.content.as_str())) - 1;
        let window = build_window(SYS, &thread, 20, limit).unwrap();
        assert_eq!(window.dropped, 2);
        assert!(window.estimated_input_tokens <= limit);
        assert_alternates_user_first_and_last(&window);
    }

    #[test]
    fn refuses_a_single_message_over_the_limit() {
        let thread = vec![turn(Speaker::User, &"word ".repeat(1_000))];
        let err = build_window(SYS, &thread, 20, 500).unwrap_err();
        assert!(matches!(err, WindowError::TooLong { limit: 500, .. }));
    }

    #[test]
    fn merges_unanswered_user_messages() {
        let thread = vec![
            turn(Speaker::User, "first"),
            turn(Speaker::Assistant, "reply"),
            turn(Speaker::User, "unanswered"),
            turn(Speaker::User, "again"),
        ];
        let window = build_window(SYS, &thread, 20, 150_000).unwrap();
        assert_eq!(window.messages.len(), 3);
        assert_eq!(window.messages[2].content, "unanswered\n\nagain");
        assert_alternates_user_first_and_last(&window);
    }

    #[test]
    fn a_leading_assistant_turn_is_never_sent() {
        let thread = vec![turn(Speaker::Assistant, "hello"), turn(Speaker::User, "hi")];
        let window = build_window(SYS, &thread, 20, 150_000).unwrap();
        assert_eq!(window.messages, vec![turn(Speaker::User, "hi")]);
        assert_eq!(window.dropped, 1);
    }

    #[test]
    fn a_window_of_one_sends_only_the_new_message() {
        let thread = conversation(7);
        let window = build_window(SYS, &thread, 1, 150_000).unwrap();
        assert_eq!(window.messages.len(), 1);
        assert_eq!(window.dropped, 6);
    }
}
