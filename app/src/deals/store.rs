//! Deal rows in the database.

use super::{Deal, DealInput};
use crate::budget::{DealBudget, Meter};
use crate::settings::BudgetSettings;
use crate::db::{Db, now_millis, utc_date};
use crate::error::AppError;

type DealTuple = (i64, String, String, String, Option<i64>, String, String, i64, Option<i64>, i64);

/// A deal with its author and the tokens recorded against it over its life.
const SELECT_DEAL: &str = "SELECT d.id, d.name, d.address, d.property_type, d.asking_price, d.notes, \
     u.email, d.updated_at, d.token_budget, \
     (SELECT CAST(COALESCE(SUM(r.input_tokens + r.output_tokens + r.cache_creation_tokens + r.cache_read_tokens), 0) AS BIGINT) \
      FROM usage_records r WHERE r.deal_id = d.id) \
     FROM deals d JOIN users u ON u.id = d.created_by";

fn deal_from_row(row: DealTuple, budget: &BudgetSettings) -> Deal {
    let (id, name, address, property_type, asking_price, notes, created_by, updated_at, limit, used) = row;
    let meter = Meter { used: used.max(0) as u64, reserved: 0, limit: limit.map_or(budget.deal_tokens, |l| l.max(0) as u64) };
    Deal {
        id,
        name,
        address,
        property_type,
        asking_price,
        notes,
        created_by,
        updated_on: utc_date(updated_at),
        budget: DealBudget { used: meter.used, limit: meter.limit, state: meter.state(budget.warn_ratio) },
    }
}

pub async fn list(db: &Db, budget: &BudgetSettings) -> Result<Vec<Deal>, AppError> {
    let rows: Vec<DealTuple> = sqlx::query_as(&format!("{SELECT_DEAL} ORDER BY d.updated_at DESC, d.id DESC"))
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(|row| deal_from_row(row, budget)).collect())
}

pub async fn get(db: &Db, id: i64, budget: &BudgetSettings) -> Result<Option<Deal>, AppError> {
    let row: Option<DealTuple> = sqlx::query_as(&format!("{SELECT_DEAL} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|row| deal_from_row(row, budget)))
}

pub async fn create(db: &Db, created_by: i64, input: &DealInput) -> Result<i64, AppError> {
    let now = now_millis();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deals (name, address, property_type, asking_price, notes, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(&input.name)
    .bind(&input.address)
    .bind(&input.property_type)
    .bind(input.asking_price)
    .bind(&input.notes)
    .bind(created_by)
    .bind(now)
    .fetch_one(&db.pool)
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
    .bind(&input.property_type)
    .bind(input.asking_price)
    .bind(&input.notes)
    .bind(now_millis())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn count(db: &Db) -> Result<i64, AppError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deals").fetch_one(&db.pool).await?;
    Ok(n)
}
