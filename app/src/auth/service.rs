//! Who is calling, and signing in: the caller context every server function starts
//! from, the session's user (renewed by activity, ended by account changes), account
//! creation with hashed passwords, and the sign-in throttle.

use tower_sessions::Session;

use super::store::{self, UserRow};
use super::{MAX_EMAIL_BYTES, MAX_PASSWORD_BYTES, UserRole, UserView, normalize_email, validate_credentials};
use crate::db::Db;
use crate::error::{AppError, ErrorKind};
use crate::passwords::Passwords;
use crate::settings::AuthSettings;
use crate::state::AppState;
use crate::time::now_millis;

pub const USER_ID_KEY: &str = "user_id";
/// When the session last showed activity (epoch ms); refreshing it renews the session.
pub const SEEN_AT_KEY: &str = "seen_at";
/// Where a loaded session holds its user's row, read with it (`DbSessionStore::load`);
/// never stored.
pub const SESSION_USER_KEY: &str = "_user";
/// Activity renews a session (and its cookie) at most this often.
const SESSION_REFRESH_MS: i64 = 60_000;

/// A session's user as the session's own read found it: no password hash.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionUser {
    pub id: i64,
    pub email: String,
    pub role: UserRole,
    pub active: bool,
}

impl From<UserRow> for SessionUser {
    fn from(user: UserRow) -> SessionUser {
        SessionUser { id: user.id, email: user.email, role: user.role, active: user.active }
    }
}

/// The client a request comes from (its IP address, or the configured proxy header's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub String);

/// The caller of a server function, established before anything else happens.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user_id: i64,
    pub email: String,
    pub role: UserRole,
}

impl Ctx {
    pub fn is_admin(&self) -> bool {
        self.role == UserRole::Admin
    }

    pub fn view(&self) -> UserView {
        UserView { id: self.user_id, email: self.email.clone(), role: self.role }
    }
}

pub async fn current_session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| AppError::internal("session layer missing", e))
}

/// The signed-in, active caller, or `unauthorized`.
pub async fn require_user() -> Result<Ctx, AppError> {
    let state = crate::state::app_state()?;
    let session = current_session().await?;
    user_from_session(&state.db, &session).await
}

/// The signed-in caller if they are an admin; `forbidden` for everyone else.
pub async fn require_admin() -> Result<Ctx, AppError> {
    let ctx = require_user().await?;
    if ctx.is_admin() { Ok(ctx) } else { Err(AppError::forbidden()) }
}

/// The active user a session belongs to, or `unauthorized` (for plain axum handlers too).
/// Activity renews the session, so it ends only after `session.idle_hours` without any.
pub async fn user_from_session(db: &Db, session: &Session) -> Result<Ctx, AppError> {
    let Some(user_id) = session.get::<i64>(USER_ID_KEY).await? else {
        return Err(AppError::unauthorized());
    };
    let user = match session.get::<SessionUser>(SESSION_USER_KEY).await? {
        Some(user) if user.id == user_id => Some(user),
        // Not read with the session (it signed in during this request): read it now.
        _ => store::find_user_by_id(db, user_id).await?.map(SessionUser::from),
    };
    match user {
        Some(user) if user.active => {
            let now = now_millis();
            let seen_at = session.get::<i64>(SEEN_AT_KEY).await?.unwrap_or(0);
            if now - seen_at > SESSION_REFRESH_MS {
                // A change marks the session for saving: its expiry moves to now +
                // idle_hours and the cookie is sent again with it.
                session.insert(SEEN_AT_KEY, now).await?;
            }
            Ok(Ctx { user_id: user.id, email: user.email, role: user.role })
        }
        _ => {
            // Deactivated or deleted since sign-in: end the session.
            session.flush().await?;
            Err(AppError::unauthorized())
        }
    }
}

/// Ends every session of a user at once (password reset, deactivation, role change).
pub async fn end_sessions(db: &Db, user_id: i64) -> Result<u64, AppError> {
    let ended = store::delete_sessions(db, user_id).await?;
    tracing::info!(user_id, ended, "sessions ended");
    Ok(ended)
}

/// Creates the user, or updates the password and role of an existing one (and
/// reactivates it): `server user add` and demo data. New credentials end the sessions
/// opened with the old ones. Returns the user id.
pub async fn upsert_user(db: &Db, passwords: &Passwords, email: &str, password: &str, role: UserRole) -> Result<i64, AppError> {
    let email = validate_credentials(email, password)?;
    let hash = passwords.hash(password.to_string()).await?;
    let id = store::upsert_user(db, &email, &hash, role).await?;
    end_sessions(db, id).await?;
    Ok(id)
}

/// Creates a new account; an existing email is refused, never overwritten.
pub async fn create_user(db: &Db, passwords: &Passwords, email: &str, password: &str, role: UserRole) -> Result<i64, AppError> {
    let email = validate_credentials(email, password)?;
    let hash = passwords.hash(password.to_string()).await?;
    store::insert_user(db, &email, &hash, role).await?.ok_or_else(|| AppError::invalid("An account with that email already exists."))
}

/// Signs in: refuses oversized input before any query, counts the attempt against the
/// email and the client address before the password is checked, checks it (against a
/// dummy hash for unknown emails, so both take the same time), and on success starts a
/// fresh session.
pub async fn sign_in(state: &AppState, session: &Session, email: &str, password: String, address: &ClientAddress) -> Result<UserView, AppError> {
    if email.trim().len() > MAX_EMAIL_BYTES {
        return Err(AppError::new(ErrorKind::TooLong, "That email address is too long."));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::new(ErrorKind::TooLong, "That password is too long."));
    }
    let email = normalize_email(email);
    if email.is_empty() || password.is_empty() {
        return Err(AppError::invalid("Enter your email and password."));
    }
    let attempt = LoginAttempt::reserve(&state.db, &state.settings.auth, &email, address).await?;
    let user = store::find_user_by_email(&state.db, &email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password_ok = match state.passwords.verify(password, hash).await {
        Ok(ok) => ok,
        Err(busy) if busy.kind == ErrorKind::Throttled => {
            attempt.not_checked(&state.db).await?;
            return Err(busy);
        }
        Err(err) => return Err(err),
    };
    let user: UserRow = match user {
        Some(user) if password_ok && user.active => user,
        Some(_) if password_ok => {
            return Err(AppError::new(ErrorKind::Unauthorized, "This account has been deactivated. Ask an administrator to restore it."));
        }
        _ => return Err(AppError::new(ErrorKind::Unauthorized, "Email or password is incorrect.")),
    };
    attempt.succeeded(&state.db).await?;
    // A fresh session id at privilege change defeats session fixation.
    session.cycle_id().await?;
    session.insert(USER_ID_KEY, user.id).await?;
    session.insert(SEEN_AT_KEY, now_millis()).await?;
    tracing::info!(user_id = user.id, "signed in");
    Ok(UserView { id: user.id, email: user.email, role: user.role })
}

/// One sign-in attempt, counted against its email and its client address before the
/// password is checked, so parallel guesses cannot all get a verdict.
pub struct LoginAttempt {
    email_key: String,
    address_key: String,
}

impl LoginAttempt {
    /// Counts the attempt and refuses it with `throttled` when the email or the address
    /// has used up its attempts for the window.
    pub async fn reserve(db: &Db, settings: &AuthSettings, email: &str, address: &ClientAddress) -> Result<LoginAttempt, AppError> {
        let attempt = LoginAttempt { email_key: format!("email:{email}"), address_key: format!("address:{}", address.0) };
        let window_ms = i64::from(settings.lockout_minutes) * 60_000;
        let now = now_millis();
        let mut refused_until = None;
        for (key, limit) in [(&attempt.email_key, settings.max_failed_logins), (&attempt.address_key, settings.max_failed_logins_per_address)] {
            let (attempts, window_start) = store::count_attempt(db, key, now, now - window_ms).await?;
            if attempts > i64::from(limit) {
                refused_until = refused_until.max(Some(window_start + window_ms));
            }
        }
        match refused_until {
            None => Ok(attempt),
            Some(until) => {
                let minutes = ((until - now) / 60_000 + 1).max(1);
                Err(AppError::new(ErrorKind::Throttled, format!("Too many failed sign-in attempts. Please wait {minutes} minutes and try again.")))
            }
        }
    }

    /// A successful sign-in: the email's count starts afresh and the address gets its
    /// attempt back (only failures count against an address shared by many people).
    pub async fn succeeded(self, db: &Db) -> Result<(), AppError> {
        store::forget_attempts(db, &self.email_key).await?;
        store::refund_attempt(db, &self.address_key).await
    }

    /// No verdict was given (the server was too busy to check): the attempt is returned.
    pub async fn not_checked(self, db: &Db) -> Result<(), AppError> {
        store::refund_attempt(db, &self.email_key).await?;
        store::refund_attempt(db, &self.address_key).await
    }
}

/// Forgets throttle windows that have ended.
pub async fn purge_login_throttle(db: &Db, lockout_minutes: u32) -> Result<u64, AppError> {
    store::purge_attempts(db, now_millis() - i64::from(lockout_minutes) * 60_000).await
}
