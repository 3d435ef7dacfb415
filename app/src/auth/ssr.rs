//! Server-only sign-in machinery: the caller context, password hashing, the user store
//! and the failed-login throttle.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tower_sessions::Session;

use super::{Role, UserView};
use crate::db::{Db, now_millis};
use crate::error::AppError;

pub const USER_ID_KEY: &str = "user_id";
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work an attacker can make argon2 do per request.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The caller of a server function, established before anything else happens.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
}

impl Ctx {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn view(&self) -> UserView {
        UserView { id: self.user_id, email: self.email.clone(), role: self.role }
    }
}

/// A stored user. Deliberately neither `Serialize` nor `Debug`: it holds the hash.
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub active: bool,
}

impl UserRow {
    pub fn view(&self) -> UserView {
        UserView { id: self.id, email: self.email.clone(), role: self.role }
    }
}

type UserTuple = (i64, String, String, String, i64);

fn user_from_row((id, email, password_hash, role, active): UserTuple) -> Result<UserRow, AppError> {
    let role = Role::parse(&role)
        .ok_or_else(|| AppError::internal("unknown role in users table", &role))?;
    Ok(UserRow { id, email, password_hash, role, active: active != 0 })
}

pub async fn current_session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| AppError::internal("session layer missing", e))
}

/// The signed-in, active caller, or `unauthorized`.
pub async fn require_user() -> Result<Ctx, AppError> {
    let state = crate::state::app_state()?;
    let session = current_session().await?;
    user_from_session(&state.db, &session).await
}

/// The active user a session belongs to, or `unauthorized` (for plain axum handlers too).
pub async fn user_from_session(db: &Db, session: &Session) -> Result<Ctx, AppError> {
    let Some(user_id) = session.get::<i64>(USER_ID_KEY).await? else {
        return Err(AppError::unauthorized());
    };
    match find_user_by_id(db, user_id).await? {
        Some(user) if user.active => Ok(Ctx { user_id: user.id, email: user.email, role: user.role }),
        _ => {
            // Deactivated or deleted since sign-in: end the session.
            session.flush().await?;
            Err(AppError::unauthorized())
        }
    }
}

/// The signed-in caller if they are an admin; `forbidden` for everyone else.
pub async fn require_admin() -> Result<Ctx, AppError> {
    let ctx = require_user().await?;
    if ctx.is_admin() { Ok(ctx) } else { Err(AppError::forbidden()) }
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub async fn find_user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, AppError> {
    let row: Option<UserTuple> = sqlx::query_as(
        "SELECT id, email, password_hash, role, active FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(&db.pool)
    .await?;
    row.map(user_from_row).transpose()
}

pub async fn find_user_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, AppError> {
    let row: Option<UserTuple> = sqlx::query_as(
        "SELECT id, email, password_hash, role, active FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(user_from_row).transpose()
}

/// Checks an email and password for a new or updated account.
pub fn validate_credentials(email: &str, password: &str) -> Result<String, AppError> {
    let email = normalize_email(email);
    let plausible = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(AppError::invalid(format!("\"{email}\" is not an email address.")));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(format!(
            "Passwords need at least {MIN_PASSWORD_CHARS} characters."
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid("That password is too long."));
    }
    Ok(email)
}

/// Creates the user, or updates the password and role of an existing one (and
/// reactivates it). Returns the user id.
pub async fn upsert_user(db: &Db, email: &str, password: &str, role: Role) -> Result<i64, AppError> {
    let email = validate_credentials(email, password)?;
    let hash = hash_password(password.to_string()).await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO users (email, password_hash, role, active, created_at) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, \
         role = excluded.role, active = 1 RETURNING id",
    )
    .bind(&email)
    .bind(hash)
    .bind(role.as_str())
    .bind(now_millis())
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|e| AppError::internal("password hashing task failed", e))?
    .map_err(|e| AppError::internal("password hashing failed", e))
}

pub async fn verify_password(password: String, hash: String) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)?;
        Ok::<bool, argon2::password_hash::Error>(
            Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        )
    })
    .await
    .map_err(|e| AppError::internal("password check task failed", e))?
    .map_err(|e| AppError::internal("stored password hash is unreadable", e))
}

pub async fn recent_failures(db: &Db, email: &str, window_minutes: u32) -> Result<i64, AppError> {
    let since = now_millis() - i64::from(window_minutes) * 60_000;
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM login_failures WHERE email = $1 AND failed_at > $2",
    )
    .bind(email)
    .bind(since)
    .fetch_one(&db.pool)
    .await?;
    Ok(count)
}

pub async fn record_failure(db: &Db, email: &str) -> Result<(), AppError> {
    sqlx::query("INSERT INTO login_failures (email, failed_at) VALUES ($1, $2)")
        .bind(email)
        .bind(now_millis())
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn clear_failures(db: &Db, email: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email)
        .execute(&db.pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked() {
        assert_eq!(validate_credentials(" Ana@Firm.COM ", "longenough").unwrap(), "ana@firm.com");
        assert!(validate_credentials("not-an-email", "longenough").is_err());
        assert!(validate_credentials("a@b", "longenough").is_err());
        assert!(validate_credentials("a b@firm.com", "longenough").is_err());
        assert!(validate_credentials("ana@firm.com", "short").is_err());
        assert!(validate_credentials("ana@firm.com", &"x".repeat(2000)).is_err());
    }
}
