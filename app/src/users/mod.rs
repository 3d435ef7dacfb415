//! User administration (admins only). This issue lists the accounts; managing them
//! and their budgets comes with the admin dashboard.

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
}
