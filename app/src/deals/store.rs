//! Deal rows in the database.

use super::{Deal, DealInput, PropertyType};
use crate::db::Db;
use crate::error::AppError;
use crate::time::{now_millis, utc_date};

type DealTuple = (i64, String, String, String, Option<i64>, String, String, i64);

/// A deal with its author.
const SELECT_DEAL: &str = "SELECT d.id, d.name, d.address, d.property_type, d.asking_price, d.notes, \
     u.email, d.updated_at FROM deals d JOIN users u ON u.id = d.created_by";

fn deal_from_row(row: DealTuple) -> Deal {
    let (id, name, address, property_type, asking_price, notes, created_by, updated_at) = row;
    // Stored from `PropertyType::label`; an unknown name (edited by hand) reads as Other.
    let property_type = PropertyType::parse(&property_type).unwrap_or(PropertyType::Other);
    Deal { id, name, address, property_type, asking_price, notes, created_by, updated_on: utc_date(updated_at) }
}

/// Every deal, most recently changed first.
pub async fn list(db: &Db) -> Result<Vec<Deal>, AppError> {
    let rows: Vec<DealTuple> = sqlx::query_as(&format!("{SELECT_DEAL} ORDER BY d.updated_at DESC, d.id DESC")).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(deal_from_row).collect())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Deal>, AppError> {
    let row: Option<DealTuple> = sqlx::query_as(&format!("{SELECT_DEAL} WHERE d.id = $1")).bind(id).fetch_optional(&mut db.read().await?).await?;
    Ok(row.map(deal_from_row))
}

pub async fn create(db: &Db, created_by: i64, input: &DealInput) -> Result<i64, AppError> {
    let now = now_millis();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deals (name, address, property_type, asking_price, notes, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(&input.name)
    .bind(&input.address)
    .bind(input.property_type.label())
    .bind(input.asking_price)
    .bind(&input.notes)
    .bind(created_by)
    .bind(now)
    .fetch_one(&mut *db.writer().await?)
    .await?;
    Ok(id)
}

/// Returns false when no deal has that id.
pub async fn update(db: &Db, id: i64, input: &DealInput) -> Result<bool, AppError> {
    let result = sqlx::query(
        "UPDATE deals SET name = $1, address = $2, property_type = $3, asking_price = $4, notes = $5, \
         updated_at = $6 WHERE id = $7",
    )
    .bind(&input.name)
    .bind(&input.address)
    .bind(input.property_type.label())
    .bind(input.asking_price)
    .bind(&input.notes)
    .bind(now_millis())
    .bind(id)
    .execute(&mut *db.writer().await?)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn count(db: &Db) -> Result<i64, AppError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deals").fetch_one(&db.pool).await?;
    Ok(n)
}
