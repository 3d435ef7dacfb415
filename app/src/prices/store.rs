//! The dated prices admins added (built-in and configured prices are not stored).

use sqlx::AnyConnection;

use crate::claude::pricing::{LongPromptTier, ModelPrice, Rates};

type Row = (String, i64, [i64; 5], Option<i64>, [Option<i64>; 5], Option<String>);

const SELECT: &str = "SELECT p.model, p.effective_from, p.input_micro, p.output_micro, p.cache_write_5m_micro, \
    p.cache_write_1h_micro, p.cache_read_micro, p.long_above_tokens, p.long_input_micro, p.long_output_micro, \
    p.long_cache_write_5m_micro, p.long_cache_write_1h_micro, p.long_cache_read_micro, u.email \
    FROM model_prices p LEFT JOIN users u ON u.id = p.created_by ORDER BY p.id";

type RawRow = (String, i64, i64, i64, i64, i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>);

fn rates([input, output, write_5m, write_1h, read]: [i64; 5]) -> Rates {
    let n = |v: i64| v.max(0) as u64;
    Rates { input: n(input), output: n(output), cache_write_5m: n(write_5m), cache_write_1h: n(write_1h), cache_read: n(read) }
}

fn into_price((model, effective_from, base, long_above, long, author): Row) -> ModelPrice {
    let long_prompt = match (long_above, long) {
        (Some(above), [Some(a), Some(b), Some(c), Some(d), Some(e)]) => Some(LongPromptTier { above_tokens: above.max(0) as u64, rates: rates([a, b, c, d, e]) }),
        _ => None,
    };
    ModelPrice { model, effective_from, rates: rates(base), long_prompt, source: author.unwrap_or_else(|| "cli".into()) }
}

/// Every stored price, and the version of the set (the newest id; 0 when empty).
/// The version is read first: a price stored between the two reads is then in the rows
/// but not the version (one needless reload later), never the other way round (a book
/// claiming a price it lacks, which the ledger's version check would trust).
pub async fn load(conn: &mut AnyConnection) -> Result<(Vec<ModelPrice>, i64), sqlx::Error> {
    let version = version(&mut *conn).await?;
    let rows: Vec<RawRow> = sqlx::query_as(SELECT).fetch_all(conn).await?;
    let prices = rows
        .into_iter()
        .map(|(model, from, a, b, c, d, e, above, la, lb, lc, ld, le, author)| into_price((model, from, [a, b, c, d, e], above, [la, lb, lc, ld, le], author)))
        .collect();
    Ok((prices, version))
}

/// The version of the stored prices: the newest row's id, 0 when there is none.
pub async fn version(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let (v,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM model_prices").fetch_one(conn).await?;
    Ok(v)
}

/// Stores a price; false when the model already has one from that very moment.
pub async fn insert(conn: &mut AnyConnection, price: &ModelPrice, created_by: Option<i64>, now: i64) -> Result<bool, sqlx::Error> {
    let r = price.rates;
    let long = price.long_prompt;
    let micro = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let lr = long.map(|t| t.rates);
    let done = sqlx::query(
        "INSERT INTO model_prices (model, effective_from, input_micro, output_micro, cache_write_5m_micro, cache_write_1h_micro, \
         cache_read_micro, long_above_tokens, long_input_micro, long_output_micro, long_cache_write_5m_micro, \
         long_cache_write_1h_micro, long_cache_read_micro, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (model, effective_from) DO NOTHING",
    )
    .bind(price.model.as_str())
    .bind(price.effective_from)
    .bind(micro(r.input))
    .bind(micro(r.output))
    .bind(micro(r.cache_write_5m))
    .bind(micro(r.cache_write_1h))
    .bind(micro(r.cache_read))
    .bind(long.map(|t| micro(t.above_tokens)))
    .bind(lr.map(|r| micro(r.input)))
    .bind(lr.map(|r| micro(r.output)))
    .bind(lr.map(|r| micro(r.cache_write_5m)))
    .bind(lr.map(|r| micro(r.cache_write_1h)))
    .bind(lr.map(|r| micro(r.cache_read)))
    .bind(created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
