//! Investment memos: Claude drafts one from the deal's facts and its stored comps
//! (operation `report`); every version is kept with its author, model, tokens and cost,
//! and shown as Markdown rendered to HTML with anything dangerous removed.

pub mod api;
#[cfg(feature = "ssr")]
pub mod render;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

pub const SECTIONS: [&str; 6] = ["Summary", "Property", "Market and comps", "Valuation view", "Risks", "Recommendation"];

/// One memo version as the browser sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportVersion {
    pub id: i64,
    pub version: i64,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub created_at: String,
    pub author: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_microusd: i64,
    /// Sanitised HTML, safe to insert.
    pub html: String,
    /// Set on a memo just generated when a budget's last tokens lowered its `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
}
