//! The calibration's samples in memory: for each model and operation, the latest calls
//! whose usage is known (the estimate and what Claude counted), read from the ledger
//! at most once every `READ_EVERY` and kept current with the records this instance
//! writes, so that an admission does not read them for every call. Another instance's
//! records join at the next read.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Recent calls of a model and operation the calibration learns from.
pub const SAMPLES: usize = 50;

/// How long samples read from the ledger serve before they are read again.
const READ_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Calibrations {
    kept: Mutex<HashMap<(String, String), Kept>>,
}

#[derive(Debug)]
struct Kept {
    /// `(record id, estimated, actual)`, newest first.
    samples: Vec<(i64, u64, u64)>,
    /// When they were last read from the ledger: None until the first read is back
    /// (records this instance writes meanwhile are collected).
    read_at: Option<Instant>,
}

impl Calibrations {
    /// The latest `(estimated, actual)` input tokens of `model` and `operation`, newest
    /// first: those in memory, or those `read` returns (`(record id, estimated, actual)`,
    /// the latest `SAMPLES`) when they were read `READ_EVERY` ago.
    pub async fn samples<E>(&self, model: &str, operation: &str, read: impl Future<Output = Result<Vec<(i64, u64, u64)>, E>>) -> Result<Vec<(u64, u64)>, E> {
        let key = (model.to_string(), operation.to_string());
        {
            let mut kept = self.lock();
            let entry = kept.entry(key.clone()).or_insert(Kept { samples: Vec::new(), read_at: None });
            if entry.read_at.is_some_and(|at| at.elapsed() < READ_EVERY) {
                return Ok(entry.samples.iter().map(|&(_, e, a)| (e, a)).collect());
            }
        }
        let mut samples = read.await?;
        let mut kept = self.lock();
        // Records this instance wrote while the read was on its way, those newer than
        // any it found (a record the ledger no longer holds is not put back).
        let newest_read = samples.first().map_or(0, |s| s.0);
        if let Some(old) = kept.get(&key) {
            samples.extend(old.samples.iter().filter(|s| s.0 > newest_read).copied());
        }
        newest_first(&mut samples);
        let out = samples.iter().map(|&(_, e, a)| (e, a)).collect();
        kept.insert(key, Kept { samples, read_at: Some(Instant::now()) });
        Ok(out)
    }

    /// Record `id` of `model` and `operation`, just committed, with `estimated` and
    /// `actual` input tokens: the next calibration counts it.
    pub fn add(&self, id: i64, model: &str, operation: &str, estimated: u64, actual: u64) {
        if let Some(kept) = self.lock().get_mut(&(model.to_string(), operation.to_string())) {
            kept.samples.push((id, estimated, actual));
            newest_first(&mut kept.samples);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sorts samples newest first, each record once, and keeps the latest `SAMPLES`.
fn newest_first(samples: &mut Vec<(i64, u64, u64)>) {
    samples.sort_by(|a, b| b.0.cmp(&a.0));
    samples.dedup_by_key(|s| s.0);
    samples.truncate(SAMPLES);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_the_latest_records_once_each() {
        let mut samples: Vec<(i64, u64, u64)> = (1..=60).map(|id| (id, 10, 11)).collect();
        samples.extend([(60, 10, 11), (59, 10, 11)]);
        newest_first(&mut samples);
        assert_eq!(samples.len(), SAMPLES);
        assert_eq!(samples.first().map(|s| s.0), Some(60));
        assert_eq!(samples.last().map(|s| s.0), Some(11));
        assert!(samples.windows(2).all(|w| w[0].0 > w[1].0));
    }

    #[test]
    fn a_record_joins_only_samples_already_read() {
        let calibrations = Calibrations::default();
        calibrations.add(1, "m", "chat", 10, 12);
        assert!(calibrations.lock().is_empty(), "no samples read yet: the next read finds the record");
        let key = ("m".to_string(), "chat".to_string());
        calibrations.lock().insert(key.clone(), Kept { samples: vec![(5, 10, 10)], read_at: Some(Instant::now()) });
        calibrations.add(7, "m", "chat", 10, 12);
        calibrations.add(6, "m", "report", 10, 12);
        assert_eq!(calibrations.lock()[&key].samples, [(7, 10, 12), (5, 10, 10)]);
    }

    #[test]
    fn a_read_keeps_the_records_written_meanwhile_and_drops_those_gone() {
        let calibrations = Calibrations::default();
        let read = |rows: Vec<(i64, u64, u64)>| std::future::ready(Ok::<_, ()>(rows));
        let first = futures::executor::block_on(calibrations.samples("m", "chat", read(vec![(6, 10, 10), (5, 10, 10)])));
        assert_eq!(first, Ok(vec![(10, 10), (10, 10)]));
        // In memory: no read within the second.
        let cached = futures::executor::block_on(calibrations.samples("m", "chat", read(vec![])));
        assert_eq!(cached.map(|s| s.len()), Ok(2));
        calibrations.add(9, "m", "chat", 10, 20);
        let key = ("m".to_string(), "chat".to_string());
        calibrations.lock().get_mut(&key).unwrap().read_at = None;
        // The ledger now holds 8 (another instance's) and 5; 6 is gone; 9 not yet seen.
        let again = futures::executor::block_on(calibrations.samples("m", "chat", read(vec![(8, 10, 15), (5, 10, 10)])));
        assert_eq!(again, Ok(vec![(10, 20), (10, 15), (10, 10)]));
        assert_eq!(calibrations.lock()[&key].samples.iter().map(|s| s.0).collect::<Vec<_>>(), [9, 8, 5]);
    }
}
