//! Deals: the property an analyst is working on. Shared types and input validation
//! (pure, so the browser and the server agree), server functions in `api`, database
//! access in `store`, pages in `view`.

pub mod api;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What kind of property a deal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PropertyType {
    Office,
    Retail,
    Industrial,
    Multifamily,
    Hospitality,
    #[serde(rename = "Mixed-use")]
    MixedUse,
    #[serde(rename = "Self-storage")]
    SelfStorage,
    Land,
    Other,
}

impl PropertyType {
    pub const ALL: [PropertyType; 9] = [
        PropertyType::Office,
        PropertyType::Retail,
        PropertyType::Industrial,
        PropertyType::Multifamily,
        PropertyType::Hospitality,
        PropertyType::MixedUse,
        PropertyType::SelfStorage,
        PropertyType::Land,
        PropertyType::Other,
    ];

    /// The name shown and stored.
    pub fn label(self) -> &'static str {
        match self {
            PropertyType::Office => "Office",
            PropertyType::Retail => "Retail",
            PropertyType::Industrial => "Industrial",
            PropertyType::Multifamily => "Multifamily",
            PropertyType::Hospitality => "Hospitality",
            PropertyType::MixedUse => "Mixed-use",
            PropertyType::SelfStorage => "Self-storage",
            PropertyType::Land => "Land",
            PropertyType::Other => "Other",
        }
    }

    /// From its name, in any case.
    pub fn parse(text: &str) -> Option<PropertyType> {
        PropertyType::ALL.into_iter().find(|t| t.label().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for PropertyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_CHARS: usize = 300;
pub const MAX_NOTES_CHARS: usize = 20_000;
/// USD 100 billion: nothing an analyst types legitimately is larger.
pub const MAX_ASKING_PRICE: i64 = 100_000_000_000;

/// A deal as the browser sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub property_type: PropertyType,
    pub asking_price: Option<i64>,
    pub notes: String,
    pub created_by: String,
    /// UTC date of the last change, `YYYY-MM-DD`.
    pub updated_on: String,
}

/// A deal as lists show it: its facts and its budget standing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealSummary {
    #[serde(flatten)]
    pub deal: Deal,
    /// Tokens recorded against the deal, its limit, and whether it is in warning or blocked.
    pub budget: crate::budget::DealBudget,
}

/// Validated fields of a deal, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct DealInput {
    pub name: String,
    pub address: String,
    pub property_type: PropertyType,
    pub asking_price: Option<i64>,
    pub notes: String,
}

impl DealInput {
    /// Validates the raw form fields; the first problem found is reported.
    pub fn parse(
        name: &str,
        address: &str,
        property_type: &str,
        asking_price: &str,
        notes: &str,
    ) -> Result<DealInput, AppError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AppError::invalid("The deal needs a name."));
        }
        check_length("Name", name, MAX_NAME_CHARS)?;
        let address = address.trim();
        check_length("Address", address, MAX_ADDRESS_CHARS)?;
        let property_type = PropertyType::parse(property_type).ok_or_else(|| {
            let names: Vec<&str> = PropertyType::ALL.iter().map(|t| t.label()).collect();
            AppError::invalid(format!("Property type must be one of: {}.", names.join(", ")))
        })?;
        let asking_price = parse_price(asking_price).map_err(AppError::invalid)?;
        let notes = notes.trim();
        check_length("Notes", notes, MAX_NOTES_CHARS)?;
        Ok(DealInput {
            name: name.to_string(),
            address: address.to_string(),
            property_type,
            asking_price,
            notes: notes.to_string(),
        })
    }
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), AppError> {
    if value.chars().count() > max {
        return Err(AppError::new(
            crate::error::ErrorKind::TooLong,
            format!("{field} is too long (at most {max} characters)."),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(AppError::invalid(format!("{field} contains control characters.")));
    }
    Ok(())
}

/// Parses an asking price in whole US dollars as analysts write it:
/// `12500000`, `$12,500,000`, `12.5M`, `850k`, `1.2bn`. Empty means "not known".
pub fn parse_price(raw: &str) -> Result<Option<i64>, String> {
    let text: String = raw
        .trim()
        .trim_start_matches(['$', ' '])
        .chars()
        .filter(|c| *c != ',' && *c != '_' && *c != ' ')
        .collect::<String>()
        .to_ascii_lowercase();
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || format!("Asking price \"{}\" is not an amount in dollars (e.g. 12,500,000 or 12.5M).", raw.trim());
    let (number, multiplier) = if let Some(n) = text.strip_suffix("bn").or_else(|| text.strip_suffix('b')) {
        (n, 1_000_000_000.0)
    } else if let Some(n) = text.strip_suffix("mm").or_else(|| text.strip_suffix('m')) {
        (n, 1_000_000.0)
    } else if let Some(n) = text.strip_suffix('k') {
        (n, 1_000.0)
    } else {
        (text.as_str(), 1.0)
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let dollars = (value * multiplier).round();
    if !dollars.is_finite() || dollars > MAX_ASKING_PRICE as f64 {
        return Err("Asking price is implausibly large.".to_string());
    }
    Ok(Some(dollars as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn parses_prices_as_analysts_write_them() {
        assert_eq!(parse_price(""), Ok(None));
        assert_eq!(parse_price("  "), Ok(None));
        assert_eq!(parse_price("12500000"), Ok(Some(12_500_000)));
        assert_eq!(parse_price("$12,500,000"), Ok(Some(12_500_000)));
        assert_eq!(parse_price("12.5M"), Ok(Some(12_500_000)));
        assert_eq!(parse_price("12.5 mm"), Ok(Some(12_500_000)));
        assert_eq!(parse_price("850k"), Ok(Some(850_000)));
        assert_eq!(parse_price("1.2bn"), Ok(Some(1_200_000_000)));
        assert_eq!(parse_price("1999.60"), Ok(Some(2_000)));
    }

    #[test]
    fn rejects_prices_that_are_not_amounts() {
        assert!(parse_price("-5").is_err());
        assert!(parse_price("twelve").is_err());
        assert!(parse_price("1e9").is_err());
        assert!(parse_price("M").is_err());
        assert!(parse_price("999bn").is_err());
    }

    #[test]
    fn validates_deal_fields() {
        let ok = DealInput::parse(" Harbor Point ", "1 Main St", "office", "$10M", "note").unwrap();
        assert_eq!(ok.name, "Harbor Point");
        assert_eq!(ok.property_type, PropertyType::Office);
        assert_eq!(PropertyType::parse(" mixed-USE "), Some(PropertyType::MixedUse));
        assert_eq!(serde_json::to_string(&PropertyType::SelfStorage).unwrap(), "\"Self-storage\"");
        assert_eq!(ok.asking_price, Some(10_000_000));

        let empty = DealInput::parse("   ", "", "Office", "", "").unwrap_err();
        assert_eq!(empty.kind, ErrorKind::Invalid);
        let bad_type = DealInput::parse("A", "", "Castle", "", "").unwrap_err();
        assert_eq!(bad_type.kind, ErrorKind::Invalid);
        let long = DealInput::parse(&"x".repeat(MAX_NAME_CHARS + 1), "", "Office", "", "").unwrap_err();
        assert_eq!(long.kind, ErrorKind::TooLong);
        let control = DealInput::parse("A\u{0}B", "", "Office", "", "").unwrap_err();
        assert_eq!(control.kind, ErrorKind::Invalid);
    }
}
