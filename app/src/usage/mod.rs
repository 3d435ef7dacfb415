//! Usage: what every Claude call cost. The tracker writes one record per attempt that
//! reached Claude (failures too); dashboards and budgets read them.

pub mod api;
pub mod chart;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod report;
#[cfg(feature = "ssr")]
pub mod seed;
#[cfg(feature = "ssr")]
pub mod tracker;
pub mod view;

use serde::{Deserialize, Serialize};

/// The usage of one reply, as the browser shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyUsage {
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cost_microusd: i64,
}

/// How usage is grouped in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    User,
    Deal,
    Day,
    Model,
    Operation,
}

impl GroupBy {
    pub fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "user" => Some(GroupBy::User),
            "deal" => Some(GroupBy::Deal),
            "day" => Some(GroupBy::Day),
            "model" => Some(GroupBy::Model),
            "operation" => Some(GroupBy::Operation),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::User => "user",
            GroupBy::Deal => "deal",
            GroupBy::Day => "day",
            GroupBy::Model => "model",
            GroupBy::Operation => "operation",
        }
    }
}

/// Usage summed over a group (or over everything, for the totals).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageSums {
    pub calls: i64,
    pub failed_calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub cost_microusd: i64,
    /// Calls priced with the default rates because their model has no configured price.
    pub default_priced_calls: i64,
}

impl UsageSums {
    pub fn add(&mut self, other: &UsageSums) {
        self.calls += other.calls;
        self.failed_calls += other.failed_calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_tokens += other.cache_creation_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cost_microusd += other.cost_microusd;
        self.default_priced_calls += other.default_priced_calls;
    }

    pub fn total_tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The group: a user or deal id, a day, a model id or an operation.
    pub key: String,
    /// What a person reads: the user's email, the deal's name, or the key itself.
    pub label: String,
    #[serde(flatten)]
    pub sums: UsageSums,
}

/// Usage between two local days (inclusive), grouped one way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub group_by: GroupBy,
    pub from: String,
    pub to: String,
    pub rows: Vec<UsageRow>,
    pub totals: UsageSums,
}

impl UsageReport {
    /// The report as CSV: a header row, then every field quoted.
    pub fn to_csv(&self) -> String {
        let quote = |field: &str| format!("\"{}\"", field.replace('"', "\"\""));
        let mut out = String::from(
            "\"group\",\"key\",\"label\",\"calls\",\"failed_calls\",\"input_tokens\",\"output_tokens\",\
             \"cache_creation_tokens\",\"cache_read_tokens\",\"cost_usd\",\"default_priced_calls\"\r\n",
        );
        for row in &self.rows {
            let s = &row.sums;
            let fields = [
                self.group_by.as_str().to_string(),
                row.key.clone(),
                row.label.clone(),
                s.calls.to_string(),
                s.failed_calls.to_string(),
                s.input_tokens.to_string(),
                s.output_tokens.to_string(),
                s.cache_creation_tokens.to_string(),
                s.cache_read_tokens.to_string(),
                format!("{:.6}", s.cost_microusd as f64 / 1e6),
                s.default_priced_calls.to_string(),
            ];
            out.push_str(&fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_every_field_and_escapes_quotes() {
        let report = UsageReport {
            group_by: GroupBy::Deal,
            from: "2026-11-01".into(),
            to: "2026-11-23".into(),
            rows: vec![UsageRow {
                key: "7".into(),
                label: "The \"Big\" Tower, Phase 2".into(),
                sums: UsageSums { calls: 3, cost_microusd: 1_234_567, ..Default::default() },
            }],
            totals: UsageSums::default(),
        };
        let csv = report.to_csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].starts_with("\"group\",\"key\",\"label\""));
        assert_eq!(lines[1], "\"deal\",\"7\",\"The \"\"Big\"\" Tower, Phase 2\",\"3\",\"0\",\"0\",\"0\",\"0\",\"0\",\"1.234567\",\"0\"");
    }
}
