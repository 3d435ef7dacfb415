//! The audit log: every change an admin or an operator makes to limits, budgets, prices
//! and accounts — who, when, what, and the value before and after. Written in the same
//! transaction as the change it describes, so neither exists without the other.

pub mod api;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

/// One change, as admins read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// The admin's email, or `cli` for an operator's command.
    pub actor: String,
    /// `YYYY-MM-DD HH:MM` UTC.
    pub at: String,
    /// What changed, e.g. `limits.firm_daily_usd` or `user ana@firm.com monthly budget`.
    pub subject: String,
    pub old_value: String,
    pub new_value: String,
}

/// A page of the log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; None on the last page.
    pub next_before: Option<i64>,
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The admin's user id; None for the command line.
    pub id: Option<i64>,
    pub name: String,
}

impl Actor {
    pub fn admin(id: i64, email: &str) -> Actor {
        Actor { id: Some(id), name: email.to_string() }
    }

    pub fn cli() -> Actor {
        Actor { id: None, name: "cli".into() }
    }
}
