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

/// A column the deals list can be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealColumn {
    Name,
    Type,
    Address,
    AskingPrice,
    Updated,
}

impl DealColumn {
    /// Ascending order in this column: text in any case, prices low to high, dates old
    /// to new.
    fn compare(self, a: &Deal, b: &Deal) -> std::cmp::Ordering {
        match self {
            DealColumn::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            DealColumn::Type => a.property_type.label().cmp(b.property_type.label()),
            DealColumn::Address => a.address.to_lowercase().cmp(&b.address.to_lowercase()),
            DealColumn::AskingPrice => a.asking_price.cmp(&b.asking_price),
            DealColumn::Updated => a.updated_on.cmp(&b.updated_on),
        }
    }
}

/// Whether a deal is found by a search: every word of `query` appears, in any case, in
/// one of the fields the list shows as text (name, type, address, last-updated date). An
/// empty query finds every deal.
pub fn matches_search(deal: &Deal, query: &str) -> bool {
    let fields = [deal.name.as_str(), deal.property_type.label(), deal.address.as_str(), deal.updated_on.as_str()].map(str::to_lowercase);
    query.to_lowercase().split_whitespace().all(|word| fields.iter().any(|field| field.contains(word)))
}

/// The deals a search finds, ordered by `column`. The sort is stable, so ties keep the
/// server's order (most recently changed first); a deal without an asking price comes
/// last whichever way prices are ordered.
pub fn search_and_sort(deals: &[DealSummary], query: &str, column: DealColumn, descending: bool) -> Vec<DealSummary> {
    let mut found: Vec<DealSummary> = deals.iter().filter(|d| matches_search(&d.deal, query)).cloned().collect();
    found.sort_by(|a, b| {
        let (a, b) = (&a.deal, &b.deal);
        if column == DealColumn::AskingPrice && a.asking_price.is_none() != b.asking_price.is_none() {
            return a.asking_price.is_none().cmp(&b.asking_price.is_none());
        }
        let order = column.compare(a, b);
        if descending { order.reverse() } else { order }
    });
    found
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

    fn summary(id: i64, name: &str, address: &str, kind: PropertyType, price: Option<i64>, updated_on: &str) -> DealSummary {
        DealSummary {
            deal: Deal {
                id,
                name: name.into(),
                address: address.into(),
                property_type: kind,
                asking_price: price,
                notes: "never searched: the list does not show notes".into(),
                created_by: "ana@firm.com".into(),
                updated_on: updated_on.into(),
            },
            budget: crate::budget::DealBudget { used: 0, limit: 1_000_000, state: crate::budget::BudgetState::Ok },
        }
    }

    /// As the server lists them: most recently changed first.
    fn listed() -> Vec<DealSummary> {
        vec![
            summary(3, "Route 9 Logistics", "88 Commerce Way, Marlborough", PropertyType::Industrial, Some(31_200_000), "2025-03-02"),
            summary(2, "maple Grove Apartments", "1450 Maple Grove Dr, Austin", PropertyType::Multifamily, None, "2025-03-01"),
            summary(1, "Harbor Point", "200 Harbor Point Blvd, Baltimore", PropertyType::Office, Some(86_500_000), "2025-03-01"),
        ]
    }

    fn ids(list: &[DealSummary]) -> Vec<i64> {
        list.iter().map(|d| d.deal.id).collect()
    }

    #[test]
    fn search_finds_every_word_in_any_shown_field_in_any_case() {
        let all = listed();
        let found = |q: &str| ids(&search_and_sort(&all, q, DealColumn::Updated, true));
        assert_eq!(found(""), vec![3, 2, 1], "an empty search finds everything, in the server's order");
        assert_eq!(found("   "), vec![3, 2, 1]);
        assert_eq!(found("HARBOR"), vec![1]);
        assert_eq!(found("baltimore"), vec![1], "the address");
        assert_eq!(found("multifamily"), vec![2], "the type");
        assert_eq!(found("2025-03-01"), vec![2, 1], "the date shown");
        assert_eq!(found("point baltimore"), vec![1], "words may match different fields");
        assert_eq!(found("harbor austin"), Vec::<i64>::new(), "every word must match");
        assert_eq!(found("never searched"), Vec::<i64>::new(), "notes are not shown, so not searched");
        assert_eq!(found("<script>"), Vec::<i64>::new());
    }

    #[test]
    fn sorts_by_each_column_both_ways_with_missing_prices_last() {
        let all = listed();
        let sorted = |column, descending| ids(&search_and_sort(&all, "", column, descending));
        assert_eq!(sorted(DealColumn::Name, false), vec![1, 2, 3], "names in any case");
        assert_eq!(sorted(DealColumn::Name, true), vec![3, 2, 1]);
        assert_eq!(sorted(DealColumn::Type, false), vec![3, 2, 1]);
        assert_eq!(sorted(DealColumn::Address, false), vec![2, 1, 3]);
        assert_eq!(sorted(DealColumn::AskingPrice, false), vec![3, 1, 2]);
        assert_eq!(sorted(DealColumn::AskingPrice, true), vec![1, 3, 2], "no price is last either way");
        assert_eq!(sorted(DealColumn::Updated, true), vec![3, 2, 1], "ties keep the server's order");
        assert_eq!(sorted(DealColumn::Updated, false), vec![2, 1, 3]);
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
