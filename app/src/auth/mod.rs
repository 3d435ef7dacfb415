//! Sign-in: who the caller is. Passwords are argon2id hashes checked off the async
//! runtime with bounded parallelism; sessions live in the database and end when the
//! account changes; attempts are throttled per email and per client address.
//! Types and the rules for credentials here; `service` establishes the caller and signs
//! in, `store` holds the SQL, `session_store` keeps tower-sessions' sessions.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod session_store;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work an attacker can make argon2 do per request.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest email address there is (RFC 5321); longer input is refused before any query.
pub const MAX_EMAIL_BYTES: usize = 254;

/// What an account may do: analysts work on deals; admins also manage users, budgets
/// and read the usage dashboard (and have no personal daily budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Analyst,
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Analyst => "analyst",
            UserRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<UserRole> {
        match text {
            "analyst" => Some(UserRole::Analyst),
            "admin" => Some(UserRole::Admin),
            _ => None,
        }
    }
}

/// The signed-in user as the browser may see them: no hash, nothing secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub role: UserRole,
}

impl UserView {
    pub fn is_admin(&self) -> bool {
        self.role == UserRole::Admin
    }
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks an email and password for a new or updated account; returns the email as
/// stored (trimmed, lowercase).
pub fn validate_credentials(email: &str, password: &str) -> Result<String, AppError> {
    let email = normalize_email(email);
    let plausible = email.len() <= MAX_EMAIL_BYTES
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(AppError::invalid(format!("\"{email}\" is not an email address.")));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(format!("Passwords need at least {MIN_PASSWORD_CHARS} characters.")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid("That password is too long."));
    }
    Ok(email)
}

/// Full page load, so every resource is fetched again for the new (or no) user.
pub fn reload_to(path: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = leptos::prelude::window().location().set_href(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
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
