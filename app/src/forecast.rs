//! Burn rates and projections: how fast a budget is being used (the average of the last
//! days, in the budget's unit) and where that pace leads — the total at the end of the
//! budget's period, and the day the budget would run out. Pure; the server computes them
//! from the running counters, the browser shows them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// Average use per day over the burn window, in the budget's unit.
    pub per_day: u64,
    /// Projected use when the period ends (None for a lifetime budget).
    pub at_period_end: Option<u64>,
    /// The day (`YYYY-MM-DD` in `time.zone`) the budget runs out at this pace — if that
    /// is before its period ends (any day for a lifetime budget); today if it has.
    pub runs_out_on: Option<String>,
}

impl Forecast {
    /// Whether the pace overruns the budget before its period ends.
    pub fn overruns(&self, limit: u64) -> bool {
        self.at_period_end.is_some_and(|total| total > limit)
    }

    /// "at this pace it runs out on 2026-12-14", "at $1.20 a day: about $31.00 by the end
    /// of the month" (`period`: "the month", "the day").
    pub fn describe(&self, amount: impl Fn(u64) -> String, period: &str) -> String {
        match (&self.runs_out_on, self.at_period_end) {
            (Some(day), _) => format!("at this pace it runs out on {day}"),
            _ if self.per_day == 0 => "no use in the last days".to_string(),
            (None, Some(total)) => format!("at {} a day: about {} by the end of {period}", amount(self.per_day), amount(total)),
            (None, None) => format!("at {} a day", amount(self.per_day)),
        }
    }
}

#[cfg(feature = "ssr")]
pub use compute::forecast;
#[cfg(feature = "ssr")]
pub use past::{PastDays, PastKey};

#[cfg(feature = "ssr")]
mod compute {
    use crate::forecast::Forecast;
    use crate::time::local_day;

    const DAY_MS: f64 = 86_400_000.0;

    /// The forecast of a budget with `used` of `limit` used by `now`, from the use of
    /// each of the last `window_days` days before today (`history`; missing days count
    /// as nothing used). `period_end` is when the budget's period ends (epoch ms; None
    /// for a lifetime budget).
    pub fn forecast(used: u64, limit: u64, history: &[u64], window_days: u32, now: i64, period_end: Option<i64>, zone: chrono_tz::Tz) -> Forecast {
        let days = f64::from(window_days.max(1));
        let per_day_exact = history.iter().map(|v| *v as f64).sum::<f64>() / days;
        let per_day = per_day_exact.round() as u64;
        let at_period_end = period_end.map(|end| used + (per_day_exact * ((end - now).max(0) as f64 / DAY_MS)).round() as u64);
        let runs_out_at = if used >= limit {
            Some(now)
        } else if per_day_exact > 0.0 {
            Some(now.saturating_add(((limit - used) as f64 / per_day_exact * DAY_MS).ceil() as i64))
        } else {
            None
        };
        let runs_out_on = runs_out_at.filter(|at| period_end.is_none_or(|end| *at < end)).map(|at| local_day(at, zone));
        Forecast { per_day, at_period_end, runs_out_on }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn utc(s: &str) -> i64 {
            chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
        }

        #[test]
        fn a_steady_thousand_tokens_a_day_runs_out_on_the_right_day() {
            // 10,000 of 50,000 used at noon on 23 November: 40,000 left at 1,000 a day.
            let now = utc("2026-11-23T12:00:00Z");
            let f = forecast(10_000, 50_000, &[1_000; 7], 7, now, None, chrono_tz::UTC);
            assert_eq!(f, Forecast { per_day: 1_000, at_period_end: None, runs_out_on: Some("2027-01-02".into()) });
            // Within a month: 20,000 of 30,000 used; 8 days (from noon) to the month's end.
            let month_end = utc("2026-12-01T00:00:00Z");
            let f = forecast(20_000, 30_000, &[1_000; 7], 7, now, Some(month_end), chrono_tz::UTC);
            assert_eq!(f.at_period_end, Some(27_500));
            assert_eq!(f.runs_out_on, None, "7,500 more by the end: it does not run out");
            assert!(!f.overruns(30_000));
            // 25,000 used: runs out 5 days on, before the month ends.
            let f = forecast(25_000, 30_000, &[1_000; 7], 7, now, Some(month_end), chrono_tz::UTC);
            assert_eq!(f.runs_out_on.as_deref(), Some("2026-11-28"));
            assert!(f.overruns(30_000));
        }

        #[test]
        fn quiet_days_count_and_spent_budgets_ran_out_today() {
            let now = utc("2026-11-23T12:00:00Z");
            // 7,000 over a 7-day window, 3 quiet days: still 1,000 a day.
            assert_eq!(forecast(0, 10, &[3_000, 4_000], 7, now, None, chrono_tz::UTC).per_day, 1_000);
            let quiet = forecast(5, 10, &[], 7, now, None, chrono_tz::UTC);
            assert_eq!((quiet.per_day, quiet.runs_out_on), (0, None));
            assert_eq!(forecast(10, 10, &[], 7, now, None, chrono_tz::UTC).runs_out_on.as_deref(), Some("2026-11-23"));
            // The day follows the zone: 02:00 UTC on the 24th is the 23rd in New York.
            let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
            let f = forecast(9_000, 10_000, &[24_000; 7], 7, utc("2026-11-23T23:00:00Z"), None, ny);
            assert_eq!(f.runs_out_on.as_deref(), Some("2026-11-23"));
        }
    }
}

#[cfg(feature = "ssr")]
mod past {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// How long a scope's past days are kept before they are read again. A day's counters
    /// stop changing once it has ended (a record counts on the day it is priced), but a
    /// record priced just before midnight may be committed just after; usage seeded into
    /// past days by hand is the other case. This bounds how long either goes unseen.
    pub const KEPT_FOR: Duration = Duration::from_secs(300);

    /// Scopes kept at most: past that, those older than `KEPT_FOR` go, then all.
    const MOST_KEPT: usize = 4_096;

    /// Which past days of whose counters: a scope ("user", "firm"), its id, and the first
    /// and last day of the burn window (which ends yesterday, so a new day is a new key).
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub struct PastKey {
        pub scope: &'static str,
        pub id: i64,
        pub first: String,
        pub last: String,
    }

    /// The burn window's daily (tokens, micro-dollars) of each scope, kept between reads:
    /// the budget check after every call and every pre-flight project the month from
    /// them, and they change at most once a day — read once per scope and `KEPT_FOR`
    /// instead of once per call. Each instance keeps its own.
    #[derive(Debug, Default)]
    pub struct PastDays {
        kept: Mutex<HashMap<PastKey, (Instant, Vec<(u64, u64)>)>>,
        /// Times the kept days served, and times days were read and kept.
        found: AtomicU64,
        read: AtomicU64,
    }

    impl PastDays {
        /// The days under `key` as kept at most `KEPT_FOR` before `now`.
        pub fn get(&self, key: &PastKey, now: Instant) -> Option<Vec<(u64, u64)>> {
            let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let found = kept.get(key).filter(|(at, _)| now.saturating_duration_since(*at) < KEPT_FOR).map(|(_, days)| days.clone());
            if found.is_some() {
                self.found.fetch_add(1, Ordering::Relaxed);
            }
            found
        }

        /// Keeps `days`, read at `now`, under `key`.
        pub fn keep(&self, key: PastKey, days: Vec<(u64, u64)>, now: Instant) {
            self.read.fetch_add(1, Ordering::Relaxed);
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= MOST_KEPT && !kept.contains_key(&key) {
                kept.retain(|_, (at, _)| now.saturating_duration_since(*at) < KEPT_FOR);
                if kept.len() >= MOST_KEPT {
                    kept.clear();
                }
            }
            kept.insert(key, (now, days));
        }

        /// (times the kept days served, times days were read and kept) so far.
        pub fn lookups(&self) -> (u64, u64) {
            (self.found.load(Ordering::Relaxed), self.read.load(Ordering::Relaxed))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn key(id: i64, last: &str) -> PastKey {
            PastKey { scope: "user", id, first: "2026-11-30".into(), last: last.into() }
        }

        #[test]
        fn days_are_kept_for_a_while_per_scope_and_window() {
            let (days, t0) = (PastDays::default(), Instant::now());
            assert_eq!(days.get(&key(1, "2026-12-06"), t0), None);
            days.keep(key(1, "2026-12-06"), vec![(10, 20), (30, 40)], t0);
            assert_eq!(days.get(&key(1, "2026-12-06"), t0 + Duration::from_secs(299)), Some(vec![(10, 20), (30, 40)]));
            assert_eq!(days.get(&key(2, "2026-12-06"), t0), None, "another user's are their own");
            assert_eq!(days.get(&key(1, "2026-12-07"), t0), None, "a new day is a new window");
            assert_eq!(days.get(&key(1, "2026-12-06"), t0 + KEPT_FOR), None, "read again once kept KEPT_FOR");
            assert_eq!(days.lookups(), (1, 1));
        }

        #[test]
        fn at_most_so_many_scopes_are_kept() {
            let (days, t0) = (PastDays::default(), Instant::now());
            for id in 0..MOST_KEPT as i64 {
                days.keep(key(id, "2026-12-06"), vec![(1, 1)], t0);
            }
            days.keep(key(0, "2026-12-06"), vec![(2, 2)], t0 + KEPT_FOR);
            assert_eq!(days.kept.lock().unwrap().len(), MOST_KEPT, "a kept scope is replaced in place");
            // A new one, once all are stale: the stale ones go.
            days.keep(key(-1, "2026-12-06"), vec![(3, 3)], t0 + KEPT_FOR);
            assert_eq!(days.kept.lock().unwrap().len(), 2);
            assert_eq!(days.get(&key(-1, "2026-12-06"), t0 + KEPT_FOR), Some(vec![(3, 3)]));
            // Full of fresh ones: all go.
            for id in 0..MOST_KEPT as i64 {
                days.keep(key(id, "2026-12-07"), vec![(1, 1)], t0 + KEPT_FOR);
            }
            assert_eq!(days.kept.lock().unwrap().len(), 2, "all went once full of fresh ones; the last two since");
        }
    }
}
