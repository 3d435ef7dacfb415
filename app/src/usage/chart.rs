//! The daily chart's geometry, pure: one bar of tokens per day (every day of the range,
//! zero where nothing was used) and a line of cost, scaled into a fixed view box.

use super::UsageRow;

pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 200.0;

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
}

/// Bars for each day from `from` to `to` (inclusive, `YYYY-MM-DD`).
pub fn daily_bars(from: &str, to: &str, rows: &[UsageRow]) -> Vec<Bar> {
    let days = days_between(from, to);
    if days.is_empty() {
        return Vec::new();
    }
    let value = |day: &str| rows.iter().find(|r| r.key == day).map_or((0, 0), |r| (r.sums.total_tokens(), r.sums.cost_microusd));
    let max_tokens = days.iter().map(|d| value(d).0).max().unwrap_or(0).max(1) as f64;
    let max_cost = days.iter().map(|d| value(d).1).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / days.len() as f64;
    days.iter()
        .enumerate()
        .map(|(i, day)| {
            let (tokens, cost) = value(day);
            let height = tokens as f64 / max_tokens * (HEIGHT - 10.0);
            Bar {
                day: day.clone(),
                tokens,
                cost_microusd: cost,
                x: i as f64 * slot + slot * 0.1,
                width: slot * 0.8,
                y: HEIGHT - height,
                height,
                cost_y: HEIGHT - cost as f64 / max_cost * (HEIGHT - 10.0),
            }
        })
        .collect()
}

/// Where a daily cost of `microusd` sits on the cost scale of `bars` (kept inside the box).
pub fn cost_y(bars: &[Bar], microusd: i64) -> f64 {
    let max_cost = bars.iter().map(|b| b.cost_microusd).max().unwrap_or(0).max(1) as f64;
    (HEIGHT - microusd as f64 / max_cost * (HEIGHT - 10.0)).clamp(0.0, HEIGHT)
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
        let bars = daily_bars("2024-02-27", "2024-03-02", &[row("2024-02-29", 100, 10), row("2024-03-02", 50, 40)]);
        let days: Vec<&str> = bars.iter().map(|b| b.day.as_str()).collect();
        assert_eq!(days, ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]);
        assert_eq!(bars[0].height, 0.0);
        assert_eq!(bars[2].height, HEIGHT - 10.0, "the busiest day fills the chart");
        assert_eq!(bars[4].height, (HEIGHT - 10.0) / 2.0);
        assert_eq!(bars[4].cost_y, 10.0, "the costliest day tops the cost line");
        assert!(bars.windows(2).all(|w| w[0].x < w[1].x));
        assert_eq!(daily_bars("2025-12-31", "2026-01-01", &[]).len(), 2);
    }

    #[test]
    fn bad_or_reversed_ranges_draw_nothing() {
        assert!(daily_bars("2026-11-23", "2026-11-01", &[]).is_empty());
        assert!(daily_bars("junk", "2026-11-01", &[]).is_empty());
    }
}
