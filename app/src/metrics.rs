//! Prometheus metrics of this instance: Claude calls by operation, outcome and model,
//! their tokens and cost, admission refusals by kind, the latency of Claude and of
//! DealDesk's own admission, and the firm caps' remaining budget (set when scraped).
//! Served in the Prometheus text format on `metrics.listen_addr`, apart from the app.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// Seconds, from 5 ms to about 82 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Seconds, from 0.1 ms to about 1.6 s: DealDesk's own work per call.
fn overhead_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<Labels, Counter>,
    tokens: Family<Labels, Counter>,
    cost: Family<Labels, Counter<f64, AtomicU64>>,
    refusals: Family<Labels, Counter>,
    upstream_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    admission_seconds: Histogram,
    firm_remaining: Family<Labels, Gauge<f64, AtomicU64>>,
    firm_limit: Family<Labels, Gauge<f64, AtomicU64>>,
    shed: Counter,
    busy: Gauge,
    sqlite_commits: Gauge,
    sqlite_committed_writes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dealdesk");
        let calls = Family::<Labels, Counter>::default();
        registry.register("claude_calls", "Claude call attempts recorded, by operation, outcome and model", calls.clone());
        let tokens = Family::<Labels, Counter>::default();
        registry.register("claude_tokens", "Tokens of recorded Claude attempts, by operation, model and kind", tokens.clone());
        let cost = Family::<Labels, Counter<f64, AtomicU64>>::default();
        registry.register("claude_cost_usd", "Cost of recorded Claude attempts in US dollars, by operation and model", cost.clone());
        let refusals = Family::<Labels, Counter>::default();
        registry.register("admission_refusals", "Calls refused before reaching Claude, by kind", refusals.clone());
        let upstream_seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("claude_upstream_seconds", "Latency of Claude attempts, by operation", upstream_seconds.clone());
        let admission_seconds = overhead_histogram();
        registry.register("admission_seconds", "Time DealDesk spends admitting a call (limits, reservation)", admission_seconds.clone());
        let firm_remaining = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register("firm_cap_remaining", "What is left of each firm-wide cap now (tokens or USD)", firm_remaining.clone());
        let firm_limit = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register("firm_cap_limit", "Each firm-wide cap as enforced (tokens or USD)", firm_limit.clone());
        let shed = Counter::default();
        registry.register("requests_shed", "Requests refused at once (503 overloaded) because the server was busy with as many as it works on at once", shed.clone());
        let busy = Gauge::default();
        registry.register("busy_requests", "Requests being worked on now (calls waiting on Claude excluded)", busy.clone());
        let sqlite_commits = Gauge::default();
        registry.register("sqlite_commits", "On SQLite, commits of batches of write transactions since the server started", sqlite_commits.clone());
        let sqlite_committed_writes = Gauge::default();
        registry.register("sqlite_committed_writes", "On SQLite, write transactions committed in those batches (many per commit when writers queue)", sqlite_committed_writes.clone());
        Metrics { registry, calls, tokens, cost, refusals, upstream_seconds, admission_seconds, firm_remaining, firm_limit, shed, busy, sqlite_commits, sqlite_committed_writes }
    }

    /// One recorded attempt.
    #[allow(clippy::too_many_arguments)]
    pub fn attempt(&self, operation: &str, outcome: &str, model: &str, tokens: [(&'static str, u64); 4], cost_microusd: i64, latency_ms: u64) {
        let base = |extra: Option<(&'static str, String)>| {
            let mut labels: Labels = vec![("operation", operation.to_string()), ("model", model.to_string())];
            labels.extend(extra);
            labels
        };
        self.calls.get_or_create(&base(Some(("outcome", outcome.to_string())))).inc();
        for (kind, n) in tokens {
            if n > 0 {
                self.tokens.get_or_create(&base(Some(("kind", kind.to_string())))).inc_by(n);
            }
        }
        self.cost.get_or_create(&base(None)).inc_by(cost_microusd.max(0) as f64 / 1e6);
        self.upstream_seconds.get_or_create(&vec![("operation", operation.to_string())]).observe(latency_ms as f64 / 1000.0);
    }

    /// A call refused before reaching Claude.
    pub fn refused(&self, kind: &str) {
        self.refusals.get_or_create(&vec![("kind", kind.to_string())]).inc();
    }

    pub fn admission(&self, seconds: f64) {
        self.admission_seconds.observe(seconds);
    }

    /// A request refused because the server was busy.
    pub fn shed(&self) {
        self.shed.inc();
    }

    /// Requests being worked on now (set when scraped).
    pub fn busy(&self, requests: usize) {
        self.busy.set(requests as i64);
    }

    /// On SQLite, the batches of writes committed since start and the write
    /// transactions they held (set when scraped).
    pub fn sqlite_batches(&self, commits: u64, writes: u64) {
        self.sqlite_commits.set(i64::try_from(commits).unwrap_or(i64::MAX));
        self.sqlite_committed_writes.set(i64::try_from(writes).unwrap_or(i64::MAX));
    }

    /// A firm cap's window ("hour", "day", "month"), unit ("tokens", "usd"), what is left and the cap.
    pub fn firm_cap(&self, window: &str, unit: &str, remaining: f64, limit: f64) {
        let labels = vec![("window", window.to_string()), ("unit", unit.to_string())];
        self.firm_remaining.get_or_create(&labels).set(remaining);
        self.firm_limit.get_or_create(&labels).set(limit);
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) = encode(&mut out, &self.registry) {
            tracing::error!(%err, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_refusals_and_caps_are_exposed() {
        let m = Metrics::new();
        m.attempt("chat", "ok", "claude-sonnet-5-5", [("input", 100), ("output", 20), ("cache_write", 0), ("cache_read", 0)], 400, 1_200);
        m.refused("rate_limited");
        m.firm_cap("day", "usd", 12.5, 500.0);
        m.shed();
        m.busy(3);
        m.sqlite_batches(4, 30);
        let text = m.encode();
        assert!(text.contains("dealdesk_sqlite_commits 4"), "{text}");
        assert!(text.contains("dealdesk_sqlite_committed_writes 30"), "{text}");
        assert!(text.contains("dealdesk_requests_shed_total 1"), "{text}");
        assert!(text.contains("dealdesk_busy_requests 3"), "{text}");
        assert!(text.contains("dealdesk_claude_calls_total{operation=\"chat\",model=\"claude-sonnet-5-5\",outcome=\"ok\"} 1"), "{text}");
        assert!(text.contains("dealdesk_claude_tokens_total{operation=\"chat\",model=\"claude-sonnet-5-5\",kind=\"input\"} 100"), "{text}");
        assert!(text.contains("dealdesk_admission_refusals_total{kind=\"rate_limited\"} 1"), "{text}");
        assert!(text.contains("dealdesk_firm_cap_remaining{window=\"day\",unit=\"usd\"} 12.5"), "{text}");
        assert!(text.contains("dealdesk_claude_upstream_seconds_bucket{"), "{text}");
    }
}
