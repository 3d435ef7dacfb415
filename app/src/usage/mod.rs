//! Usage: what every Claude call cost. The tracker writes one record per attempt that
//! reached Claude (failures too); dashboards and budgets read them.

#[cfg(feature = "ssr")]
pub mod tracker;

use serde::{Deserialize, Serialize};

/// The usage of one reply, as the browser shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyUsage {
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cost_microusd: i64,
}
