//! Sales comps: Claude extracts comparable sales from pasted broker text through a
//! forced tool call; the tool input is validated and normalised before anything is
//! stored, and the analyst can add sales by hand, edit them, delete them (and undo the
//! delete), or download them as CSV.

pub mod api;
#[cfg(feature = "ssr")]
pub mod http;
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
    /// `YYYY-MM-DD`, or `YYYY-MM` when the source gave only the month.
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
    /// The text the sale was read from; empty for a sale added by hand.
    pub source_excerpt: String,
}

impl CompFields {
    /// What the analyst calls the sale: its property name, or its address without one.
    pub fn label(&self) -> &str {
        if self.property_name.is_empty() { &self.address } else { &self.property_name }
    }
}

const MONTH_NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The month of a stored `YYYY-MM` sale date, as (year, month 1–12); `None` for a day.
fn month_only(date: &str) -> Option<(&str, usize)> {
    let (year, month) = date.split_once('-')?;
    let digits = |text: &str, n: usize| text.len() == n && text.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2)) {
        return None;
    }
    Some((year, month.parse().ok().filter(|m| (1..=12).contains(m))?))
}

/// A stored sale date as the table shows it: a month as `Mar 2025`, a day as stored.
/// Plain text, no date library, so the browser shows it the same way.
pub fn display_sale_date(date: &str) -> String {
    match month_only(date) {
        Some((year, month)) => format!("{} {year}", MONTH_NAMES[month - 1]),
        None => date.to_string(),
    }
}

/// How stored sale dates order: a month as its first day, before that day itself.
pub fn sale_date_order(date: &str) -> (String, bool) {
    match month_only(date) {
        Some(_) => (format!("{date}-01"), false),
        None => (date.to_string(), true),
    }
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

/// What a set of comps says at a glance: how many, the average and median price per SF
/// and cap rate (of the sales that state them), and the dates they span (as stored: a
/// month stays a month, ordered as its first day).
#[derive(Clone, Debug, PartialEq)]
pub struct CompSummary {
    pub count: usize,
    pub psf: Option<(f64, f64)>,
    pub cap_rate: Option<(f64, f64)>,
    pub dates: Option<(String, String)>,
}

pub fn summary(comps: &[Comp]) -> CompSummary {
    let stats = |values: Vec<f64>| -> Option<(f64, f64)> {
        let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Some((mean, median))
    };
    let mut dates: Vec<&str> = comps.iter().filter_map(|c| c.fields.sale_date.as_deref()).collect();
    dates.sort_by_cached_key(|d| sale_date_order(d));
    CompSummary {
        count: comps.len(),
        psf: stats(comps.iter().filter_map(|c| c.fields.price_per_sf).collect()),
        cap_rate: stats(comps.iter().filter_map(|c| c.fields.cap_rate).collect()),
        dates: dates.first().zip(dates.last()).map(|(a, b)| (a.to_string(), b.to_string())),
    }
}

#[cfg(test)]
mod summary_tests {
    use super::{Comp, CompFields, display_sale_date, summary};

    fn comp(psf: Option<f64>, cap: Option<f64>, date: Option<&str>) -> Comp {
        Comp { id: 0, fields: CompFields { price_per_sf: psf, cap_rate: cap, sale_date: date.map(str::to_string), ..Default::default() } }
    }

    #[test]
    fn averages_and_medians_of_the_sales_that_state_them() {
        let comps = [
            comp(Some(300.0), Some(6.0), Some("2025-03-01")),
            comp(Some(100.0), None, Some("2024-11-15")),
            comp(Some(200.0), Some(5.0), None),
            comp(None, Some(7.0), Some("2025-06-30")),
        ];
        let s = summary(&comps);
        assert_eq!(s.count, 4);
        assert_eq!(s.psf, Some((200.0, 200.0)));
        assert_eq!(s.cap_rate, Some((6.0, 6.0)));
        assert_eq!(s.dates, Some(("2024-11-15".into(), "2025-06-30".into())));
        let two = summary(&comps[..2]);
        assert_eq!(two.psf, Some((200.0, 200.0)), "median of two is their middle");
        assert_eq!(two.cap_rate, Some((6.0, 6.0)));
        let lopsided = summary(&[comp(Some(100.0), Some(5.0), None), comp(Some(100.0), Some(5.5), None), comp(Some(400.0), Some(8.0), None)]);
        assert_eq!(lopsided.psf, Some((200.0, 100.0)), "average and median apart");
        assert_eq!(lopsided.cap_rate.map(|(mean, median)| ((mean * 100.0).round() / 100.0, median)), Some((6.17, 5.5)));
        let none = summary(&[]);
        assert_eq!((none.count, none.psf, none.cap_rate, none.dates), (0, None, None, None));
    }

    #[test]
    fn months_order_as_their_first_day_and_keep_their_precision() {
        let range = |dates: &[&str]| summary(&dates.iter().map(|d| comp(None, None, Some(d))).collect::<Vec<_>>()).dates.unwrap();
        assert_eq!(range(&["2025-03", "2025-02-28", "2025-03-15"]), ("2025-02-28".into(), "2025-03-15".into()));
        assert_eq!(range(&["2025-04", "2025-03-31", "2024-12"]), ("2024-12".into(), "2025-04".into()));
        assert_eq!(range(&["2025-03-01", "2025-03"]), ("2025-03".into(), "2025-03-01".into()), "the month, then its first day");
        assert_eq!(range(&["2025-03"]), ("2025-03".into(), "2025-03".into()));
    }

    #[test]
    fn a_month_shows_as_its_name_and_a_day_as_the_date() {
        assert_eq!(display_sale_date("2025-03"), "Mar 2025");
        assert_eq!(display_sale_date("2024-12"), "Dec 2024");
        assert_eq!(display_sale_date("2024-11-15"), "2024-11-15");
        assert_eq!(display_sale_date("2025-13"), "2025-13", "not a month: shown as stored");
        assert_eq!(display_sale_date("garbage"), "garbage");
    }

    #[test]
    fn a_sale_is_called_by_its_name_or_else_its_address() {
        let named = CompFields { property_name: "Gulf Tower".into(), address: "9 Gulf Blvd".into(), ..Default::default() };
        assert_eq!(named.label(), "Gulf Tower");
        assert_eq!(CompFields { address: "9 Gulf Blvd".into(), ..Default::default() }.label(), "9 Gulf Blvd");
    }
}
