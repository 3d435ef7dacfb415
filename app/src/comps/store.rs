//! Comparable sales in the database. A deleted comp is hidden (`deleted_at` set), not
//! removed, so the delete can be undone; hidden rows are kept (nothing purges them) and
//! every read here leaves them out.

use super::{Comp, CompFields};
use crate::db::Db;
use crate::time::now_millis;
use crate::error::AppError;

type CompTuple = (i64, String, String, Option<String>, Option<i64>, Option<i64>, Option<f64>, Option<f64>, String, String, String, String);

const SELECT_COMP: &str = "SELECT id, property_name, address, sale_date, sale_price, building_sf, price_per_sf, \
     cap_rate, buyer, seller, notes, source_excerpt FROM comps";

fn comp_from_row(row: CompTuple) -> Comp {
    let (id, property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes, source_excerpt) = row;
    Comp {
        id,
        fields: CompFields { property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes, source_excerpt },
    }
}

/// The deal's comps that are not deleted, in the order they were added: a stable order
/// (an edit never moves a row, and an undone delete puts it back in its place).
pub async fn list(db: &Db, deal_id: i64) -> Result<Vec<Comp>, AppError> {
    let rows: Vec<CompTuple> = sqlx::query_as(&format!(
        "{SELECT_COMP} WHERE deal_id = $1 AND deleted_at IS NULL ORDER BY id"
    ))
    .bind(deal_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(comp_from_row).collect())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds a sale's editable fields, in column order property_name .. notes. The two
/// decimals travel as text and are cast in SQL (`CAST($n AS DOUBLE PRECISION)`):
/// sqlx 0.8's generic driver sends a NULL `f64` to PostgreSQL typed as a 4-byte float,
/// and the statement it caches then rejects every later real value on that connection
/// ("incorrect binary data format in bind parameter 6").
fn bind_fields<'q>(query: AnyQuery<'q>, c: &'q CompFields) -> AnyQuery<'q> {
    query
        .bind(&c.property_name)
        .bind(&c.address)
        .bind(c.sale_date.as_deref())
        .bind(c.sale_price)
        .bind(c.building_sf)
        .bind(c.price_per_sf.map(|v| v.to_string()))
        .bind(c.cap_rate.map(|v| v.to_string()))
        .bind(&c.buyer)
        .bind(&c.seller)
        .bind(&c.notes)
}

const INSERT_COMP: &str = "INSERT INTO comps (property_name, address, sale_date, sale_price, building_sf, price_per_sf, \
     cap_rate, buyer, seller, notes, deal_id, source_excerpt, created_by, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, CAST($6 AS DOUBLE PRECISION), CAST($7 AS DOUBLE PRECISION), $8, $9, $10, $11, $12, $13, $14, $14)";

/// Binds a new sale's columns, in `INSERT_COMP`'s order.
fn bind_new<'q>(query: AnyQuery<'q>, deal_id: i64, user_id: i64, now: i64, c: &'q CompFields) -> AnyQuery<'q> {
    bind_fields(query, c).bind(deal_id).bind(&c.source_excerpt).bind(user_id).bind(now)
}

/// Stores all the sales of one extraction, or none of them.
pub async fn insert_all(db: &Db, deal_id: i64, user_id: i64, comps: &[CompFields]) -> Result<(), AppError> {
    let now = now_millis();
    let mut tx = db.begin_write().await?;
    for c in comps {
        bind_new(sqlx::query(INSERT_COMP), deal_id, user_id, now, c).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Stores one sale (an analyst's, added by hand) and returns its id.
pub async fn insert(db: &Db, deal_id: i64, user_id: i64, c: &CompFields) -> Result<i64, AppError> {
    let sql = format!("{INSERT_COMP} RETURNING id");
    let row = bind_new(sqlx::query(&sql), deal_id, user_id, now_millis(), c).fetch_one(&mut *db.writer().await?).await?;
    Ok(sqlx::Row::try_get(&row, 0)?)
}

/// Replaces a comp's fields (the source excerpt stays); false when the deal has no
/// comp with that id, or it is deleted.
pub async fn update(db: &Db, deal_id: i64, id: i64, c: &CompFields) -> Result<bool, AppError> {
    let update = sqlx::query(
        "UPDATE comps SET property_name = $1, address = $2, sale_date = $3, sale_price = $4, building_sf = $5, \
         price_per_sf = CAST($6 AS DOUBLE PRECISION), cap_rate = CAST($7 AS DOUBLE PRECISION), buyer = $8, seller = $9, notes = $10, updated_at = $11 \
         WHERE id = $12 AND deal_id = $13 AND deleted_at IS NULL",
    );
    let result = bind_fields(update, c).bind(now_millis()).bind(id).bind(deal_id).execute(&mut *db.writer().await?).await?;
    Ok(result.rows_affected() == 1)
}

/// Hides a comp (see the module comment); false when the deal has no such comp, or it is
/// deleted already.
pub async fn delete(db: &Db, deal_id: i64, id: i64) -> Result<bool, AppError> {
    let result = sqlx::query("UPDATE comps SET deleted_at = $1 WHERE id = $2 AND deal_id = $3 AND deleted_at IS NULL")
        .bind(now_millis())
        .bind(id)
        .bind(deal_id)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Undoes a delete: the same row, id and fields come back. False when the deal has no
/// such comp or it is not deleted.
pub async fn restore(db: &Db, deal_id: i64, id: i64) -> Result<bool, AppError> {
    let result = sqlx::query("UPDATE comps SET deleted_at = NULL WHERE id = $1 AND deal_id = $2 AND deleted_at IS NOT NULL")
        .bind(id)
        .bind(deal_id)
        .execute(&mut *db.writer().await?)
        .await?;
    Ok(result.rows_affected() == 1)
}
