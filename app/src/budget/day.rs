//! Calendar days in the configured time zone, for the daily budget.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

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
    let minutes = ((end - now_ms) / 60_000).max(1);
    let wait = if minutes >= 60 { format!("{} h {} min", minutes / 60, minutes % 60) } else { format!("{minutes} min") };
    format!("midnight {}, in {wait}", tz.name())
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
}
