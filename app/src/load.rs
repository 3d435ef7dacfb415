//! Load shedding: at most `server.max_busy_requests` requests are worked on at once by
//! this instance; one more is refused at once (503 `overloaded`, `Retry-After`) instead
//! of waiting in a queue that grows without bound, with its memory and everyone's
//! latency, when more calls arrive than the server can serve.
//!
//! A request counts as busy from when its body has arrived until its answer starts, and
//! in any task it hands its work to (`spawn`), until that work waits on Claude: a call
//! waiting for Claude's reply uses neither CPU nor the database, and may last a minute,
//! so it gives its place back (`waiting_on_claude`) and never holds up other requests.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static PLACE: Place;
}

/// The places of requests being worked on.
#[derive(Debug)]
pub struct BusyLimit {
    places: Arc<Semaphore>,
    limit: usize,
    /// Refusals not yet logged, and the second of the last log line (one a second at
    /// most, however many requests are refused).
    unlogged: AtomicU64,
    logged_at: AtomicU64,
}

/// A request's place among the busy ones, shared by the tasks doing its work; given back
/// when the last of them ends, or when the work waits on Claude.
#[derive(Clone, Debug)]
pub struct Place(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl BusyLimit {
    pub fn new(limit: usize) -> BusyLimit {
        BusyLimit { places: Arc::new(Semaphore::new(limit)), limit, unlogged: AtomicU64::new(0), logged_at: AtomicU64::new(0) }
    }

    /// Counts a refusal at `now_seconds`; the refusals to log now (the first in a new
    /// second, with those since the last log line), or None.
    pub fn refused(&self, now_seconds: u64) -> Option<u64> {
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let last = self.logged_at.load(Ordering::Relaxed);
        if now_seconds <= last || self.logged_at.compare_exchange(last, now_seconds, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return None;
        }
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }

    /// A place for one more request, or None when all are taken.
    pub fn try_enter(&self) -> Option<Place> {
        let permit = self.places.clone().try_acquire_owned().ok()?;
        Some(Place(Arc::new(Mutex::new(Some(permit)))))
    }

    /// Requests being worked on now.
    pub fn busy(&self) -> usize {
        self.limit - self.places.available_permits()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Place {
    fn give_back(&self) {
        // A poisoned lock only means another task panicked while giving the place back.
        let permit = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        drop(permit);
    }
}

/// Runs a request's work in its place: the tasks it spawns (`spawn`) share the place.
pub async fn within<F: Future>(place: Place, work: F) -> F::Output {
    PLACE.scope(place, work).await
}

/// `tokio::spawn`, keeping the current request's place while the task works.
pub fn spawn<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match PLACE.try_with(Place::clone) {
        Ok(place) => tokio::spawn(PLACE.scope(place, work)),
        Err(_) => tokio::spawn(work),
    }
}

/// The current request now waits on Claude: it gives its place back for the rest of its
/// life (saving the reply afterwards is bounded by the calls Claude answers).
pub fn waiting_on_claude() {
    let _ = PLACE.try_with(Place::give_back);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_are_limited_and_given_back() {
        let limit = BusyLimit::new(2);
        let first = limit.try_enter().expect("a place");
        let second = limit.try_enter().expect("a second place");
        assert_eq!(limit.busy(), 2);
        assert!(limit.try_enter().is_none(), "a third request is refused while two are busy");
        drop(first);
        assert_eq!(limit.busy(), 1);
        let third = limit.try_enter().expect("a place freed by the first");
        drop((second, third));
        assert_eq!(limit.busy(), 0);
    }

    #[test]
    fn refusals_are_logged_once_a_second_with_their_count() {
        let limit = BusyLimit::new(1);
        assert_eq!(limit.refused(100), Some(1));
        assert_eq!(limit.refused(100), None);
        assert_eq!(limit.refused(100), None);
        assert_eq!(limit.refused(101), Some(3), "the two unlogged ones of the last second and this one");
        assert_eq!(limit.refused(101), None);
        assert_eq!(limit.refused(99), None, "a clock that steps back logs nothing");
    }

    #[tokio::test]
    async fn spawned_work_keeps_the_place_until_it_ends() {
        let limit = BusyLimit::new(1);
        let place = limit.try_enter().unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let task = within(place, async move {
            spawn(async move {
                let _ = released.await;
            })
        })
        .await;
        // The request's own future has ended; its spawned work still holds the place.
        assert_eq!(limit.busy(), 1);
        assert!(limit.try_enter().is_none());
        release.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(limit.busy(), 0);
    }

    #[tokio::test]
    async fn waiting_on_claude_gives_the_place_back() {
        let limit = BusyLimit::new(1);
        let place = limit.try_enter().unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (waiting, is_waiting) = tokio::sync::oneshot::channel::<()>();
        let work = tokio::spawn(within(place, async move {
            spawn(async move {
                waiting_on_claude();
                let _ = waiting.send(());
                let _ = released.await;
            })
            .await
            .unwrap();
        }));
        is_waiting.await.unwrap();
        assert_eq!(limit.busy(), 0, "a call waiting on Claude holds no place");
        let other = limit.try_enter().expect("another request gets the place");
        drop(other);
        release.send(()).unwrap();
        work.await.unwrap();
        // Outside any request, giving back is a no-op.
        waiting_on_claude();
        assert_eq!(limit.busy(), 0);
    }
}
