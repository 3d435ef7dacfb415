//! Keeping every instance's price book current, listing it, and adding dated prices.

use super::{PriceBookView, PriceRow, PriceStatus};
use crate::audit::Actor;
use crate::claude::price_book::SharedPriceBook;
use crate::claude::pricing::{LongPromptTier, ModelPrice, Rates};
use crate::db::Db;
use crate::error::AppError;
use crate::format::format_rate;
use crate::time::{now_millis, utc_minute};

/// Reloads the book if the stored prices changed since it was built (another instance,
/// or the command line, may have added one). One short query when nothing changed.
pub async fn refresh(db: &Db, book: &SharedPriceBook) -> Result<(), sqlx::Error> {
    let mut conn = db.read().await?;
    let stored = super::store::version(&mut conn).await?;
    refresh_to(&mut conn, book, stored).await?;
    conn.ended_well();
    Ok(())
}

/// `refresh`, with the stored prices' version already read (`store::version`'s figure),
/// reading new prices on `conn` (a caller holding a connection never waits for another).
pub async fn refresh_to(conn: &mut sqlx::AnyConnection, book: &SharedPriceBook, stored: i64) -> Result<(), sqlx::Error> {
    if stored != book.current().version {
        let (prices, version) = super::store::load(conn).await?;
        book.reload(prices, version);
    }
    Ok(())
}

/// The book as admins read it, newest prices of each model last.
pub fn view(book: &SharedPriceBook, default_model: &str, now: i64) -> PriceBookView {
    let current = book.current();
    let prices = current
        .all()
        .into_iter()
        .map(|p| {
            let in_force = current.price_at(&p.model, now).is_some_and(|q| q.effective_from == p.effective_from);
            let status = if in_force {
                PriceStatus::Current
            } else if p.effective_from > now {
                PriceStatus::Scheduled
            } else {
                PriceStatus::Past
            };
            PriceRow { model: p.model.clone(), from: utc_minute(p.effective_from), rates: p.rates, long_prompt: p.long_prompt, source: p.source.clone(), status }
        })
        .collect();
    PriceBookView { prices, fallback: current.fallback, default_model: default_model.to_string() }
}

/// A new dated price, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPrice {
    pub model: String,
    /// Epoch ms; not in the past.
    pub effective_from: i64,
    pub rates: Rates,
    pub long_prompt: Option<LongPromptTier>,
}

/// When a price set to take effect on `date` (local, `YYYY-MM-DD`, or empty for now)
/// applies: the start of that day, or now if that has passed today. Earlier days are
/// refused: calls already recorded keep the price they were charged.
pub fn effective_from(date: &str, zone: chrono_tz::Tz, now: i64) -> Result<i64, AppError> {
    if date.trim().is_empty() {
        return Ok(now);
    }
    let start = crate::time::local_date_start(date, zone).ok_or_else(|| AppError::invalid("Effective from: write a date as YYYY-MM-DD, or leave it empty for now."))?;
    let (today, _) = crate::time::day_bounds(now, zone);
    if start < today {
        return Err(AppError::invalid("Effective from: a price takes effect today or later; calls already recorded keep the price they were charged."));
    }
    Ok(start.max(now))
}

/// Stores a price with its audit entry (one transaction) and reloads this instance's book.
pub async fn add(db: &Db, book: &SharedPriceBook, actor: &Actor, price: NewPrice) -> Result<(), AppError> {
    let now = now_millis();
    let previous = book.current().price_at(&price.model, price.effective_from).map(describe).unwrap_or_else(|| "no price".into());
    let stored = ModelPrice { model: price.model.clone(), effective_from: price.effective_from, rates: price.rates, long_prompt: price.long_prompt, source: actor.name.clone() };
    let mut tx = db.begin_write().await?;
    if !super::store::insert(&mut tx, &stored, actor.id, now).await? {
        return Err(AppError::invalid(format!("{} already has a price from {} UTC; choose another moment.", price.model, utc_minute(price.effective_from))));
    }
    let subject = format!("price of {} from {} UTC", price.model, utc_minute(price.effective_from));
    crate::audit::store::record(&mut tx, actor, now, &subject, &previous, &describe(&stored)).await?;
    tx.commit().await?;
    refresh(db, book).await?;
    Ok(())
}

/// A price in words for the audit log: "in $2.00 · out $10.00 · cache 5m $2.50 · …".
pub fn describe(price: &ModelPrice) -> String {
    let words = |r: Rates| {
        format!(
            "in {} · out {} · cache 5m {} · cache 1h {} · read {}",
            format_rate(r.input),
            format_rate(r.output),
            format_rate(r.cache_write_5m),
            format_rate(r.cache_write_1h),
            format_rate(r.cache_read)
        )
    };
    let mut text = format!("{} per MTok", words(price.rates));
    if let Some(tier) = price.long_prompt {
        text.push_str(&format!("; over {} prompt tokens: {}", tier.above_tokens, words(tier.rates)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_described_to_the_micro_dollar() {
        let price = ModelPrice {
            model: "m".into(),
            effective_from: 0,
            rates: Rates { input: 100_000, output: 500_000, cache_write_5m: 125_000, cache_write_1h: 200_000, cache_read: 10_000 },
            long_prompt: None,
            source: "x".into(),
        };
        assert_eq!(describe(&price), "in $0.10 · out $0.50 · cache 5m $0.125 · cache 1h $0.20 · read $0.01 per MTok");
    }

    #[test]
    fn a_price_takes_effect_today_or_later() {
        let zone = chrono_tz::UTC;
        let now = crate::time::local_date_start("2026-11-23", zone).unwrap() + 5 * 3_600_000;
        assert_eq!(effective_from("", zone, now).unwrap(), now);
        assert_eq!(effective_from("2026-11-23", zone, now).unwrap(), now);
        assert_eq!(effective_from("2026-11-24", zone, now).unwrap(), now + 19 * 3_600_000);
        assert!(effective_from("2026-11-22", zone, now).is_err());
        assert!(effective_from("tomorrow", zone, now).is_err());
    }
}
