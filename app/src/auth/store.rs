//! Accounts, sessions and sign-in attempts in the database.

use super::UserRole;
use crate::db::Db;
use crate::error::AppError;
use crate::time::now_millis;

/// A stored user. Deliberately neither `Serialize` nor `Debug`: it holds the hash.
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: UserRole,
    pub active: bool,
}

type UserTuple = (i64, String, String, String, i64);

fn user_from_row((id, email, password_hash, role, active): UserTuple) -> Result<UserRow, AppError> {
    let role = UserRole::parse(&role).ok_or_else(|| AppError::internal("unknown role in users table", &role))?;
    Ok(UserRow { id, email, password_hash, role, active: active != 0 })
}

const SELECT_USER: &str = "SELECT id, email, password_hash, role, active FROM users";

pub async fn find_user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, AppError> {
    let row: Option<UserTuple> = sqlx::query_as(&format!("{SELECT_USER} WHERE email = $1")).bind(email).fetch_optional(&db.pool).await?;
    row.map(user_from_row).transpose()
}

pub async fn find_user_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, AppError> {
    let row: Option<UserTuple> = sqlx::query_as(&format!("{SELECT_USER} WHERE id = $1")).bind(id).fetch_optional(&mut db.read().await?).await?;
    row.map(user_from_row).transpose()
}

/// Creates the user, or replaces the hash and role of an existing one (and reactivates
/// it). Returns the user id.
pub async fn upsert_user(db: &Db, email: &str, password_hash: &str, role: UserRole) -> Result<i64, AppError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO users (email, password_hash, role, active, created_at) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, \
         role = excluded.role, active = 1 RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now_millis())
    .fetch_one(&mut *db.writer().await?)
    .await?;
    Ok(id)
}

/// Creates a new account; None when the email is taken (never overwritten, also when
/// two admins add the same email at once).
pub async fn insert_user(db: &Db, email: &str, password_hash: &str, role: UserRole) -> Result<Option<i64>, AppError> {
    let created: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO users (email, password_hash, role, active, created_at) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now_millis())
    .fetch_optional(&mut *db.writer().await?)
    .await?;
    Ok(created.map(|(id,)| id))
}

/// Deletes every session of a user; returns how many there were.
pub async fn delete_sessions(db: &Db, user_id: i64) -> Result<u64, AppError> {
    let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *db.writer().await?).await?;
    Ok(ended.rows_affected())
}

/// Counts one attempt against `key` (an email or an address) in the window that began
/// after `window_start_after`, atomically (`INSERT … ON CONFLICT DO UPDATE`: a row lock
/// on PostgreSQL, the write lock on SQLite). Returns the attempts in the window and
/// when it began.
pub async fn count_attempt(db: &Db, key: &str, now: i64, window_start_after: i64) -> Result<(i64, i64), AppError> {
    let counted: (i64, i64) = sqlx::query_as(
        "INSERT INTO login_throttle (key, window_start, attempts) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
         attempts = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.attempts + 1 END, \
         window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
         RETURNING attempts, window_start",
    )
    .bind(key)
    .bind(now)
    .bind(window_start_after)
    .fetch_one(&mut *db.writer().await?)
    .await?;
    Ok(counted)
}

/// Forgets the attempts counted against `key`.
pub async fn forget_attempts(db: &Db, key: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&mut *db.writer().await?).await?;
    Ok(())
}

/// Gives one attempt back to `key`.
pub async fn refund_attempt(db: &Db, key: &str) -> Result<(), AppError> {
    sqlx::query("UPDATE login_throttle SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0").bind(key).execute(&mut *db.writer().await?).await?;
    Ok(())
}

/// Forgets throttle windows that began before `before`.
pub async fn purge_attempts(db: &Db, before: i64) -> Result<u64, AppError> {
    let purged = sqlx::query("DELETE FROM login_throttle WHERE window_start <= $1").bind(before).execute(&mut *db.writer().await?).await?;
    Ok(purged.rows_affected())
}
