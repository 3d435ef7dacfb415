//! Time as DealDesk stores and shows it: UTC epoch milliseconds, and calendar days in
//! the configured `time.zone` (daily budgets, dashboards, aggregates).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Milliseconds since the Unix epoch, the one time format stored.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// `YYYY-MM-DD` (UTC) of an epoch-millisecond time.
pub fn utc_date(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM` (UTC) of an epoch-millisecond time.
pub fn utc_minute(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// `YYYY-MM-DD` of an epoch-millisecond time in `zone`.
pub fn local_day(millis: i64, zone: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default().with_timezone(&zone).format("%Y-%m-%d").to_string()
}

/// Start and end (epoch ms, end exclusive) of the day containing `now_ms` in `tz`.
pub fn day_bounds(now_ms: i64, tz: Tz) -> (i64, i64) {
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    let today = now.with_timezone(&tz).date_naive();
    let start = local_midnight(today, tz);
    let end = local_midnight(today + Duration::days(1), tz);
    (start, end)
}

/// The first instant of `date` in `tz` (midnight, or the first valid time after a DST
/// gap at midnight).
fn local_midnight(date: NaiveDate, tz: Tz) -> i64 {
    let mut time = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        match tz.from_local_datetime(&time) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.timestamp_millis(),
            LocalResult::None => time += Duration::minutes(30),
        }
    }
    Utc.from_utc_datetime(&time).timestamp_millis()
}

/// "midnight Europe/Berlin, in 3 h 12 min".
pub fn resets_in(now_ms: i64, tz: Tz) -> String {
    let (_, end) = day_bounds(now_ms, tz);
    format!("midnight {}, in {}", tz.name(), wait(end - now_ms))
}

/// Start and end (epoch ms, end exclusive) of the calendar month containing `now_ms` in `tz`.
pub fn month_bounds(now_ms: i64, tz: Tz) -> (i64, i64) {
    let today = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default().with_timezone(&tz).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    (local_midnight(first, tz), local_midnight(next, tz))
}

/// End (epoch ms, exclusive) of the UTC hour containing `now_ms`.
pub fn hour_end(now_ms: i64) -> i64 {
    (now_ms.div_euclid(3_600_000) + 1) * 3_600_000
}

/// The first instant of a local date (`YYYY-MM-DD`) in `tz`, or None if it is not a date.
pub fn local_date_start(date: &str, tz: Tz) -> Option<i64> {
    NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok().map(|d| local_midnight(d, tz))
}

/// "2026-12-01 00:00 Europe/Berlin, in 7 d 3 h": when a window that ends at `end_ms` resets.
pub fn resets_at(end_ms: i64, now_ms: i64, tz: Tz) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(end_ms).unwrap_or_default().with_timezone(&tz);
    format!("{} {}, in {}", at.format("%Y-%m-%d %H:%M"), tz.name(), wait(end_ms - now_ms))
}

/// The `n` local days before the one containing `now_ms`, oldest first.
pub fn days_before(now_ms: i64, zone: Tz, n: u32) -> Vec<String> {
    let today = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default().with_timezone(&zone).date_naive();
    (1..=i64::from(n)).rev().map(|k| (today - Duration::days(k)).format("%Y-%m-%d").to_string()).collect()
}

/// A wait as people say it: "45 s", "12 min", "3 h 12 min", "7 d 3 h".
pub fn wait(ms: i64) -> String {
    let seconds = (ms.max(0) + 999) / 1000;
    let minutes = (seconds + 59) / 60;
    match seconds {
        0..60 => format!("{} s", seconds.max(1)),
        60..3_600 => format!("{minutes} min"),
        3_600..86_400 => format!("{} h {} min", seconds / 3_600, (seconds % 3_600) / 60),
        _ => format!("{} d {} h", seconds / 86_400, (seconds % 86_400) / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn the_day_follows_the_configured_zone() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 03:30 UTC on the 24th is still the 23rd in New York (UTC-5 in November).
        let (start, end) = day_bounds(utc_ms("2026-11-24T03:30:00Z"), tz);
        assert_eq!(start, utc_ms("2026-11-23T05:00:00Z"));
        assert_eq!(end, utc_ms("2026-11-24T05:00:00Z"));
        // One minute past local midnight starts the next day.
        let (next, _) = day_bounds(utc_ms("2026-11-24T05:01:00Z"), tz);
        assert_eq!(next, end);
    }

    #[test]
    fn days_are_23_or_25_hours_across_daylight_saving_changes() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let (start, end) = day_bounds(utc_ms("2026-03-29T12:00:00Z"), tz);
        assert_eq!(end - start, 23 * 3_600_000);
        let (start, end) = day_bounds(utc_ms("2026-10-25T12:00:00Z"), tz);
        assert_eq!(end - start, 25 * 3_600_000);
    }

    #[test]
    fn utc_days_are_utc() {
        let (start, end) = day_bounds(utc_ms("2026-11-23T23:59:59Z"), chrono_tz::UTC);
        assert_eq!(start, utc_ms("2026-11-23T00:00:00Z"));
        assert_eq!(end, utc_ms("2026-11-24T00:00:00Z"));
        assert_eq!(resets_in(utc_ms("2026-11-23T20:48:00Z"), chrono_tz::UTC), "midnight UTC, in 3 h 12 min");
    }

    #[test]
    fn months_hours_and_waits() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let (start, end) = month_bounds(utc_ms("2026-12-01T03:00:00Z"), tz);
        assert_eq!((start, end), (utc_ms("2026-11-01T04:00:00Z"), utc_ms("2026-12-01T05:00:00Z")));
        let (_, end) = month_bounds(utc_ms("2026-12-15T12:00:00Z"), chrono_tz::UTC);
        assert_eq!(end, utc_ms("2027-01-01T00:00:00Z"));
        assert_eq!(hour_end(utc_ms("2026-11-23T14:59:59Z")), utc_ms("2026-11-23T15:00:00Z"));
        assert_eq!(local_date_start("2026-11-24", tz), Some(utc_ms("2026-11-24T05:00:00Z")));
        assert_eq!(local_date_start("24/11/2026", tz), None);
        assert_eq!(resets_at(utc_ms("2026-12-01T00:00:00Z"), utc_ms("2026-11-23T21:00:00Z"), chrono_tz::UTC), "2026-12-01 00:00 UTC, in 7 d 3 h");
        assert_eq!(days_before(utc_ms("2026-03-01T10:00:00Z"), chrono_tz::UTC, 3), ["2026-02-26", "2026-02-27", "2026-02-28"]);
        assert_eq!(wait(500), "1 s");
        assert_eq!(wait(61_000), "2 min");
    }
}
