//! When to try a failed call again, and how long to wait first: exponential
//! backoff with jitter, or the server's `retry-after` up to a cap. 429 is never retried.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max_backoff: Duration,
    pub retry_after_cap: Duration,
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0 for the first retry). `jitter` in [0, 1]
    /// takes up to 25% off the exponential delay, so clients that failed together do
    /// not retry together.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry_after_cap);
        }
        let exponential = self.base.saturating_mul(2u32.saturating_pow(retry.min(16))).min(self.max_backoff);
        exponential.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
    }
}

/// HTTP statuses worth another attempt: server errors, including 529 overloaded.
pub fn is_retryable_status(status: u16) -> bool {
    status >= 500
}

/// `retry-after` as seconds (integer or decimal); HTTP dates are ignored.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(30),
        }
    }

    #[test]
    fn backs_off_exponentially_up_to_the_maximum() {
        let p = policy();
        assert_eq!(p.delay(0, None, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(1, None, 0.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, None, 0.0), Duration::from_secs(4));
        assert_eq!(p.delay(10, None, 0.0), Duration::from_secs(8));
    }

    #[test]
    fn jitter_takes_off_at_most_a_quarter() {
        let p = policy();
        assert_eq!(p.delay(1, None, 1.0), Duration::from_millis(750));
        assert_eq!(p.delay(1, None, 7.0), Duration::from_millis(750));
    }

    #[test]
    fn honours_retry_after_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.delay(0, Some(Duration::from_secs(3)), 0.5), Duration::from_secs(3));
        assert_eq!(p.delay(0, Some(Duration::from_secs(600)), 0.5), Duration::from_secs(30));
    }

    #[test]
    fn only_server_errors_are_retryable() {
        for status in [500, 502, 503, 504, 529] {
            assert!(is_retryable_status(status));
        }
        for status in [400, 401, 403, 404, 413, 429] {
            assert!(!is_retryable_status(status));
        }
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
