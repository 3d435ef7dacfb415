//! User administration (admins only): accounts, roles, deactivation, password resets and
//! daily budget overrides. Every function refuses non-admins on the server.

pub mod api;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::auth::Role;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub active: bool,
    /// UTC date the account was created, `YYYY-MM-DD`.
    pub created_on: String,
    /// The admin-set daily budget; None means the default applies.
    pub daily_token_budget: Option<i64>,
}
