//! Budget limits in the database: the admin overrides kept on the user's and the deal's
//! rows (absent means the configured default applies).

use sqlx::AnyConnection;

use crate::db::{AnyQuery, Db, Engine, StatementBatch};
use crate::error::AppError;

/// The overrides that apply to one call; None means the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overrides {
    pub user_daily: Option<u64>,
    /// Micro-dollars per calendar month.
    pub user_monthly: Option<u64>,
    pub deal: Option<u64>,
    /// The user's own setting of budget-aware model choice (None: the firm's applies).
    pub model_choice: Option<bool>,
}

/// Locks the user's and the deal's rows on PostgreSQL for the rest of the caller's
/// transaction, reads their overrides and counts the request in `periods`, in one
/// statement, so concurrent admissions for the same budgets — from any number of
/// instances — are serialised: row locks, in the order user → deal everywhere (the
/// deal's is taken only once the user's is held), as strong as an update of the rows
/// (`FOR NO KEY UPDATE`: rows that only reference them are not held up) and without
/// writing a new version of either. The counts are exact whatever the snapshot: an
/// upsert counts on the latest version of its row. None when the user or the deal does
/// not exist (nothing is counted then). (SQLite's admission needs no lock of its own:
/// its transaction holds the database's write lock from `BEGIN IMMEDIATE`; see
/// `admission_checks`.)
async fn lock_and_count(conn: &mut AnyConnection, user_id: i64, deal_id: i64, periods: &[&str], now: i64) -> Result<Option<(Overrides, Vec<u64>)>, sqlx::Error> {
    use sqlx::Row;
    let sql = lock_and_count_sql(periods.len());
    let rows = bind_count_request(sqlx::query(&sql), user_id, periods, now).bind(deal_id).fetch_all(&mut *conn).await?;
    // Each row: the overrides (as `READ_OVERRIDES` returns them), then a period's count.
    let Some(overrides) = overrides_of(rows.first())? else { return Ok(None) };
    let counted = rows.iter().map(|row| Ok((row.try_get(4)?, row.try_get(5)?))).collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?;
    Ok(Some((overrides, counts_in(periods, &counted))))
}

/// `lock_and_count`'s statement for `periods` periods: parameters as
/// `count_request_sql`'s, then the deal.
fn lock_and_count_sql(periods: usize) -> String {
    let values: Vec<String> = (0..periods).map(|i| format!("(${})", i + 3)).collect();
    format!(
        "WITH u AS (SELECT daily_token_budget, monthly_budget_microusd, model_choice FROM users WHERE id = $1 FOR NO KEY UPDATE), \
         d AS (SELECT token_budget FROM deals WHERE id = ${deal} AND EXISTS (SELECT 1 FROM u) FOR NO KEY UPDATE), \
         c AS (INSERT INTO request_counters (user_id, period, requests, created_at) \
         SELECT $1, p.period, 1, $2 FROM (VALUES {values}) AS p (period) WHERE EXISTS (SELECT 1 FROM d) \
         ON CONFLICT (user_id, period) DO UPDATE SET requests = request_counters.requests + 1 RETURNING period, requests) \
         SELECT u.daily_token_budget, u.monthly_budget_microusd, u.model_choice, d.token_budget, c.period, c.requests FROM u, d, c",
        deal = periods + 3,
        values = values.join(", "),
    )
}

/// Locks the firm's row for the rest of the caller's transaction: admissions that a
/// firm-wide cap applies to are serialised across every instance. Taken before the
/// user's and the deal's rows (lock order firm → user → deal). Nothing to do on SQLite,
/// whose write transactions each hold the whole database (see `admission_checks`).
pub async fn lock_firm(conn: &mut AnyConnection, engine: Engine) -> Result<(), sqlx::Error> {
    if engine == Engine::Postgres {
        sqlx::query("SELECT n FROM firm_lock WHERE id = 1 FOR NO KEY UPDATE").execute(conn).await?;
    }
    Ok(())
}

/// A user's daily and monthly overrides and model choice, as stored.
type UserRow = (Option<i64>, Option<i64>, Option<i64>);

fn user_overrides((daily, monthly, choice): UserRow, deal: Option<u64>) -> Overrides {
    Overrides { user_daily: daily.map(non_negative), user_monthly: monthly.map(non_negative), deal, model_choice: choice.map(|c| c != 0) }
}

fn non_negative(v: i64) -> u64 {
    v.max(0) as u64
}

/// The overrides for a user and a deal, without locking. None when the deal does not exist.
pub async fn read_overrides(conn: &mut AnyConnection, user_id: i64, deal_id: i64) -> Result<Option<Overrides>, sqlx::Error> {
    let row = sqlx::query(READ_OVERRIDES).bind(user_id).bind(deal_id).fetch_optional(&mut *conn).await?;
    overrides_of(row.as_ref())
}

/// `read_overrides`' statement: parameters the user and the deal.
const READ_OVERRIDES: &str =
    "SELECT u.daily_token_budget, u.monthly_budget_microusd, u.model_choice, d.token_budget FROM users u JOIN deals d ON d.id = $2 WHERE u.id = $1";

fn overrides_of(row: Option<&sqlx::any::AnyRow>) -> Result<Option<Overrides>, sqlx::Error> {
    use sqlx::FromRow;
    let Some(row) = row else { return Ok(None) };
    let (daily, monthly, choice, deal) = <(Option<i64>, Option<i64>, Option<i64>, Option<i64>)>::from_row(row)?;
    Ok(Some(user_overrides((daily, monthly, choice), deal.map(non_negative))))
}

/// What an admission checks in its transaction: the user's and the deal's overrides,
/// their rows locked (None when the deal does not exist), the request counted in
/// `periods` (`count_request_sql`), and the standing of every budget the call counts in
/// (`usage::store::standing`). On SQLite the transaction's write lock, taken at BEGIN
/// IMMEDIATE, already holds the rows: the overrides are read (`read_overrides`) and the
/// three statements go as one batch, writing no page to lock. On PostgreSQL the rows
/// are locked and the request counted in one statement (`lock_and_count`), and the
/// standing is read in a statement after the locks are held, so it sees what the last
/// holder committed.
pub async fn admission_checks(
    conn: &mut AnyConnection,
    engine: Engine,
    user_id: i64,
    deal_id: i64,
    periods: &[&str],
    day: &str,
    now: i64,
) -> Result<Option<(Overrides, Vec<u64>, crate::usage::store::Standing)>, sqlx::Error> {
    if engine == Engine::Postgres {
        let Some((overrides, counts)) = lock_and_count(conn, user_id, deal_id, periods, now).await? else { return Ok(None) };
        let standing = crate::usage::store::standing(conn, user_id, deal_id, day, now).await?;
        return Ok(Some((overrides, counts, standing)));
    }
    let standing = crate::usage::store::StandingQuery::new(user_id, deal_id, day, now);
    let batch = StatementBatch::default()
        .then(READ_OVERRIDES, 2)
        .then(&count_request_sql(periods.len()), 2 + periods.len())
        .then(&standing.sql, standing.params);
    let rows = batch
        .fetch(conn, |query| standing.bind(bind_count_request(query.bind(user_id).bind(deal_id), user_id, periods, now)))
        .await?;
    let Some(overrides) = overrides_of(rows[0].first())? else { return Ok(None) };
    Ok(Some((overrides, counts_of(periods, &rows[1])?, standing.read(&rows[2])?)))
}

/// The limits an admin saved (`stored_limits`), the overrides for a user and a deal
/// (`read_overrides`: None when either does not exist) and, when both exist, the
/// standing of every budget a call of theirs counts in (`usage::store::standing`): what
/// a budget's status is decided from. One statement: the standing's rows, each with
/// the limits and the overrides beside it.
pub async fn limits_and_standing(
    conn: &mut AnyConnection,
    user_id: i64,
    deal_id: i64,
    day: &str,
    now: i64,
) -> Result<(Option<String>, Option<(Overrides, crate::usage::store::Standing)>), sqlx::Error> {
    use sqlx::Row;
    let standing = crate::usage::store::StandingQuery::new(user_id, deal_id, day, now);
    let sql = format!(
        "SELECT s.scope, s.scope_id, s.period, s.tokens, s.cost_microusd, \
         l.value, u.id, d.id, u.daily_token_budget, u.monthly_budget_microusd, u.model_choice, d.token_budget \
         FROM ({}) s LEFT JOIN limit_settings l ON l.name = 'limits' LEFT JOIN users u ON u.id = ${} LEFT JOIN deals d ON d.id = ${}",
        standing.sql, standing.user_param, standing.deal_param
    );
    let rows = standing.bind(sqlx::query(&sql)).fetch_all(conn).await?;
    // The standing has a row at least for each of its sums of reservations.
    let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    let stored: Option<String> = row.try_get(5)?;
    let (user, deal): (Option<i64>, Option<i64>) = (row.try_get(6)?, row.try_get(7)?);
    if user.is_none() || deal.is_none() {
        return Ok((stored, None));
    }
    let (daily, monthly, choice, budget) = (row.try_get(8)?, row.try_get(9)?, row.try_get(10)?, row.try_get::<Option<i64>, _>(11)?);
    let overrides = user_overrides((daily, monthly, choice), budget.map(non_negative));
    Ok((stored, Some((overrides, standing.read(&rows)?))))
}

/// A user's own overrides (no deal's), without locking; None when there is no such user.
pub async fn read_user_overrides(conn: &mut AnyConnection, user_id: i64) -> Result<Option<Overrides>, sqlx::Error> {
    let user: Option<UserRow> = sqlx::query_as("SELECT daily_token_budget, monthly_budget_microusd, model_choice FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(user.map(|user| user_overrides(user, None)))
}

/// What an admission reads before its transaction, in one statement: the stored prices'
/// version (`prices::store::version`), the limits an admin saved (`stored_limits`), and
/// the user's own overrides (None when there is no such user).
pub async fn admission_reads(conn: &mut AnyConnection, user_id: i64) -> Result<(i64, Option<String>, Option<Overrides>), sqlx::Error> {
    let (version, limits, user, daily, monthly, choice): (i64, Option<String>, Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT CAST((SELECT COALESCE(MAX(id), 0) FROM model_prices) AS BIGINT), \
         (SELECT value FROM limit_settings WHERE name = 'limits'), \
         u.id, u.daily_token_budget, u.monthly_budget_microusd, u.model_choice \
         FROM (SELECT 1 AS one) x LEFT JOIN users u ON u.id = $1",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok((version, limits, user.map(|_| user_overrides((daily, monthly, choice), None))))
}

/// The limits an admin saved on /admin/limits (a JSON document), if any.
pub async fn stored_limits(conn: &mut AnyConnection) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM limit_settings WHERE name = 'limits'").fetch_optional(conn).await?;
    Ok(row.map(|(v,)| v))
}

/// Saves the limits an admin set (replacing earlier ones), or with None goes back to
/// the configured ones.
pub async fn save_limits(conn: &mut AnyConnection, json: Option<&str>, by: i64, now: i64) -> Result<(), sqlx::Error> {
    match json {
        Some(json) => {
            sqlx::query(
                "INSERT INTO limit_settings (name, value, updated_by, updated_at) VALUES ('limits', $1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .bind(json)
            .bind(by)
            .bind(now)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM limit_settings WHERE name = 'limits'").execute(conn).await?;
        }
    }
    Ok(())
}

/// Calls a user has started in a period (`minute:N`, `day:YYYY-MM-DD`).
pub async fn requests_in(conn: &mut AnyConnection, user_id: i64, periods: &[&str]) -> Result<Vec<u64>, sqlx::Error> {
    let mut counts = Vec::with_capacity(periods.len());
    for period in periods {
        let row: Option<(i64,)> = sqlx::query_as("SELECT requests FROM request_counters WHERE user_id = $1 AND period = $2")
            .bind(user_id)
            .bind(*period)
            .fetch_optional(&mut *conn)
            .await?;
        counts.push(row.map_or(0, |(n,)| n.max(0) as u64));
    }
    Ok(counts)
}

/// The statement that counts one more call in each of `periods` periods and returns the
/// counts (in the admission's transaction: a refused call's count is rolled back with
/// it): parameters the user, now, then each period.
fn count_request_sql(periods: usize) -> String {
    let values: Vec<String> = (0..periods).map(|i| format!("($1, ${}, 1, $2)", i + 3)).collect();
    format!(
        "INSERT INTO request_counters (user_id, period, requests, created_at) VALUES {} \
         ON CONFLICT (user_id, period) DO UPDATE SET requests = request_counters.requests + 1 RETURNING period, requests",
        values.join(", ")
    )
}

fn bind_count_request<'q>(query: AnyQuery<'q>, user_id: i64, periods: &[&'q str], now: i64) -> AnyQuery<'q> {
    periods.iter().fold(query.bind(user_id).bind(now), |query, period| query.bind(*period))
}

/// The counts `count_request_sql`'s statement returned, in the order of `periods`.
fn counts_of(periods: &[&str], rows: &[sqlx::any::AnyRow]) -> Result<Vec<u64>, sqlx::Error> {
    use sqlx::FromRow;
    let counted = rows.iter().map(<(String, i64)>::from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(counts_in(periods, &counted))
}

/// The counts of `periods`, in their order, from (period, count) pairs (0 where none).
fn counts_in(periods: &[&str], counted: &[(String, i64)]) -> Vec<u64> {
    periods.iter().map(|p| counted.iter().find(|(period, _)| period == p).map_or(0, |(_, n)| (*n).max(0) as u64)).collect()
}

/// Forgets request counts older than `before` (their windows are long over).
pub async fn purge_request_counts(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM request_counters WHERE created_at < $1").bind(before).execute(&mut *db.writer().await?).await?;
    Ok(done.rows_affected())
}

/// Every deal's override, by deal id.
pub async fn deal_limits(db: &Db) -> Result<Vec<(i64, Option<u64>)>, AppError> {
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as("SELECT id, token_budget FROM deals").fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(id, limit)| (id, limit.map(non_negative))).collect())
}

/// Every analyst's daily override, by user id (admins have no daily budget).
pub async fn analyst_daily_limits(db: &Db) -> Result<Vec<(i64, Option<u64>)>, AppError> {
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as("SELECT id, daily_token_budget FROM users WHERE role = 'analyst'").fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(id, limit)| (id, limit.map(non_negative))).collect())
}

/// Every active analyst's email and monthly override (micro-dollars), by user id.
pub async fn analyst_monthly_limits(db: &Db) -> Result<Vec<(i64, String, Option<u64>)>, AppError> {
    let rows: Vec<(i64, String, Option<i64>)> =
        sqlx::query_as("SELECT id, email, monthly_budget_microusd FROM users WHERE role = 'analyst' AND active = 1 ORDER BY email").fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(id, email, limit)| (id, email, limit.map(non_negative))).collect())
}

/// Every deal's name and lifetime override (tokens), by deal id.
pub async fn named_deal_limits(db: &Db) -> Result<Vec<(i64, String, Option<u64>)>, AppError> {
    let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as("SELECT id, name, token_budget FROM deals ORDER BY name").fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(id, name, limit)| (id, name, limit.map(non_negative))).collect())
}

/// Which budget override an admin sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override {
    UserDaily,
    UserMonthly,
    /// Budget-aware model choice for one user: NULL follows the firm, 0 off, 1 on.
    UserModelChoice,
    Deal,
}

/// An override's current value and what it belongs to (the user's email or the deal's
/// name), or None when there is no such user or deal.
pub async fn current_override(conn: &mut AnyConnection, which: Override, id: i64) -> Result<Option<(Option<i64>, String)>, sqlx::Error> {
    let sql = match which {
        Override::UserDaily => "SELECT daily_token_budget, email FROM users WHERE id = $1",
        Override::UserMonthly => "SELECT monthly_budget_microusd, email FROM users WHERE id = $1",
        Override::UserModelChoice => "SELECT model_choice, email FROM users WHERE id = $1",
        Override::Deal => "SELECT token_budget, name FROM deals WHERE id = $1",
    };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// Sets (or with None, clears) an override; false when no such user or deal exists.
pub async fn set_override(conn: &mut AnyConnection, which: Override, id: i64, value: Option<i64>) -> Result<bool, sqlx::Error> {
    let sql = match which {
        Override::UserDaily => "UPDATE users SET daily_token_budget = $1 WHERE id = $2",
        Override::UserMonthly => "UPDATE users SET monthly_budget_microusd = $1 WHERE id = $2",
        Override::UserModelChoice => "UPDATE users SET model_choice = $1 WHERE id = $2",
        Override::Deal => "UPDATE deals SET token_budget = $1 WHERE id = $2",
    };
    let done = sqlx::query(sql).bind(value).bind(id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}
