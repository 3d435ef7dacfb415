//! Password hashing, bounded: argon2 takes a core for tens of milliseconds, so at most
//! a configured number of hashes are computed at once, and a request that finds no free
//! checker soon is refused (`throttled`) rather than queued without end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::error::{AppError, ErrorKind};

/// How long a request waits for a free password checker before it is refused.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_millis(1500);

/// Argon2 hashing and checking, bounded: at most `parallel` run at once (each takes a
/// core for tens of milliseconds), so a flood of sign-ins cannot pin every core or
/// grow memory without bound. A request that finds no free checker within
/// `PASSWORD_CHECK_WAIT` is refused with `throttled`.
#[derive(Clone)]
pub struct Passwords {
    gate: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// An argon2 hash of a random secret, verified for unknown emails so a wrong email
    /// and a wrong password take the same time.
    dummy_hash: Arc<str>,
}

impl Passwords {
    /// `parallel` 0 means one checker per CPU core.
    pub async fn new(parallel: usize) -> Result<Passwords, AppError> {
        let parallel = if parallel == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { parallel };
        let mut passwords = Passwords {
            gate: Arc::new(Semaphore::new(parallel)),
            running: Arc::default(),
            peak: Arc::default(),
            dummy_hash: Arc::from(""),
        };
        let secret: [u8; 16] = rand::random();
        passwords.dummy_hash = passwords.hash(format!("{secret:?}")).await?.into();
        Ok(passwords)
    }

    /// Most checks that ran at the same time since start-up.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string())
        })
        .await?
        .map_err(|e| AppError::internal("password hashing failed", e))
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is
    /// no such user (the answer is then always false, in the same time).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move || {
                let parsed = PasswordHash::new(&hash)?;
                Ok::<bool, argon2::password_hash::Error>(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await?
            .map_err(|e| AppError::internal("stored password hash is unreadable", e))?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let permit = tokio::time::timeout(PASSWORD_CHECK_WAIT, self.gate.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|e| AppError::internal("password checker closed", e))?;
        let running = self.running.clone();
        let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_running, Ordering::SeqCst);
        let result = tokio::task::spawn_blocking(move || {
            let out = work();
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await;
        result.map_err(|e| AppError::internal("password task failed", e))
    }
}

fn busy() -> AppError {
    AppError::new(ErrorKind::Throttled, "Too many sign-ins at once. Please try again in a moment.")
}

