//! Investment memos: Claude drafts one from the deal's facts and its stored comps
//! (operation `report`); every version is kept with its author, model, tokens and cost,
//! and shown as Markdown rendered to HTML with anything dangerous removed.

pub mod api;
#[cfg(feature = "ssr")]
pub mod docx;
#[cfg(feature = "ssr")]
pub mod http;
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
    /// The memo as Claude wrote it (for "Copy as Markdown"; shown only as text).
    pub markdown: String,
    /// Sanitised HTML, safe to insert.
    pub html: String,
    /// Set on a memo just generated when a budget's last tokens lowered its `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
}

impl ReportVersion {
    /// How the version list names a version: number, date, author, model and cost.
    pub fn label(&self) -> String {
        let model = if self.model.is_empty() { "model unknown" } else { &self.model };
        format!(
            "v{} · {} · {} · {} · {} tokens · {}",
            self.version,
            self.created_at,
            self.author,
            model,
            crate::format::format_tokens(self.input_tokens + self.output_tokens),
            crate::format::format_usd(self.cost_microusd)
        )
    }
}

/// What generating a memo now would cost and whether the budgets would take it, for the
/// line under the Generate button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoEstimate {
    /// "≈ 1,240 input tokens and up to 4,096 output tokens on claude-… · ≈ $0.0037 to $0.0651 · reserves …"
    pub text: String,
    /// False when a budget would refuse it now (the text says why).
    pub sendable: bool,
}
