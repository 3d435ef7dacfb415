//! Sales comps: Claude extracts comparable sales from pasted broker text through a
//! forced tool call; the tool input is validated and normalised before anything is
//! stored, and the analyst can edit or delete the rows.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod validate;
pub mod view;

use serde::{Deserialize, Serialize};

/// Longest text accepted for one extraction, in characters.
pub const MAX_SOURCE_CHARS: usize = 40_000;
/// Most sales accepted from one extraction.
pub const MAX_SALES: usize = 50;
pub const TOOL_NAME: &str = "record_comparable_sales";

/// A stored comparable sale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comp {
    pub id: i64,
    #[serde(flatten)]
    pub fields: CompFields,
}

/// The fields of a sale, validated; absent where the source was silent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompFields {
    pub property_name: String,
    pub address: String,
    /// `YYYY-MM-DD`.
    pub sale_date: Option<String>,
    /// Whole USD.
    pub sale_price: Option<i64>,
    pub building_sf: Option<i64>,
    /// USD per square foot, two decimals.
    pub price_per_sf: Option<f64>,
    /// Percent, e.g. 5.75.
    pub cap_rate: Option<f64>,
    pub buyer: String,
    pub seller: String,
    pub notes: String,
    /// The text the sale was read from.
    pub source_excerpt: String,
}

/// What an extraction stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtractResult {
    pub added: usize,
    pub comps: Vec<Comp>,
    /// Set when a budget's last tokens lowered the extraction's `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
}

/// The JSON schema of the extraction tool Claude is asked to call.
pub fn tool_schema() -> serde_json::Value {
    let text = |description: &str| serde_json::json!({"type": "string", "description": description});
    let number = |description: &str| serde_json::json!({"type": "number", "description": description});
    serde_json::json!({
        "type": "object",
        "properties": {
            "sales": {
                "type": "array",
                "description": "Every comparable sale the text describes, in the order given.",
                "items": {
                    "type": "object",
                    "properties": {
                        "property_name": text("Name of the property, if given."),
                        "address": text("Street address with city and state, if given."),
                        "sale_date": text("Date of sale as YYYY-MM-DD; YYYY-MM when only the month is known."),
                        "sale_price": number("Sale price in US dollars."),
                        "building_size_sf": number("Building size in square feet."),
                        "price_per_sf": number("Price per square foot in US dollars."),
                        "cap_rate": number("Capitalisation rate in percent, e.g. 5.75."),
                        "buyer": text("Buyer, if named."),
                        "seller": text("Seller, if named."),
                        "notes": text("Anything else material about the sale (tenancy, condition, terms)."),
                        "source_excerpt": text("The sentence or lines of the source text describing this sale, verbatim.")
                    },
                    "required": ["source_excerpt"]
                }
            }
        },
        "required": ["sales"]
    })
}
