//! Usage: the ledger of what every Claude call cost. `ledger` records one usage record
//! per attempt that reached Claude (failures too) for the client, settling each call's
//! reservation with its last attempt; `store` holds every query over the ledger's tables;
//! dashboards, budgets and the deals list read it through them.

pub mod api;
pub mod chart;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod ledger;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
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

/// A running counter of the ledger: a budget scope over a period. Scopes: a deal over
/// its life (`life`); a user per local day (`day:YYYY-MM-DD` in `time.zone`) and per
/// calendar month (`month:YYYY-MM`); the firm (scope id 0) per UTC hour (`hour:N`, hours
/// since the epoch: the same boundaries as local hours in every whole-hour zone), per
/// local day and per month.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub scope: &'static str,
    pub scope_id: i64,
    pub period: String,
}

/// The firm's windows, shortest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Hour,
    Day,
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

impl CounterKey {
    pub fn deal_lifetime(deal_id: i64) -> CounterKey {
        CounterKey { scope: "deal", scope_id: deal_id, period: "life".into() }
    }

    /// A user's usage on a local day (`YYYY-MM-DD`).
    pub fn user_day(user_id: i64, day: &str) -> CounterKey {
        CounterKey { scope: "user", scope_id: user_id, period: format!("day:{day}") }
    }

    /// A user's usage in the calendar month of a local day (`YYYY-MM-DD`).
    pub fn user_month(user_id: i64, day: &str) -> CounterKey {
        CounterKey { scope: "user", scope_id: user_id, period: format!("month:{}", month_of(day)) }
    }

    /// The firm's usage in one window, for a record made at `at` on local day `day`.
    pub fn firm(window: Window, at: i64, day: &str) -> CounterKey {
        let period = match window {
            Window::Hour => format!("hour:{}", at.div_euclid(3_600_000)),
            Window::Day => format!("day:{day}"),
            Window::Month => format!("month:{}", month_of(day)),
        };
        CounterKey { scope: "firm", scope_id: 0, period }
    }

    /// Every counter a record of `user_id` (and `deal_id`) made at `at`, on local day
    /// `day`, adds to.
    pub fn of_record(user_id: i64, deal_id: Option<i64>, at: i64, day: &str) -> Vec<CounterKey> {
        let mut keys = vec![CounterKey::user_day(user_id, day), CounterKey::user_month(user_id, day)];
        keys.extend(deal_id.map(CounterKey::deal_lifetime));
        keys.extend(Window::ALL.map(|w| CounterKey::firm(w, at, day)));
        keys
    }

    /// A key as stored, or None for a scope this version does not know.
    pub fn parse(scope: &str, scope_id: i64, period: &str) -> Option<CounterKey> {
        let scope = match scope {
            "deal" => "deal",
            "user" => "user",
            "firm" => "firm",
            _ => return None,
        };
        Some(CounterKey { scope, scope_id, period: period.to_string() })
    }
}

/// `YYYY-MM` of a `YYYY-MM-DD` day.
pub fn month_of(day: &str) -> &str {
    day.get(..7).unwrap_or(day)
}

/// The ranges `/admin/tokens` offers: today, this or last calendar month (in
/// `time.zone`), the last N days ending today, or a custom range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DashboardRange {
    Today,
    ThisMonth,
    LastMonth,
    Days(i64),
    Custom,
}

impl DashboardRange {
    /// The ranges offered as links, with their labels.
    pub const PRESETS: [(DashboardRange, &'static str); 6] = [
        (DashboardRange::Today, "Today"),
        (DashboardRange::ThisMonth, "This month"),
        (DashboardRange::LastMonth, "Last month"),
        (DashboardRange::Days(7), "7 days"),
        (DashboardRange::Days(30), "30 days"),
        (DashboardRange::Days(90), "90 days"),
    ];

    /// From the `range` query field; empty means this month.
    pub fn parse(text: &str) -> Option<DashboardRange> {
        match text {
            "today" => Some(DashboardRange::Today),
            "" | "month" => Some(DashboardRange::ThisMonth),
            "last-month" => Some(DashboardRange::LastMonth),
            "30" => Some(DashboardRange::Days(30)),
            "7" => Some(DashboardRange::Days(7)),
            "90" => Some(DashboardRange::Days(90)),
            "custom" => Some(DashboardRange::Custom),
            _ => None,
        }
    }

    pub fn as_str(self) -> String {
        match self {
            DashboardRange::Today => "today".into(),
            DashboardRange::ThisMonth => "month".into(),
            DashboardRange::LastMonth => "last-month".into(),
            DashboardRange::Days(n) => n.to_string(),
            DashboardRange::Custom => "custom".into(),
        }
    }

    /// The first and last day of a preset range that ends by `today` (None for custom).
    #[cfg(feature = "ssr")]
    pub fn days(self, today: chrono::NaiveDate) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
        use chrono::Datelike;
        let first_of_month = today.with_day(1)?;
        match self {
            DashboardRange::Today => Some((today, today)),
            DashboardRange::ThisMonth => Some((first_of_month, today)),
            DashboardRange::LastMonth => {
                let last = first_of_month.pred_opt()?;
                Some((last.with_day(1)?, last))
            }
            DashboardRange::Days(n) => Some((today - chrono::Duration::days(n - 1), today)),
            DashboardRange::Custom => None,
        }
    }
}

/// Everything `/admin/tokens` shows for one range: the five groupings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub from: String,
    pub to: String,
    /// The user or deal the page is narrowed to, by name, if any.
    pub focus: Option<String>,
    pub by_user: UsageReport,
    pub by_deal: UsageReport,
    pub by_day: UsageReport,
    pub by_model: UsageReport,
    pub by_operation: UsageReport,
    /// Where this month's spend is heading (the firm's, or the focused user's), when the
    /// range reaches today.
    #[serde(default)]
    pub projection: Option<MonthProjection>,
    /// Calls refused before reaching Claude, by user, deal and why.
    #[serde(default)]
    pub refusals: Vec<RefusalRow>,
}

/// Calls of one user on one deal refused for one reason in the range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusalRow {
    pub user_id: i64,
    pub user: String,
    pub deal_id: Option<i64>,
    pub deal: Option<String>,
    /// The refusal's error kind (`daily_limit_reached`, `cooldown`, …).
    pub kind: String,
    pub count: i64,
    /// `YYYY-MM-DD HH:MM` UTC of the latest.
    pub latest: String,
}

/// Why a call was refused, as the dashboard says it.
pub fn refusal_label(kind: &str) -> &'static str {
    match kind {
        "daily_limit_reached" => "daily limit",
        "deal_budget_exhausted" => "deal budget",
        "monthly_budget_reached" => "monthly budget",
        "firm_cap_reached" => "firm cap",
        "rate_limited" => "rate limit",
        "cooldown" => "cooldown",
        "too_long" => "too large",
        _ => "other",
    }
}

/// This month's spend so far, the recent daily pace, and where it leads by month end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthProjection {
    /// `YYYY-MM`.
    pub month: String,
    pub month_to_date_microusd: i64,
    pub per_day_microusd: i64,
    pub month_end_microusd: i64,
}

/// The dimensions usage is rolled up by, per local day: every record adds to one rollup
/// row of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    User,
    Deal,
    Model,
    Operation,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [Dimension::User, Dimension::Deal, Dimension::Model, Dimension::Operation];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::User => "user",
            Dimension::Deal => "deal",
            Dimension::Model => "model",
            Dimension::Operation => "operation",
        }
    }

    pub fn parse(text: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == text)
    }
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

    /// The first column's header: what each row is.
    pub fn heading(self) -> &'static str {
        match self {
            GroupBy::User => "User",
            GroupBy::Deal => "Deal",
            GroupBy::Day => "Day",
            GroupBy::Model => "Model",
            GroupBy::Operation => "Operation",
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
    /// Calls Claude billed but whose usage could not be read: counted at their
    /// reservation (the most they could have used), never as zero.
    #[serde(default)]
    pub unknown_usage_calls: i64,
    /// What cheaper models chosen by budget-aware model choice saved, in micro-dollars.
    #[serde(default)]
    pub savings_microusd: i64,
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
        self.unknown_usage_calls += other.unknown_usage_calls;
        self.savings_microusd += other.savings_microusd;
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
    /// The report as CSV: a header row, then every field quoted and neutralised
    /// (`csv_cell`), so a name a user chose cannot run as a formula in a spreadsheet.
    pub fn to_csv(&self) -> String {
        let quote = |field: &str| csv_cell(field);
        let mut out = String::from(
            "\"group\",\"key\",\"label\",\"calls\",\"failed_calls\",\"input_tokens\",\"output_tokens\",\
             \"cache_creation_tokens\",\"cache_read_tokens\",\"cost_usd\",\"default_priced_calls\",\"unknown_usage_calls\",\"savings_usd\"\r\n",
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
                s.unknown_usage_calls.to_string(),
                format!("{:.6}", s.savings_microusd as f64 / 1e6),
            ];
            out.push_str(&fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// One CSV cell, quoted. A cell a spreadsheet would read as a formula (starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, which makes it
/// plain text (formula injection, OWASP's CSV injection advice).
pub fn csv_cell(field: &str) -> String {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let escaped = field.replace('"', "\"\"");
    if formula { format!("\"'{escaped}\"") } else { format!("\"{escaped}\"") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn month_ranges_run_from_the_first_to_today_or_over_the_whole_last_month() {
        use super::DashboardRange;
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(DashboardRange::ThisMonth.days(day("2026-11-23")), Some((day("2026-11-01"), day("2026-11-23"))));
        assert_eq!(DashboardRange::LastMonth.days(day("2026-03-01")), Some((day("2026-02-01"), day("2026-02-28"))));
        assert_eq!(DashboardRange::LastMonth.days(day("2027-01-15")), Some((day("2026-12-01"), day("2026-12-31"))));
        assert_eq!(DashboardRange::Today.days(day("2026-11-23")), Some((day("2026-11-23"), day("2026-11-23"))));
        assert_eq!(DashboardRange::Days(7).days(day("2026-11-23")), Some((day("2026-11-17"), day("2026-11-23"))));
        for (range, _) in DashboardRange::PRESETS {
            assert_eq!(DashboardRange::parse(&range.as_str()), Some(range), "{range:?} round-trips");
        }
        assert_eq!(DashboardRange::parse(""), Some(DashboardRange::ThisMonth));
        assert_eq!(DashboardRange::parse("13"), None);
    }

    use super::*;

    #[test]
    fn csv_cells_never_start_a_formula() {
        for hostile in ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2", "@SUM(A1)", "\tcmd", "\rcmd"] {
            let cell = csv_cell(hostile);
            assert!(cell.starts_with("\"'"), "{cell}");
        }
        assert_eq!(csv_cell("Harbor \"Point\""), "\"Harbor \"\"Point\"\"\"");
        assert_eq!(csv_cell("12"), "\"12\"");
    }

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
        assert_eq!(lines[1], "\"deal\",\"7\",\"The \"\"Big\"\" Tower, Phase 2\",\"3\",\"0\",\"0\",\"0\",\"0\",\"0\",\"1.234567\",\"0\",\"0\",\"0.000000\"");
    }
}
