//! User administration (admins only): accounts, roles, deactivation, password resets and
//! budget overrides. Every function refuses non-admins on the server; every change is
//! audited.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::auth::UserRole;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: i64,
    pub email: String,
    pub role: UserRole,
    pub active: bool,
    /// UTC date the account was created, `YYYY-MM-DD`.
    pub created_on: String,
    /// The admin-set daily budget; None means the default applies.
    pub daily_token_budget: Option<i64>,
    /// The admin-set monthly budget in micro-dollars; None means the default applies.
    pub monthly_budget_microusd: Option<i64>,
    /// Budget-aware model choice for this user; None follows the firm's setting.
    pub model_choice: Option<bool>,
    /// Spent on Claude this calendar month (`time.zone`), micro-dollars.
    #[serde(default)]
    pub spent_this_month_microusd: u64,
    /// The last day (`YYYY-MM-DD` in `time.zone`) the user made a Claude call, if ever.
    #[serde(default)]
    pub last_used_on: Option<String>,
}

/// What an account gets when no budget of its own is set, for the admin page to say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserDefaults {
    pub daily_tokens: u64,
    pub monthly_microusd: u64,
}
