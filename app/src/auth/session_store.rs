//! tower-sessions store on the application database, so several app instances behind
//! one load balancer share sign-ins. Written against `Db` so it runs on both engines.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::service::{SESSION_USER_KEY, SessionUser};
use super::UserRole;
use crate::db::Db;

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        DbSessionStore { db }
    }
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

/// The signed-in user a session belongs to, kept in a column of its own so all of a
/// user's sessions can be ended at once.
fn user_of(record: &Record) -> Option<i64> {
    record.data.get(super::service::USER_ID_KEY).and_then(serde_json::Value::as_i64)
}

/// The session's data as stored: without the user `load` read with it, which holds
/// for the request that loaded it only.
fn stored_data(record: &Record) -> session_store::Result<String> {
    let data: std::collections::HashMap<&String, &serde_json::Value> = record.data.iter().filter(|(key, _)| *key != SESSION_USER_KEY).collect();
    serde_json::to_string(&data).map_err(backend)
}

/// A row of `load`'s statement: the session, then its user's row (absent when the
/// session has no user or the user is gone).
type SessionRow = (String, i64, Option<i64>, Option<String>, Option<String>, Option<i64>);

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; on the off chance of a clash, draw again.
        loop {
            let data = stored_data(record)?;
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(data)
            .bind(record.expiry_date.unix_timestamp() * 1000)
            .bind(user_of(record))
            .execute(&mut *self.db.writer().await.map_err(backend)?)
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates a session that was loaded for this request. Never re-creates one: a
    /// session ended meanwhile (sign-out elsewhere, password reset, deactivation) stays
    /// ended even if this request changed it.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = stored_data(record)?;
        sqlx::query("UPDATE sessions SET data = $1, expires_at = $2, user_id = $3 WHERE id = $4")
            .bind(data)
            .bind(record.expiry_date.unix_timestamp() * 1000)
            .bind(user_of(record))
            .bind(record.id.to_string())
            .execute(&mut *self.db.writer().await.map_err(backend)?)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Loads the session and, in the same statement, its user's row: the request's
    /// `user_from_session` finds the user in the record (`SESSION_USER_KEY`) instead of
    /// reading it again.
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT s.data, s.expires_at, u.id, u.email, u.role, u.active \
             FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.expires_at > $2",
        )
        .bind(id.to_string())
        .bind(crate::time::now_millis())
        .fetch_optional(&mut self.db.read().await.map_err(backend)?)
        .await
        .map_err(backend)?;
        let Some((data, expires_at, user_id, email, role, active)) = row else { return Ok(None) };
        let mut data: std::collections::HashMap<String, serde_json::Value> = serde_json::from_str(&data).map_err(backend)?;
        data.remove(SESSION_USER_KEY);
        if let (Some(id), Some(email), Some(role), Some(active)) = (user_id, email, role.as_deref().and_then(UserRole::parse), active) {
            let user = SessionUser { id, email, role, active: active != 0 };
            data.insert(SESSION_USER_KEY.to_string(), serde_json::to_value(user).map_err(backend)?);
        }
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires_at / 1000)
            .map_err(backend)?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *self.db.writer().await.map_err(backend)?)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(crate::time::now_millis())
            .execute(&mut *self.db.writer().await.map_err(backend)?)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
