//! Validation and normalisation of comparable sales, from Claude's tool input or from
//! the analyst's edit form. Pure: `today` is passed in. Error messages name the sale and
//! the field, never the offending value: model output is never echoed to the browser.

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::{CompFields, MAX_SALES};

/// A sale's fields as text, before validation.
#[derive(Clone, Debug, Default)]
pub struct RawComp {
    pub property_name: String,
    pub address: String,
    pub sale_date: String,
    pub sale_price: String,
    pub building_sf: String,
    pub price_per_sf: String,
    pub cap_rate: String,
    pub buyer: String,
    pub seller: String,
    pub notes: String,
    pub source_excerpt: String,
}

/// Validates the whole tool input: every sale must pass, or none is taken.
pub fn from_tool_input(input: &Value, today: NaiveDate) -> Result<Vec<CompFields>, String> {
    let sales = input
        .get("sales")
        .and_then(Value::as_array)
        .ok_or("the answer has no list of sales")?;
    if sales.len() > MAX_SALES {
        return Err(format!("{} sales is more than the {MAX_SALES} one extraction may add", sales.len()));
    }
    sales
        .iter()
        .enumerate()
        .map(|(i, sale)| {
            let sale = sale.as_object().ok_or_else(|| format!("sale {} is not an object", i + 1))?;
            let field = |name: &str| -> Result<String, String> {
                match sale.get(name) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(Value::Number(n)) => Ok(n.to_string()),
                    Some(_) => Err(format!("sale {}: {name} should be text or a number", i + 1)),
                }
            };
            let raw = RawComp {
                property_name: field("property_name")?,
                address: field("address")?,
                sale_date: field("sale_date")?,
                sale_price: field("sale_price")?,
                building_sf: field("building_size_sf")?,
                price_per_sf: field("price_per_sf")?,
                cap_rate: field("cap_rate")?,
                buyer: field("buyer")?,
                seller: field("seller")?,
                notes: field("notes")?,
                source_excerpt: field("source_excerpt")?,
            };
            validate(raw, today).map_err(|e| format!("sale {}: {e}", i + 1))
        })
        .collect()
}

/// Validates and normalises one sale.
pub fn validate(raw: RawComp, today: NaiveDate) -> Result<CompFields, String> {
    let text = |value: &str, name: &str, max: usize| -> Result<String, String> {
        let value = value.trim();
        if value.chars().count() > max {
            return Err(format!("{name} is longer than {max} characters"));
        }
        if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            return Err(format!("{name} contains control characters"));
        }
        Ok(value.to_string())
    };
    let property_name = text(&raw.property_name, "the property name", 300)?;
    let address = text(&raw.address, "the address", 300)?;
    if property_name.is_empty() && address.is_empty() {
        return Err("it has neither a property name nor an address".into());
    }
    let sale_price = crate::deals::parse_price(&raw.sale_price)
        .map_err(|_| "the sale price is not an amount".to_string())?;
    in_range(sale_price.map(|p| p as f64), 10_000.0, 50_000_000_000.0, "sale price", "$10,000–$50bn")?;
    let building_sf = parse_number(&raw.building_sf, &["sf", "sq ft", "square feet", "sq. ft."])
        .map_err(|_| "the building size is not a number of square feet".to_string())?;
    in_range(building_sf, 100.0, 50_000_000.0, "building size", "100–50,000,000 SF")?;
    let building_sf = building_sf.map(|sf| sf.round() as i64);
    let mut price_per_sf = parse_number(&raw.price_per_sf, &["/sf", "psf", "per sf", "/ sf"])
        .map_err(|_| "the price per SF is not an amount".to_string())?;
    if price_per_sf.is_none() {
        if let (Some(price), Some(sf)) = (sale_price, building_sf) {
            price_per_sf = Some(price as f64 / sf as f64);
        }
    }
    in_range(price_per_sf, 1.0, 100_000.0, "price per SF", "$1–$100,000")?;
    let price_per_sf = price_per_sf.map(|p| (p * 100.0).round() / 100.0);
    let mut cap_rate = parse_number(&raw.cap_rate, &["%", "percent"])
        .map_err(|_| "the cap rate is not a percentage".to_string())?;
    // A fraction (0.0575) means a percentage (5.75).
    if let Some(c) = cap_rate.filter(|c| *c > 0.0 && *c < 0.3) {
        cap_rate = Some(c * 100.0);
    }
    in_range(cap_rate, 0.5, 25.0, "cap rate", "0.5–25%")?;
    let cap_rate = cap_rate.map(|c| (c * 100.0).round() / 100.0);
    let sale_date = parse_date(&raw.sale_date, today)?;
    Ok(CompFields {
        property_name,
        address,
        sale_date,
        sale_price,
        building_sf,
        price_per_sf,
        cap_rate,
        buyer: text(&raw.buyer, "the buyer", 300)?,
        seller: text(&raw.seller, "the seller", 300)?,
        notes: text(&raw.notes, "the notes", 2_000)?,
        source_excerpt: text(&raw.source_excerpt, "the source excerpt", 4_000)?,
    })
}

fn in_range(value: Option<f64>, min: f64, max: f64, name: &str, range: &str) -> Result<(), String> {
    match value {
        Some(v) if !(v.is_finite() && v >= min && v <= max) => Err(format!("the {name} is not plausible ({range})")),
        _ => Ok(()),
    }
}

/// A plain number with optional `$`, commas and one of `units` after it.
fn parse_number(raw: &str, units: &[&str]) -> Result<Option<f64>, ()> {
    let mut text = raw.trim().to_ascii_lowercase().replace([',', '$'], "");
    for unit in units {
        if let Some(stripped) = text.strip_suffix(unit) {
            text = stripped.trim().to_string();
            break;
        }
    }
    if text.is_empty() {
        return Ok(None);
    }
    if !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(());
    }
    text.parse().map(Some).map_err(|_| ())
}

/// `YYYY-MM-DD`, or `YYYY-MM` when only the month is known: kept at the precision the
/// text gave (a month is not made its first day). A real date from 1950 to a year from
/// today: a comp is a sale that has happened or is under contract to close (a month
/// counts from its first day), and rows stored under that rule stay editable.
fn parse_date(raw: &str, today: NaiveDate) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let not_a_date = || "the sale date is not a date (YYYY-MM-DD or YYYY-MM)".to_string();
    // Digits only, so no sign, space or other leniency of a general date parser gets in.
    let number = |part: &str, digits: std::ops::RangeInclusive<usize>| -> Result<u32, String> {
        if digits.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) { part.parse().map_err(|_| not_a_date()) } else { Err(not_a_date()) }
    };
    let parts: Vec<&str> = text.split('-').collect();
    let (year, month, day) = match parts.as_slice() {
        [y, m] => (number(y, 4..=4)?, number(m, 1..=2)?, None),
        [y, m, d] => (number(y, 4..=4)?, number(m, 1..=2)?, Some(number(d, 1..=2)?)),
        _ => return Err(not_a_date()),
    };
    let first = NaiveDate::from_ymd_opt(year as i32, month, day.unwrap_or(1))
        .ok_or_else(|| "the sale date does not exist (no such month or day)".to_string())?;
    if first.year() < 1950 {
        return Err("the sale date is not plausible (1950 or later)".to_string());
    }
    let latest = today.with_year(today.year() + 1).unwrap_or(today);
    if first > latest {
        return Err("the sale date is more than a year in the future".to_string());
    }
    Ok(Some(first.format(if day.is_some() { "%Y-%m-%d" } else { "%Y-%m" }).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn normalises_a_sale_and_computes_price_per_sf() {
        let input = json!({"sales": [{
            "property_name": " One Harbor Plaza ", "address": "1 Harbor Plz, Baltimore, MD",
            "sale_date": "2025-06", "sale_price": 42000000, "building_size_sf": "168,000 SF",
            "cap_rate": 0.0625, "buyer": "Blue Crane REIT", "source_excerpt": "One Harbor Plaza sold..."
        }]});
        let comps = from_tool_input(&input, today()).unwrap();
        assert_eq!(comps.len(), 1);
        let c = &comps[0];
        assert_eq!(c.property_name, "One Harbor Plaza");
        assert_eq!(c.sale_date.as_deref(), Some("2025-06"), "a month stays a month");
        assert_eq!(c.sale_price, Some(42_000_000));
        assert_eq!(c.building_sf, Some(168_000));
        assert_eq!(c.price_per_sf, Some(250.0));
        assert_eq!(c.cap_rate, Some(6.25));
        assert_eq!(c.seller, "");
    }

    #[test]
    fn rejects_implausible_or_malformed_sales_whole() {
        let ok = json!({"property_name": "A", "sale_price": 1000000, "source_excerpt": "x"});
        for (bad, why) in [
            (json!({"property_name": "B", "cap_rate": 45}), "cap rate"),
            (json!({"property_name": "B", "sale_price": "lots"}), "sale price"),
            (json!({"property_name": "B", "sale_date": "2031-01-01"}), "sale date"),
            (json!({"property_name": "B", "sale_date": "last spring"}), "sale date"),
            (json!({"property_name": "B", "building_size_sf": -5}), "building size"),
            (json!({"address": ""}), "neither"),
            (json!({"property_name": ["B"]}), "text or a number"),
            (json!("B"), "not an object"),
        ] {
            let err = from_tool_input(&json!({"sales": [ok.clone(), bad]}), today()).unwrap_err();
            assert!(err.starts_with("sale 2") && err.contains(why), "{err}");
        }
        assert!(from_tool_input(&json!({"comps": []}), today()).is_err());
        assert!(from_tool_input(&json!({"sales": vec![ok; MAX_SALES + 1]}), today()).is_err());
    }

    #[test]
    fn sale_dates_keep_the_precision_given_and_refuse_the_rest() {
        let date = |raw: &str| validate(RawComp { property_name: "A".into(), sale_date: raw.into(), ..Default::default() }, today()).map(|c| c.sale_date);
        for (raw, stored) in [
            ("", None),
            ("2025-06", Some("2025-06")),
            (" 2025-6 ", Some("2025-06")),
            ("2024-11-15", Some("2024-11-15")),
            ("2024-2-29", Some("2024-02-29")),
            ("2026-11", Some("2026-11")),
            ("2026-11-23", Some("2026-11-23")),
            ("2026-11-24", Some("2026-11-24")),
            ("2027-11-23", Some("2027-11-23")),
            ("2027-11", Some("2027-11")),
            ("1950-01", Some("1950-01")),
        ] {
            assert_eq!(date(raw).unwrap().as_deref(), stored, "{raw:?}");
        }
        for (raw, why) in [
            ("2027-11-24", "more than a year in the future"),
            ("2027-12", "more than a year in the future"),
            ("2031-01-01", "more than a year in the future"),
            ("2025-02-29", "does not exist"),
            ("2025-13", "does not exist"),
            ("2025-13-45", "does not exist"),
            ("2025-00", "does not exist"),
            ("1949-12-31", "1950 or later"),
            ("March 2025", "not a date"),
            ("2025", "not a date"),
            ("2025-03-", "not a date"),
            ("2025-03-01-01", "not a date"),
            ("2025- 03", "not a date"),
            ("+2025-03", "not a date"),
            ("20250-03", "not a date"),
            ("2025-003", "not a date"),
            ("2025-1é", "not a date"),
        ] {
            let err = date(raw).unwrap_err();
            assert!(err.starts_with("the sale date") && err.contains(why), "{raw:?}: {err}");
        }
    }

    #[test]
    fn an_empty_list_is_valid() {
        assert_eq!(from_tool_input(&json!({"sales": []}), today()).unwrap(), vec![]);
    }
}
