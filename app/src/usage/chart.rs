//! The daily chart's geometry, pure: one bar of tokens per day (every day of the range,
//! zero where nothing was used) on a left axis and a line of cost on a right axis, both
//! on round scales, with dates under the bars, in a fixed view box.

use super::UsageRow;

pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 240.0;
/// The plot area inside the view box: room for the token axis on the left, the dollar
/// axis on the right and the dates below.
pub const LEFT: f64 = 56.0;
pub const RIGHT: f64 = WIDTH - 64.0;
pub const TOP: f64 = 14.0;
pub const BOTTOM: f64 = HEIGHT - 26.0;
/// A bar is never wider than this (one day's range draws one slim bar, not a wall).
const MAX_BAR_WIDTH: f64 = 44.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub day: String,
    pub tokens: i64,
    pub cost_microusd: i64,
    pub x: f64,
    pub width: f64,
    pub y: f64,
    pub height: f64,
    /// Where the cost line passes over this day.
    pub cost_y: f64,
    /// The day's label under the axis (`MM-DD`), on every few days so labels never
    /// overlap; None between.
    pub label: Option<String>,
}

/// The chart of a range: its bars and both axes' scales.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub bars: Vec<Bar>,
    /// The token axis' top (a round number at or above the busiest day).
    pub max_tokens: i64,
    /// The dollar axis' top, in micro-dollars (round, at or above the costliest day).
    pub max_cost: i64,
}

impl Chart {
    /// Where `tokens` sit on the left axis.
    pub fn tokens_y(&self, tokens: i64) -> f64 {
        y_of(tokens, self.max_tokens)
    }

    /// Where a daily cost of `microusd` sits on the right axis (kept inside the plot).
    pub fn cost_y(&self, microusd: i64) -> f64 {
        y_of(microusd, self.max_cost)
    }
}

fn y_of(value: i64, max: i64) -> f64 {
    (BOTTOM - value.max(0) as f64 / max.max(1) as f64 * (BOTTOM - TOP)).clamp(TOP, BOTTOM)
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `value` (at least 1): an axis top that reads.
pub fn nice_ceiling(value: i64) -> i64 {
    let value = value.max(1);
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if let Some(top) = step.checked_mul(m) {
                if top >= value {
                    return top;
                }
            }
        }
        match step.checked_mul(10) {
            Some(next) => step = next,
            None => return i64::MAX,
        }
    }
}

/// `1,500` → `1.5k`, `2,000,000` → `2M`: axis labels.
pub fn compact(n: i64) -> String {
    let n = n.max(0) as f64;
    let (value, unit) = match n {
        n if n >= 1e9 => (n / 1e9, "B"),
        n if n >= 1e6 => (n / 1e6, "M"),
        n if n >= 1e3 => (n / 1e3, "k"),
        n => (n, ""),
    };
    let text = format!("{value:.1}");
    format!("{}{unit}", text.trim_end_matches(".0"))
}

/// Bars for each day from `from` to `to` (inclusive, `YYYY-MM-DD`), on round scales.
pub fn daily_chart(from: &str, to: &str, rows: &[UsageRow]) -> Chart {
    let days = days_between(from, to);
    let value = |day: &str| rows.iter().find(|r| r.key == day).map_or((0, 0), |r| (r.sums.total_tokens(), r.sums.cost_microusd));
    let max_tokens = nice_ceiling(days.iter().map(|d| value(d).0).max().unwrap_or(0));
    let max_cost = nice_ceiling(days.iter().map(|d| value(d).1).max().unwrap_or(0));
    let slot = (RIGHT - LEFT) / days.len().max(1) as f64;
    let width = (slot * 0.8).min(MAX_BAR_WIDTH);
    let every = days.len().div_ceil(8).max(1);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let (tokens, cost) = value(day);
            let y = y_of(tokens, max_tokens);
            // The last day too, when it is at least two slots from the label before it.
            let labelled = i % every == 0 || (i + 1 == days.len() && i % every >= 2 && i % every > every / 2);
            Bar {
                day: day.clone(),
                tokens,
                cost_microusd: cost,
                x: LEFT + i as f64 * slot + (slot - width) / 2.0,
                width,
                y,
                height: BOTTOM - y,
                cost_y: y_of(cost, max_cost),
                label: labelled.then(|| day.get(5..).unwrap_or(day).to_string()),
            }
        })
        .collect();
    Chart { bars, max_tokens, max_cost }
}

/// Every `YYYY-MM-DD` from `from` to `to`, at most 3,660 of them.
fn days_between(from: &str, to: &str) -> Vec<String> {
    let parse = |s: &str| -> Option<(i32, u32, u32)> {
        let mut parts = s.split('-');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    let (Some(mut day), Some(end)) = (parse(from), parse(to)) else { return Vec::new() };
    let mut out = Vec::new();
    while day <= end && out.len() < 3_660 {
        out.push(format!("{:04}-{:02}-{:02}", day.0, day.1, day.2));
        day = next_day(day);
    }
    out
}

fn next_day((y, m, d): (i32, u32, u32)) -> (i32, u32, u32) {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if d < days_in_month[(m - 1) as usize] {
        (y, m, d + 1)
    } else if m < 12 {
        (y, m + 1, 1)
    } else {
        (y + 1, 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::UsageSums;

    fn row(day: &str, input: i64, cost: i64) -> UsageRow {
        UsageRow { key: day.into(), label: day.into(), sums: UsageSums { input_tokens: input, cost_microusd: cost, ..Default::default() } }
    }

    #[test]
    fn one_bar_per_day_including_empty_days_and_month_ends() {
        let chart = daily_chart("2024-02-27", "2024-03-02", &[row("2024-02-29", 100, 10), row("2024-03-02", 50, 40)]);
        let bars = &chart.bars;
        let days: Vec<&str> = bars.iter().map(|b| b.day.as_str()).collect();
        assert_eq!(days, ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]);
        assert_eq!((chart.max_tokens, chart.max_cost), (100, 50), "round axis tops");
        assert_eq!(bars[0].height, 0.0);
        assert_eq!(bars[2].height, BOTTOM - TOP, "the busiest day fills the plot");
        assert_eq!(bars[4].height, (BOTTOM - TOP) / 2.0);
        assert_eq!(bars[4].cost_y, BOTTOM - 40.0 / 50.0 * (BOTTOM - TOP), "40 of a 50 scale");
        assert!(bars.windows(2).all(|w| w[0].x + w[0].width < w[1].x), "bars never overlap");
        assert!(bars.iter().all(|b| b.x >= LEFT && b.x + b.width <= RIGHT), "inside the plot");
        assert_eq!(daily_chart("2025-12-31", "2026-01-01", &[]).bars.len(), 2);
    }

    #[test]
    fn a_single_day_draws_one_slim_bar_and_long_ranges_label_every_few_days() {
        let one = daily_chart("2026-11-23", "2026-11-23", &[row("2026-11-23", 5_000, 1_000)]);
        assert_eq!(one.bars.len(), 1);
        assert!(one.bars[0].width <= 44.0, "not a wall: {}", one.bars[0].width);
        assert_eq!(one.bars[0].label.as_deref(), Some("11-23"));
        let ninety = daily_chart("2026-08-26", "2026-11-23", &[]);
        let labels = ninety.bars.iter().filter(|b| b.label.is_some()).count();
        assert!((8..=10).contains(&labels), "{labels} labels for 90 days");
        assert_eq!(ninety.bars[0].label.as_deref(), Some("08-26"));
        // Labels never sit in neighbouring slots, whatever the length.
        for n in 1..=120 {
            let chart = daily_chart("2026-01-01", &format!("2026-{}", day_after_jan_1(n - 1)), &[]);
            let at: Vec<usize> = chart.bars.iter().enumerate().filter(|(_, b)| b.label.is_some()).map(|(i, _)| i).collect();
            assert!(at.windows(2).all(|w| w[1] - w[0] >= 2) || n <= 8, "{n} days: labels at {at:?}");
        }
    }

    /// `MM-DD` of the day `n` days after 1 January 2026.
    fn day_after_jan_1(n: i64) -> String {
        (chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n)).format("%m-%d").to_string()
    }

    #[test]
    fn axis_tops_and_labels_read() {
        assert_eq!([0, 1, 7, 10, 11, 240, 999, 1_001, 35_454].map(nice_ceiling), [1, 1, 10, 10, 20, 500, 1_000, 2_000, 50_000]);
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
        assert_eq!([0, 950, 1_000, 1_500, 250_000, 2_000_000, 3_500_000_000].map(compact), ["0", "950", "1k", "1.5k", "250k", "2M", "3.5B"]);
    }

    #[test]
    fn bad_or_reversed_ranges_draw_nothing() {
        assert!(daily_chart("2026-11-23", "2026-11-01", &[]).bars.is_empty());
        assert!(daily_chart("junk", "2026-11-01", &[]).bars.is_empty());
    }
}
