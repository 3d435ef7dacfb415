//! Every query over the ledger's tables — `usage_records`, their daily aggregates and
//! per-dimension rollups, the running counters per budget scope, and the reservations of
//! calls in flight. Nothing else in the app reads or writes them.
//!
//! A record is written with its aggregates and counters in one transaction, so the
//! three always agree (`check` proves it). Budget tokens are all input (cache writes and
//! reads included) plus output: `TokenUsage::budget_tokens`, computed once per record
//! and kept in the counters, so no query sums token columns for a budget.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{CounterKey, Dimension, ReplyUsage, Window};
use crate::claude::pricing::TokenUsage;
use crate::claude::recorder::{ReplyInsert, SqlArg};
use crate::db::{AnyQuery, Db};

/// The sums every aggregate row keeps, in column order.
pub const SUM_COLUMNS: [&str; 10] = [
    "calls",
    "failed_calls",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "cost_microusd",
    "default_priced_calls",
    "unknown_usage_calls",
    "savings_microusd",
];

/// Aggregate sums, in `SUM_COLUMNS` order.
pub type Sums = [i64; 10];

/// One usage record, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRecord {
    pub user_id: i64,
    pub deal_id: Option<i64>,
    pub operation: String,
    pub model: String,
    pub usage: TokenUsage,
    pub estimated_input_tokens: u64,
    pub cost_microusd: i64,
    /// Priced at the default rates: the model has no price.
    pub default_price: bool,
    /// The model the call would have used without budget-aware model choice (empty when
    /// the choice did not change it), and what the cheaper model saved on this usage.
    pub requested_model: String,
    pub savings_microusd: i64,
    pub latency_ms: u64,
    pub outcome: String,
    pub request_id: Option<String>,
    pub usage_unknown: bool,
    /// The analyst stopped the streamed reply; its usage is what was written until then.
    pub stopped: bool,
    pub created_at: i64,
    /// `YYYY-MM-DD` of `created_at` in `time.zone`.
    pub day: String,
}

impl NewRecord {
    pub fn sums(&self) -> Sums {
        let u = &self.usage;
        [
            1,
            i64::from(self.outcome != "ok"),
            u.input_tokens as i64,
            u.output_tokens as i64,
            u.cache_creation_input_tokens as i64,
            u.cache_read_input_tokens as i64,
            self.cost_microusd,
            i64::from(self.default_price),
            i64::from(self.usage_unknown),
            self.savings_microusd,
        ]
    }

    /// The running counters this record adds to.
    pub fn counters(&self) -> Vec<CounterKey> {
        CounterKey::of_record(self.user_id, self.deal_id, self.created_at, &self.day)
    }
}

fn aggregate_upsert(params: &mut Params, table: &str, key_columns: &[&str], rows: usize, gate: Option<&str>) -> String {
    let columns: Vec<&str> = key_columns.iter().copied().chain(SUM_COLUMNS).collect();
    let adds: Vec<String> = SUM_COLUMNS.iter().map(|c| format!("{c} = {table}.{c} + excluded.{c}")).collect();
    let values = params.rows(rows, columns.len());
    let columns = columns.join(", ");
    format!(
        "INSERT INTO {table} ({columns}) {} ON CONFLICT ({}) DO UPDATE SET {}",
        gated_values(&values, &columns, gate),
        key_columns.join(", "),
        adds.join(", ")
    )
}

/// An insert's rows: `VALUES rows`, or — with a `gate` — those rows only where the gate
/// holds (`SELECT * FROM (VALUES rows) AS v (columns) WHERE gate`).
fn gated_values(rows: &str, columns: &str, gate: Option<&str>) -> String {
    match gate {
        Some(gate) => format!("SELECT * FROM (VALUES {rows}) AS v ({columns}) WHERE {gate}"),
        None => format!("VALUES {rows}"),
    }
}

/// The `VALUES` list of `rows` rows of `width` parameters each, bound in order.
fn values(anonymous: bool, rows: usize, width: usize) -> String {
    Params { anonymous, written: 0 }.rows(rows, width)
}

/// The parameters of SQL being written, bound in the order they are written. On SQLite
/// they are anonymous (`?`): SQLite finds a numbered one (`$N`) by a linear search of
/// the statement's parameter names on every bind, so binding grows with the square of
/// the count (1,000 records, 20,000 parameters: 1.1 s); anonymous ones bind by position,
/// and across the statements of a batch in turn. On PostgreSQL they are numbered on
/// from the last written.
struct Params {
    anonymous: bool,
    written: usize,
}

impl Params {
    fn on(conn: &AnyConnection) -> Params {
        Params { anonymous: anonymous(conn), written: 0 }
    }

    /// `width` parameters, separated by commas.
    fn list(&mut self, width: usize) -> String {
        let list: Vec<String> = (1..=width).map(|k| if self.anonymous { "?".to_string() } else { format!("${}", self.written + k) }).collect();
        self.written += width;
        list.join(", ")
    }

    /// `rows` bracketed rows of `width` parameters each.
    fn rows(&mut self, rows: usize, width: usize) -> String {
        (0..rows).map(|_| format!("({})", self.list(width))).collect::<Vec<_>>().join(", ")
    }
}

/// Whether `values` should write anonymous parameters on this connection.
fn anonymous(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// `($first+1, …, $first+count)`.
pub fn placeholders(first: usize, count: usize) -> String {
    let params: Vec<String> = (1..=count).map(|k| format!("${}", first + k)).collect();
    format!("({})", params.join(", "))
}

/// The columns of a usage record as written, in the order `bind_record` binds them.
const RECORD_COLUMNS: &str = "user_id, deal_id, operation, model, input_tokens, output_tokens, cache_creation_tokens, \
     cache_read_tokens, estimated_input_tokens, cost_microusd, default_price, latency_ms, outcome, request_id, \
     usage_unknown, created_at, cache_creation_1h_tokens, requested_model, savings_microusd, stopped";
const RECORD_WIDTH: usize = 20;

/// Binds one record's `RECORD_COLUMNS`.
fn bind_record<'q>(query: AnyQuery<'q>, r: &'q NewRecord) -> AnyQuery<'q> {
    query
        .bind(r.user_id)
        .bind(r.deal_id)
        .bind(r.operation.as_str())
        .bind(r.model.as_str())
        .bind(r.usage.input_tokens as i64)
        .bind(r.usage.output_tokens as i64)
        .bind(r.usage.cache_creation_input_tokens as i64)
        .bind(r.usage.cache_read_input_tokens as i64)
        .bind(r.estimated_input_tokens as i64)
        .bind(r.cost_microusd)
        .bind(i64::from(r.default_price))
        .bind(r.latency_ms as i64)
        .bind(r.outcome.as_str())
        .bind(r.request_id.as_deref())
        .bind(i64::from(r.usage_unknown))
        .bind(r.created_at)
        .bind(r.usage.cache_creation_1h_input_tokens as i64)
        .bind(r.requested_model.as_str())
        .bind(r.savings_microusd)
        .bind(i64::from(r.stopped))
}

/// Writes a record with its daily aggregate, its rollups and its counters, on a
/// connection the caller has opened a transaction on. Returns the record's id.
pub async fn insert_record(conn: &mut AnyConnection, r: &NewRecord) -> Result<i64, sqlx::Error> {
    let written = write_record(conn, r, None, None, None).await?;
    written.map(|(id, _)| id).ok_or_else(|| sqlx::Error::Protocol("the record's insert returned no id".into()))
}

/// Writes a record with its daily aggregate, its rollups and its counters, and deletes
/// the reservation it settles (`Claim::Settles`), in one round trip: on SQLite the
/// statements go as one batch (the driver runs them in one call to its connection's
/// thread) on a connection the caller has opened a transaction on; on PostgreSQL they
/// are one statement of data-modifying CTEs, every one of them gated on the record's
/// insert, so it needs no transaction of its own. With `reply` (PostgreSQL only), the
/// operation's row for the reply is inserted in the same statement, with the record's
/// id. Returns the record's id, and the id of `reply`'s row.
///
/// With `priced_with` (the newest stored price's id, as `prices::store::version` reads
/// it, when the book that priced the record was read) the record is written only if no
/// newer price is stored — the insert itself checks, so pricing costs no statement of
/// its own. With a `claim`, the record names what it claims — the reservation it
/// settles, or its attempt of the call holding a reservation — and is written only if no
/// other record names it: written once, whether the write is sent again after its
/// answer was lost or the reservation expired and was settled (`settle_expired`) while
/// its call ran. None says one of the two checks failed (`claimed_by` tells which):
/// nothing was written on PostgreSQL; on SQLite the caller must roll the transaction
/// back (the aggregates and the delete are not conditional there).
pub async fn write_record(
    conn: &mut AnyConnection,
    r: &NewRecord,
    priced_with: Option<i64>,
    claim: Option<Claim>,
    reply: Option<&ReplyInsert>,
) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
    use sqlx::Row;
    let mut params = Params::on(conn);
    assert!(reply.is_none() || !params.anonymous, "a reply goes with its record's statement on PostgreSQL only");
    let mut columns = RECORD_COLUMNS.to_string();
    let mut values = params.list(RECORD_WIDTH);
    // The record names its claim; a unique index keeps it the only one. A record naming
    // what another names already is not written: a concurrent one is waited for
    // (PostgreSQL), then nothing is written if it commits.
    let once = match claim {
        Some(Claim::Settles(_)) => {
            columns.push_str(", reservation_id");
            values = format!("{values}, {}", params.list(1));
            " ON CONFLICT (reservation_id) WHERE reservation_id IS NOT NULL DO NOTHING"
        }
        Some(Claim::Attempt { .. }) => {
            columns.push_str(", attempt_of, attempt_number");
            values = format!("{values}, {}", params.list(2));
            " ON CONFLICT (attempt_of, attempt_number) WHERE attempt_of IS NOT NULL DO NOTHING"
        }
        None => "",
    };
    let settles = claim.and_then(Claim::settles);
    let record = match priced_with {
        Some(_) => format!(
            "INSERT INTO usage_records ({columns}) SELECT {values} \
             WHERE (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM model_prices) = {}{once} RETURNING id",
            params.list(1)
        ),
        None => format!("INSERT INTO usage_records ({columns}) VALUES ({values}){once} RETURNING id"),
    };
    // On PostgreSQL each statement after the record's writes only if the record was.
    let gate = (!params.anonymous).then_some("EXISTS (SELECT 1 FROM record)");
    let (daily, rollups, counters) = aggregates_of(r);
    let mut statements = vec![record, aggregate_upsert(&mut params, "usage_daily", &DAILY_KEY_COLUMNS, daily.len(), gate)];
    if !rollups.is_empty() {
        statements.push(aggregate_upsert(&mut params, "usage_rollup", &ROLLUP_KEY_COLUMNS, rollups.len(), gate));
    }
    if !counters.is_empty() {
        statements.push(counters_upsert(&mut params, counters.len(), gate));
    }
    if settles.is_some() {
        let id = params.list(1);
        statements.push(match gate {
            Some(gate) => format!("DELETE FROM usage_reservations WHERE id = {id} AND {gate}"),
            None => format!("DELETE FROM usage_reservations WHERE id = {id}"),
        });
    }
    let sql = if params.anonymous {
        statements.join(";\n")
    } else {
        let (record, rest) = statements.split_first().expect("the record's statement");
        let mut parts: Vec<String> = rest.iter().enumerate().map(|(i, s)| format!("s{i} AS ({s})")).collect();
        if let Some(reply) = reply {
            parts.push(format!("reply AS ({})", crate::db::renumbered(&reply.sql, reply.args.len(), params.written)));
        }
        let reply_id = if reply.is_some() { "(SELECT id FROM reply)" } else { "CAST(NULL AS BIGINT)" };
        format!("WITH record AS ({record}), {} SELECT id, {reply_id} FROM record", parts.join(", "))
    };
    let mut query = bind_record(sqlx::query(&sql), r);
    match claim {
        Some(Claim::Settles(reservation)) => query = query.bind(reservation),
        Some(Claim::Attempt { reservation, number }) => query = query.bind(reservation).bind(i64::from(number)),
        None => {}
    }
    if let Some(version) = priced_with {
        query = query.bind(version);
    }
    query = bind_counters(bind_rollups(bind_daily(query, &daily), &rollups), &counters);
    if let Some(reservation) = settles {
        query = query.bind(reservation);
    }
    for arg in reply.map_or(&[][..], |reply| &reply.args) {
        query = match arg {
            SqlArg::Int(v) => query.bind(*v),
            SqlArg::Text(v) => query.bind(v.as_str()),
        };
    }
    // Every row, so that every statement of the batch runs (one row: the record's id).
    let rows = query.fetch_all(&mut *conn).await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let reply_id = if params.anonymous { None } else { row.try_get(1)? };
    Ok(Some((row.try_get(0)?, reply_id)))
}

/// The aggregate rows and counters one record adds to.
fn aggregates_of(r: &NewRecord) -> ([(DailyKey, Sums); 1], Vec<(RollupKey, Sums)>, Vec<(CounterKey, [i64; 3])>) {
    let sums = r.sums();
    let deal = r.deal_id.unwrap_or(0);
    let daily_key = DailyKey { day: r.day.clone(), user_id: r.user_id, deal_id: deal, model: r.model.clone(), operation: r.operation.clone() };
    let rollups = RollupKey::of(&r.day, r.user_id, deal, &r.model, &r.operation).into_iter().map(|k| (k, sums)).collect();
    let tokens = r.usage.budget_tokens() as i64;
    let counters = r.counters().into_iter().map(|k| (k, [tokens, r.cost_microusd, 1])).collect();
    ([(daily_key, sums)], rollups, counters)
}

/// The key of a `usage_daily` row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DailyKey {
    pub day: String,
    pub user_id: i64,
    /// 0 for "no deal".
    pub deal_id: i64,
    pub model: String,
    pub operation: String,
}

/// The key of a `usage_rollup` row: whose usage it sums (the firm's, scope id 0, or one
/// user's or deal's), a dimension, a day and the dimension's value as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RollupKey {
    pub scope: RollupScope,
    pub scope_id: i64,
    pub dimension: Dimension,
    pub day: String,
    pub key: String,
}

/// Whose usage a rollup row sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RollupScope {
    Firm,
    User,
    Deal,
}

impl RollupScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RollupScope::Firm => "firm",
            RollupScope::User => "user",
            RollupScope::Deal => "deal",
        }
    }
}

impl RollupKey {
    /// The rollups one fine aggregate feeds: the firm's four dimensions, its user's deal,
    /// model and operation, and its deal's user, model and operation.
    pub fn of(day: &str, user_id: i64, deal_id: i64, model: &str, operation: &str) -> [RollupKey; 10] {
        use Dimension::{Deal, Model, Operation, User};
        let key = |scope, scope_id, dimension, key: String| RollupKey { scope, scope_id, dimension, day: day.to_string(), key };
        let (firm, user, deal) = ((RollupScope::Firm, 0), (RollupScope::User, user_id), (RollupScope::Deal, deal_id));
        [
            key(firm.0, firm.1, User, user_id.to_string()),
            key(firm.0, firm.1, Deal, deal_id.to_string()),
            key(firm.0, firm.1, Model, model.to_string()),
            key(firm.0, firm.1, Operation, operation.to_string()),
            key(user.0, user.1, Deal, deal_id.to_string()),
            key(user.0, user.1, Model, model.to_string()),
            key(user.0, user.1, Operation, operation.to_string()),
            key(deal.0, deal.1, User, user_id.to_string()),
            key(deal.0, deal.1, Model, model.to_string()),
            key(deal.0, deal.1, Operation, operation.to_string()),
        ]
    }
}

const DAILY_KEY_COLUMNS: [&str; 5] = ["day", "user_id", "deal_id", "model", "operation"];
const ROLLUP_KEY_COLUMNS: [&str; 5] = ["scope", "scope_id", "dimension", "day", "key"];

/// Adds sums to daily aggregate rows (created when missing).
pub async fn upsert_daily(conn: &mut AnyConnection, rows: &[(DailyKey, Sums)]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = aggregate_upsert(&mut Params::on(conn), "usage_daily", &DAILY_KEY_COLUMNS, rows.len(), None);
    bind_daily(sqlx::query(&sql), rows).execute(conn).await?;
    Ok(())
}

fn bind_daily<'q>(mut query: AnyQuery<'q>, rows: &'q [(DailyKey, Sums)]) -> AnyQuery<'q> {
    for (k, sums) in rows {
        query = query.bind(k.day.as_str()).bind(k.user_id).bind(k.deal_id).bind(k.model.as_str()).bind(k.operation.as_str());
        for value in sums {
            query = query.bind(*value);
        }
    }
    query
}

/// Adds sums to rollup rows (created when missing).
pub async fn upsert_rollups(conn: &mut AnyConnection, rows: &[(RollupKey, Sums)]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = aggregate_upsert(&mut Params::on(conn), "usage_rollup", &ROLLUP_KEY_COLUMNS, rows.len(), None);
    bind_rollups(sqlx::query(&sql), rows).execute(conn).await?;
    Ok(())
}

fn bind_rollups<'q>(mut query: AnyQuery<'q>, rows: &'q [(RollupKey, Sums)]) -> AnyQuery<'q> {
    for (k, sums) in rows {
        query = query.bind(k.scope.as_str()).bind(k.scope_id).bind(k.dimension.as_str()).bind(k.day.as_str()).bind(k.key.as_str());
        for value in sums {
            query = query.bind(*value);
        }
    }
    query
}

/// Adds `[tokens, cost, calls]` to running counters (created when missing).
pub async fn add_to_counters(conn: &mut AnyConnection, rows: &[(CounterKey, [i64; 3])]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = counters_upsert(&mut Params::on(conn), rows.len(), None);
    bind_counters(sqlx::query(&sql), rows).execute(conn).await?;
    Ok(())
}

fn counters_upsert(params: &mut Params, rows: usize, gate: Option<&str>) -> String {
    const COLUMNS: &str = "scope, scope_id, period, tokens, cost_microusd, calls";
    format!(
        "INSERT INTO usage_counters ({COLUMNS}) {} \
         ON CONFLICT (scope, scope_id, period) DO UPDATE SET tokens = usage_counters.tokens + excluded.tokens, \
         cost_microusd = usage_counters.cost_microusd + excluded.cost_microusd, calls = usage_counters.calls + excluded.calls",
        gated_values(&params.rows(rows, 6), COLUMNS, gate)
    )
}

fn bind_counters<'q>(mut query: AnyQuery<'q>, rows: &'q [(CounterKey, [i64; 3])]) -> AnyQuery<'q> {
    for (key, [tokens, cost, calls]) in rows {
        query = query.bind(key.scope).bind(key.scope_id).bind(key.period.as_str()).bind(*tokens).bind(*cost).bind(*calls);
    }
    query
}

/// A reservation to take for a call being admitted.
#[derive(Clone, Debug)]
pub struct NewReservation {
    pub user_id: i64,
    pub deal_id: i64,
    pub operation: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub estimated_input_tokens: u64,
    /// The most the call may cost, in micro-dollars.
    pub cost_microusd: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_reservation(conn: &mut AnyConnection, r: &NewReservation) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO usage_reservations (user_id, deal_id, tokens, operation, model, input_tokens, output_tokens, \
         estimated_input_tokens, created_at, expires_at, cost_microusd) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         RETURNING id",
    )
    .bind(r.user_id)
    .bind(r.deal_id)
    .bind((r.input_tokens + r.output_tokens) as i64)
    .bind(&r.operation)
    .bind(&r.model)
    .bind(r.input_tokens as i64)
    .bind(r.output_tokens as i64)
    .bind(r.estimated_input_tokens as i64)
    .bind(r.created_at)
    .bind(r.expires_at)
    .bind(r.cost_microusd)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Deletes a reservation; false when it was already gone.
pub async fn delete_reservation(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM usage_reservations WHERE id = $1").bind(id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// A reservation as its call reserved it.
#[derive(Clone, Debug)]
pub struct HeldReservation {
    pub user_id: i64,
    pub deal_id: i64,
    pub operation: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub estimated_input_tokens: u64,
    pub created_at: i64,
}

/// Reservation `id`, or None if it is settled or released.
pub async fn reservation(conn: &mut AnyConnection, id: i64) -> Result<Option<HeldReservation>, sqlx::Error> {
    let row: Option<(i64, i64, String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT user_id, deal_id, operation, model, input_tokens, output_tokens, estimated_input_tokens, created_at \
         FROM usage_reservations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(user_id, deal_id, operation, model, input, output, estimated, created_at)| HeldReservation {
        user_id,
        deal_id,
        operation,
        model,
        input_tokens: input.max(0) as u64,
        output_tokens: output.max(0) as u64,
        estimated_input_tokens: estimated.max(0) as u64,
        created_at,
    }))
}

/// What a record claims, which no other record may: the write of a record sent again
/// after its answer was lost then finds the record that holds the claim instead of
/// counting the usage twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The call's last record (or an expired reservation's settlement) settles the
    /// reservation: it is deleted with the record's write.
    Settles(i64),
    /// An attempt of the call holding `reservation`, numbered in its call (1 for the
    /// first), after which the call was retried.
    Attempt { reservation: i64, number: u32 },
}

impl Claim {
    /// The reservation the record settles, if it is the call's last.
    pub fn settles(self) -> Option<i64> {
        match self {
            Claim::Settles(id) => Some(id),
            Claim::Attempt { .. } => None,
        }
    }
}

/// The record that holds `claim`, if one does: for `Claim::Settles`, the record that
/// settled the reservation (on SQLite, read it on the writer's connection: an open batch
/// of writes may hold it).
pub async fn claimed_by(conn: &mut AnyConnection, claim: Claim) -> Result<Option<i64>, sqlx::Error> {
    match claim {
        Claim::Settles(id) => sqlx::query_scalar("SELECT id FROM usage_records WHERE reservation_id = $1").bind(id).fetch_optional(conn).await,
        Claim::Attempt { reservation, number } => {
            sqlx::query_scalar("SELECT id FROM usage_records WHERE attempt_of = $1 AND attempt_number = $2")
                .bind(reservation)
                .bind(i64::from(number))
                .fetch_optional(conn)
                .await
        }
    }
}

/// Ids of reservations expired by `now` (their calls can no longer be alive).
pub async fn expired_reservations(db: &Db, now: i64, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM usage_reservations WHERE expires_at <= $1 ORDER BY id LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Used (recorded) and reserved (by calls in flight) amounts of one budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub used: u64,
    pub reserved: u64,
    /// What the used and reserved amounts cost, in micro-dollars (for a token amount, to
    /// show dollars beside the tokens).
    pub cost_microusd: u64,
}

/// Everything a call is admitted against, read in ONE statement (one snapshot on
/// PostgreSQL, so a call settling meanwhile is counted exactly once: either its
/// reservation or its record). Tokens except where it says micro-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub deal_tokens: Amount,
    pub user_day_tokens: Amount,
    pub user_month_microusd: Amount,
    /// The firm's hour, day and month (`Window::ALL` order).
    pub firm_tokens: [Amount; 3],
    pub firm_microusd: [Amount; 3],
}

pub async fn standing(conn: &mut AnyConnection, user_id: i64, deal_id: i64, day: &str, now: i64) -> Result<Standing, sqlx::Error> {
    let query = StandingQuery::new(user_id, deal_id, day, now);
    let rows = query.bind(sqlx::query(&query.sql)).fetch_all(conn).await?;
    query.read(&rows)
}

/// The one statement `standing` runs, to send alone or in a `StatementBatch`.
pub struct StandingQuery {
    deal: CounterKey,
    user_day: CounterKey,
    user_month: CounterKey,
    firm: [CounterKey; 3],
    user_id: i64,
    deal_id: i64,
    /// Its SQL, with parameters `$1…$params`.
    pub sql: String,
    pub params: usize,
    /// The parameters that hold the user's id and the deal's (a statement built around
    /// this one may name them too).
    pub user_param: usize,
    pub deal_param: usize,
}

impl StandingQuery {
    pub fn new(user_id: i64, deal_id: i64, day: &str, now: i64) -> StandingQuery {
        let firm = Window::ALL.map(|w| CounterKey::firm(w, now, day));
        let keys = 3 + firm.len();
        let matches: Vec<String> = (0..keys).map(|k| format!("(scope = ${} AND scope_id = ${} AND period = ${})", 3 * k + 1, 3 * k + 2, 3 * k + 3)).collect();
        let (user, deal_param) = (3 * keys + 1, 3 * keys + 2);
        // Every reservation holds its budget until it is settled, an expired one too: its
        // settlement (`Ledger::settle_expired`, up to a minute later) charges what it
        // held, so a call admitted into its room would take the budget past its limit.
        let reserved = |filter: &str, tag: &str| {
            format!(
                "SELECT '{tag}', CAST(0 AS BIGINT), '', CAST(COALESCE(SUM(tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cost_microusd), 0) AS BIGINT) \
                 FROM usage_reservations{filter}"
            )
        };
        let sql = format!(
            "SELECT scope, scope_id, period, tokens, cost_microusd FROM usage_counters WHERE {} \
             UNION ALL {} UNION ALL {} UNION ALL {}",
            matches.join(" OR "),
            reserved(&format!(" WHERE deal_id = ${deal_param}"), "reserved:deal"),
            reserved(&format!(" WHERE user_id = ${user}"), "reserved:user"),
            reserved("", "reserved:firm"),
        );
        StandingQuery {
            deal: CounterKey::deal_lifetime(deal_id),
            user_day: CounterKey::user_day(user_id, day),
            user_month: CounterKey::user_month(user_id, day),
            firm,
            user_id,
            deal_id,
            sql,
            params: deal_param,
            user_param: user,
            deal_param,
        }
    }

    fn keys(&self) -> impl Iterator<Item = &CounterKey> {
        [&self.deal, &self.user_day, &self.user_month].into_iter().chain(self.firm.iter())
    }

    /// Binds its arguments, after those `query` holds.
    pub fn bind<'q>(&'q self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for key in self.keys() {
            query = query.bind(key.scope).bind(key.scope_id).bind(key.period.as_str());
        }
        query.bind(self.user_id).bind(self.deal_id)
    }

    /// The standing its rows say.
    pub fn read(&self, rows: &[sqlx::any::AnyRow]) -> Result<Standing, sqlx::Error> {
        use sqlx::FromRow;
        let rows = rows.iter().map(<(String, i64, String, i64, i64)>::from_row).collect::<Result<Vec<_>, _>>()?;
        let n = |v: i64| v.max(0) as u64;
        let find = |key: &CounterKey| rows.iter().find(|r| r.0 == key.scope && r.1 == key.scope_id && r.2 == key.period).map(|r| (n(r.3), n(r.4)));
        let reserved = |tag: &str| rows.iter().find(|r| r.0 == tag).map_or((0, 0), |r| (n(r.3), n(r.4)));
        let (deal_reserved, user_reserved, firm_reserved) = (reserved("reserved:deal"), reserved("reserved:user"), reserved("reserved:firm"));
        let used = |key: &CounterKey| find(key).unwrap_or((0, 0));
        let (deal, user_day, user_month) = (used(&self.deal), used(&self.user_day), used(&self.user_month));
        let firm = self.firm.each_ref().map(used);
        Ok(Standing {
            deal_tokens: Amount { used: deal.0, reserved: deal_reserved.0, cost_microusd: deal.1 + deal_reserved.1 },
            user_day_tokens: Amount { used: user_day.0, reserved: user_reserved.0, cost_microusd: user_day.1 + user_reserved.1 },
            user_month_microusd: Amount { used: user_month.1, reserved: user_reserved.1, cost_microusd: user_month.1 + user_reserved.1 },
            firm_tokens: firm.map(|k| Amount { used: k.0, reserved: firm_reserved.0, cost_microusd: k.1 + firm_reserved.1 }),
            firm_microusd: firm.map(|k| Amount { used: k.1, reserved: firm_reserved.1, cost_microusd: k.1 + firm_reserved.1 }),
        })
    }
}

/// What a counter scope (`user` or `firm`) used on each of `days` (local days): tokens
/// and micro-dollars, in the order of `days`, zero where nothing was counted.
pub async fn daily_counters(db: &Db, scope: &'static str, scope_id: i64, days: &[String]) -> Result<Vec<(u64, u64)>, sqlx::Error> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT period, tokens, cost_microusd FROM usage_counters WHERE scope = $1 AND scope_id = $2 AND period IN {}",
        placeholders(2, days.len())
    );
    let mut query = sqlx::query_as::<_, (String, i64, i64)>(&sql).bind(scope).bind(scope_id);
    let periods: Vec<String> = days.iter().map(|d| format!("day:{d}")).collect();
    for period in &periods {
        query = query.bind(period.as_str());
    }
    let rows = query.fetch_all(&mut db.read().await?).await?;
    let n = |v: i64| v.max(0) as u64;
    Ok(periods.iter().map(|p| rows.iter().find(|r| &r.0 == p).map_or((0, 0), |r| (n(r.1), n(r.2)))).collect())
}

/// A deal's tokens on each local day from `from` to `to` (inclusive), from the daily
/// aggregates; days without use are left out.
pub async fn deal_daily_tokens(db: &Db, deal_id: i64, from: &str, to: &str) -> Result<Vec<u64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT day, CAST(SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens) AS BIGINT) \
         FROM usage_daily WHERE deal_id = $1 AND day >= $2 AND day <= $3 GROUP BY day",
    )
    .bind(deal_id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut db.read().await?)
    .await?;
    Ok(rows.into_iter().map(|(_, t)| t.max(0) as u64).collect())
}

/// Tokens used by every deal over its life, from the counters (one row per deal).
pub async fn deals_used(db: &Db) -> Result<HashMap<i64, u64>, sqlx::Error> {
    counters_of_period(db, "deal", "life").await
}

/// Tokens per scope id of one scope and period (e.g. every user today).
pub async fn counters_of_period(db: &Db, scope: &str, period: &str) -> Result<HashMap<i64, u64>, sqlx::Error> {
    column_of_period(db, scope, period, "tokens").await
}

/// Micro-dollars spent per scope id of one scope and period (e.g. every user this month).
pub async fn spend_of_period(db: &Db, scope: &str, period: &str) -> Result<HashMap<i64, u64>, sqlx::Error> {
    column_of_period(db, scope, period, "cost_microusd").await
}

async fn column_of_period(db: &Db, scope: &str, period: &str, column: &'static str) -> Result<HashMap<i64, u64>, sqlx::Error> {
    let sql = format!("SELECT scope_id, {column} FROM usage_counters WHERE scope = $1 AND period = $2");
    let rows: Vec<(i64, i64)> = sqlx::query_as(&sql).bind(scope).bind(period).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(id, value)| (id, value.max(0) as u64)).collect())
}

/// `(record id, estimated, actual)` input tokens of the latest successful calls of a
/// model and operation whose usage is known, newest first.
pub async fn calibration_samples(conn: &mut AnyConnection, model: &str, operation: &str, limit: i64) -> Result<Vec<(i64, u64, u64)>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, estimated_input_tokens, input_tokens + cache_creation_tokens + cache_read_tokens FROM usage_records \
         WHERE model = $1 AND operation = $2 AND outcome = 'ok' AND usage_unknown = 0 AND estimated_input_tokens > 0 \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(model)
    .bind(operation)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id, e, a)| (id, e.max(0) as u64, a.max(0) as u64)).collect())
}

/// `(estimated, actual)` input tokens of a record `calibration_samples` would read: a
/// call that went well, its usage known, with an estimate.
pub fn calibration_sample(r: &NewRecord) -> Option<(u64, u64)> {
    let u = &r.usage;
    let actual = u.input_tokens.saturating_add(u.cache_creation_input_tokens).saturating_add(u.cache_read_input_tokens);
    (r.outcome == "ok" && !r.usage_unknown && r.estimated_input_tokens > 0).then_some((r.estimated_input_tokens, actual))
}

/// The usage of the given records, for showing beside replies and memos.
pub async fn reply_usage(db: &Db, ids: &[i64]) -> Result<HashMap<i64, ReplyUsage>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, model, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_microusd \
         FROM usage_records WHERE id IN {}",
        placeholders(0, ids.len())
    );
    let mut query = sqlx::query_as::<_, (i64, String, i64, i64, i64, i64, i64)>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&db.pool).await?;
    let n = |v: i64| v.max(0) as u64;
    Ok(rows
        .into_iter()
        .map(|(id, model, input, output, cw, cr, cost)| {
            let usage = ReplyUsage { model, input_tokens: n(input), output_tokens: n(output), cache_creation_input_tokens: n(cw), cache_read_input_tokens: n(cr), cost_microusd: cost };
            (id, usage)
        })
        .collect())
}

/// One row of a usage report: its key as text, its label, and the sums.
pub type ReportRow = (String, Option<String>, Sums);

type RawReportRow = (String, Option<String>, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

fn into_rows(rows: Vec<RawReportRow>) -> Vec<ReportRow> {
    rows.into_iter().map(|(key, label, a, b, c, d, e, f, g, h, i, j)| (key, label, [a, b, c, d, e, f, g, h, i, j])).collect()
}

/// A grouping of a report, in SQL: the key it groups the fine aggregates (`usage_daily`)
/// or a rollup dimension by, and its label, read after grouping from the grouped key
/// `k.key` (so a label's join runs once per group, on the joined table's key).
pub struct Grouping {
    pub daily_key: &'static str,
    pub daily_join: &'static str,
    pub rollup_dimension: Dimension,
    pub rollup_key: &'static str,
    pub rollup_join: &'static str,
    pub label: &'static str,
}

/// `SELECT key, label, sums` over `inner` (grouped by `k.key`, sums `s0`…), labelled
/// through `join`, ordered by the key as text.
fn labelled(inner: &str, join: &str, label: &str) -> String {
    let sums: Vec<String> = (0..SUM_COLUMNS.len()).map(|i| format!("k.s{i}")).collect();
    format!("SELECT CAST(k.key AS TEXT), {label}, {} FROM ({inner}) k {join} ORDER BY 1", sums.join(", "))
}

/// The sums of the fine aggregates or a rollup as `s0`…, for `labelled`.
fn grouped_sums() -> String {
    SUM_COLUMNS.iter().enumerate().map(|(i, c)| format!("CAST(SUM(a.{c}) AS BIGINT) AS s{i}")).collect::<Vec<_>>().join(", ")
}

/// Sums of the fine aggregates between two local days, narrowed to a user and/or a deal.
/// Only the filters given are written, so the (user, day) and (deal, day) indexes serve
/// them; labels are joined after grouping.
pub async fn daily_report(db: &Db, g: &Grouping, from: &str, to: &str, user_id: Option<i64>, deal_id: Option<i64>) -> Result<Vec<ReportRow>, sqlx::Error> {
    let mut conditions = vec!["a.day >= $1".to_string(), "a.day <= $2".to_string()];
    let mut ids = Vec::new();
    for (column, id) in [("a.user_id", user_id), ("a.deal_id", deal_id)] {
        if let Some(id) = id {
            ids.push(id);
            conditions.push(format!("{column} = ${}", 2 + ids.len()));
        }
    }
    let inner = format!(
        "SELECT {key} AS key, {sums} FROM usage_daily a WHERE {} GROUP BY {key}",
        conditions.join(" AND "),
        key = g.daily_key,
        sums = grouped_sums()
    );
    let sql = labelled(&inner, g.daily_join, g.label);
    let mut query = sqlx::query_as::<_, RawReportRow>(&sql).bind(from).bind(to);
    for id in ids {
        query = query.bind(id);
    }
    Ok(into_rows(query.fetch_all(&db.pool).await?))
}

/// Sums of one rollup dimension of one scope (the firm's, id 0, or a user's or a deal's)
/// between two local days: a few rows per day, read through the rollups' primary key.
pub async fn rollup_report(db: &Db, g: &Grouping, scope: RollupScope, scope_id: i64, from: &str, to: &str) -> Result<Vec<ReportRow>, sqlx::Error> {
    let inner = format!(
        "SELECT {key} AS key, {sums} FROM usage_rollup a WHERE a.scope = $1 AND a.scope_id = $2 AND a.dimension = $3 \
         AND a.day >= $4 AND a.day <= $5 GROUP BY {key}",
        key = g.rollup_key,
        sums = grouped_sums()
    );
    let sql = labelled(&inner, g.rollup_join, g.label);
    let rows: Vec<RawReportRow> =
        sqlx::query_as(&sql).bind(scope.as_str()).bind(scope_id).bind(g.rollup_dimension.as_str()).bind(from).bind(to).fetch_all(&db.pool).await?;
    Ok(into_rows(rows))
}

/// A call refused before it reached Claude, on `day` (`YYYY-MM-DD` in `time.zone`):
/// one more on that day's count for the user, deal, operation and kind.
pub async fn insert_refusal(db: &Db, user_id: i64, deal_id: Option<i64>, operation: &str, kind: &str, at: i64, day: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO admission_refusals (day, user_id, deal_id, operation, kind, refused, latest_at) VALUES ($1, $2, $3, $4, $5, 1, $6) \
         ON CONFLICT (day, user_id, deal_id, operation, kind) DO UPDATE SET refused = admission_refusals.refused + 1, latest_at = excluded.latest_at",
    )
    .bind(day)
    .bind(user_id)
    .bind(deal_id.unwrap_or(0))
    .bind(operation)
    .bind(kind)
    .bind(at)
    .execute(&mut *db.writer().await?)
    .await?;
    Ok(())
}

/// Refusals between two local days by user, deal and kind, most first: (user id, email,
/// deal id, deal name, kind, count, latest epoch ms). Absent filters bind NULL.
pub type RefusalGroup = (i64, String, Option<i64>, Option<String>, String, i64, i64);

pub async fn refusals(db: &Db, from: &str, to: &str, user_id: Option<i64>, deal_id: Option<i64>) -> Result<Vec<RefusalGroup>, sqlx::Error> {
    // Only the filters given are written, so the planner can use the day range alone.
    let mut conditions = vec!["r.day >= $1".to_string(), "r.day <= $2".to_string()];
    let mut ids = Vec::new();
    for (column, id) in [("r.user_id", user_id), ("r.deal_id", deal_id)] {
        if let Some(id) = id {
            ids.push(id);
            conditions.push(format!("{column} = ${}", 2 + ids.len()));
        }
    }
    let sql = format!(
        "SELECT r.user_id, u.email, r.deal_id, d.name, r.kind, CAST(SUM(r.refused) AS BIGINT), MAX(r.latest_at) \
         FROM admission_refusals r JOIN users u ON u.id = r.user_id LEFT JOIN deals d ON d.id = r.deal_id \
         WHERE {} GROUP BY r.user_id, u.email, r.deal_id, d.name, r.kind ORDER BY SUM(r.refused) DESC, u.email, d.name, r.kind",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query_as::<_, (i64, String, i64, Option<String>, String, i64, i64)>(&sql).bind(from).bind(to);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(user, email, deal, name, kind, count, latest)| (user, email, (deal != 0).then_some(deal), name, kind, count, latest)).collect())
}

/// The last day each user made a Claude call, from the daily aggregates.
pub async fn last_use_days(db: &Db) -> Result<HashMap<i64, String>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT user_id, MAX(day) FROM usage_daily GROUP BY user_id").fetch_all(&db.pool).await?;
    Ok(rows.into_iter().collect())
}

/// The email of a user, for the dashboard's "showing only" line.
pub async fn user_email(db: &Db, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT email FROM users WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(|(email,)| email))
}

/// The name of a deal, for the dashboard's "showing only" line.
pub async fn deal_name(db: &Db, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM deals WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(|(name,)| name))
}

/// How many usage records there are.
pub async fn record_count(db: &Db) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records").fetch_one(&db.pool).await?;
    Ok(n)
}

/// The user with the most calls, and the deal with the most records and how many.
pub async fn heaviest(db: &Db) -> Result<(Option<i64>, Option<(i64, i64)>), sqlx::Error> {
    let user: Option<(i64,)> = sqlx::query_as("SELECT user_id FROM usage_daily GROUP BY user_id ORDER BY SUM(calls) DESC LIMIT 1").fetch_optional(&db.pool).await?;
    let deal: Option<(i64, i64)> = sqlx::query_as(
        "SELECT deal_id, COUNT(*) FROM usage_records WHERE deal_id IS NOT NULL GROUP BY deal_id ORDER BY COUNT(*) DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    Ok((user.map(|(u,)| u), deal))
}

/// Writes many records at once (the synthetic history of `server usage seed`); their
/// aggregates and counters are written by the caller in bulk.
pub async fn insert_records_bulk(conn: &mut AnyConnection, records: &[NewRecord]) -> Result<(), sqlx::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let sql = format!("INSERT INTO usage_records ({RECORD_COLUMNS}) VALUES {}", values(anonymous(conn), records.len(), RECORD_WIDTH));
    let mut query = sqlx::query(&sql);
    for r in records {
        query = bind_record(query, r);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Recomputes the daily aggregates, the rollups and the running counters from the raw
/// records and compares them with what is stored; returns the number of rows checked,
/// or a description of the first disagreement.
pub async fn check(db: &Db, zone: chrono_tz::Tz) -> Result<usize, String> {
    let (daily, counters) = expected_from_records(db, zone).await?;
    let rollups: HashMap<RollupKey, Sums> = rollups_of(daily.iter().map(|(k, s)| (k.clone(), *s))).into_iter().collect();
    Ok(check_daily(db, &daily).await? + check_rollups(db, &rollups).await? + check_counters(db, &counters).await?)
}

/// What the aggregates and counters must hold, computed from the records alone.
async fn expected_from_records(db: &Db, zone: chrono_tz::Tz) -> Result<(HashMap<DailyKey, Sums>, HashMap<CounterKey, [i64; 3]>), String> {
    use futures::TryStreamExt;
    let mut daily: HashMap<DailyKey, Sums> = HashMap::new();
    let mut counters: HashMap<CounterKey, [i64; 3]> = HashMap::new();
    type Raw = (i64, Option<i64>, String, String, String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let mut raw = sqlx::query_as::<_, Raw>(
        "SELECT user_id, deal_id, model, operation, outcome, input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, cost_microusd, default_price, usage_unknown, created_at, savings_microusd FROM usage_records",
    )
    .fetch(&db.pool);
    while let Some((user, deal, model, operation, outcome, i, o, cw, cr, cost, d, unknown, at, saved)) = raw.try_next().await.map_err(|e| e.to_string())? {
        let day = crate::time::local_day(at, zone);
        let sums = daily.entry(DailyKey { day: day.clone(), user_id: user, deal_id: deal.unwrap_or(0), model, operation }).or_default();
        for (slot, value) in sums.iter_mut().zip([1, i64::from(outcome != "ok"), i, o, cw, cr, cost, d, unknown, saved]) {
            *slot += value;
        }
        let n = |v: i64| v.max(0) as u64;
        let usage = TokenUsage { input_tokens: n(i), output_tokens: n(o), cache_creation_input_tokens: n(cw), cache_read_input_tokens: n(cr), ..Default::default() };
        for key in CounterKey::of_record(user, deal, at, &day) {
            let c = counters.entry(key).or_default();
            c[0] += usage.budget_tokens() as i64;
            c[1] += cost;
            c[2] += 1;
        }
    }
    drop(raw);
    // Adjustments an operator made (`server budget reset`) count in the counters too.
    let adjustments: Vec<(String, i64, String, i64, i64)> =
        sqlx::query_as("SELECT scope, scope_id, period, tokens, cost_microusd FROM usage_adjustments")
            .fetch_all(&db.pool)
            .await
            .map_err(|e| e.to_string())?;
    for (scope, scope_id, period, tokens, cost) in adjustments {
        let key = CounterKey::parse(&scope, scope_id, &period).ok_or_else(|| format!("unknown adjustment {scope}/{scope_id}/{period}"))?;
        let c = counters.entry(key).or_default();
        c[0] += tokens;
        c[1] += cost;
    }
    Ok((daily, counters))
}

/// An operator's change to a budget window's counter (`server budget reset`): records
/// are never changed; the adjustment is kept beside them and added to the counter.
#[derive(Clone, Debug)]
pub struct Adjustment {
    pub key: CounterKey,
    pub tokens: i64,
    pub cost_microusd: i64,
    pub reason: String,
    pub actor: String,
    pub at: i64,
}

/// Writes an adjustment and applies it to its counter, in the caller's transaction.
pub async fn insert_adjustment(conn: &mut AnyConnection, a: &Adjustment) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_adjustments (scope, scope_id, period, tokens, cost_microusd, reason, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.key.scope)
    .bind(a.key.scope_id)
    .bind(a.key.period.as_str())
    .bind(a.tokens)
    .bind(a.cost_microusd)
    .bind(a.reason.as_str())
    .bind(a.actor.as_str())
    .bind(a.at)
    .execute(&mut *conn)
    .await?;
    add_to_counters(conn, &[(a.key.clone(), [a.tokens, a.cost_microusd, 0])]).await
}

/// A counter's tokens, micro-dollars and calls, zero when absent.
pub async fn counter_with_calls(conn: &mut AnyConnection, key: &CounterKey) -> Result<(i64, i64, i64), sqlx::Error> {
    let row: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT tokens, cost_microusd, calls FROM usage_counters WHERE scope = $1 AND scope_id = $2 AND period = $3")
            .bind(key.scope)
            .bind(key.scope_id)
            .bind(key.period.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(row.unwrap_or((0, 0, 0)))
}

/// A counter's tokens and micro-dollars, zero when absent.
pub async fn counter(conn: &mut AnyConnection, key: &CounterKey) -> Result<(i64, i64), sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as("SELECT tokens, cost_microusd FROM usage_counters WHERE scope = $1 AND scope_id = $2 AND period = $3")
        .bind(key.scope)
        .bind(key.scope_id)
        .bind(key.period.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(row.unwrap_or((0, 0)))
}

async fn check_daily(db: &Db, expected: &HashMap<DailyKey, Sums>) -> Result<usize, String> {
    type Row = (String, i64, i64, String, String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let stored: Vec<Row> = sqlx::query_as(&format!(
        "SELECT day, user_id, deal_id, model, operation, {} FROM usage_daily",
        SUM_COLUMNS.join(", ")
    ))
    .fetch_all(&db.pool)
    .await
    .map_err(|e| e.to_string())?;
    if stored.len() != expected.len() {
        return Err(format!("{} daily aggregate rows, but the records make {}", stored.len(), expected.len()));
    }
    for (day, user_id, deal_id, model, operation, a, b, c, d, e, f, g, h, i, j) in &stored {
        let key = DailyKey { day: day.clone(), user_id: *user_id, deal_id: *deal_id, model: model.clone(), operation: operation.clone() };
        let sums = [*a, *b, *c, *d, *e, *f, *g, *h, *i, *j];
        if expected.get(&key) != Some(&sums) {
            return Err(format!("daily aggregate {key:?} is {sums:?}, the records say {:?}", expected.get(&key)));
        }
    }
    Ok(stored.len())
}

async fn check_rollups(db: &Db, expected: &HashMap<RollupKey, Sums>) -> Result<usize, String> {
    type Row = (String, i64, String, String, String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let stored: Vec<Row> =
        sqlx::query_as(&format!("SELECT scope, scope_id, dimension, day, key, {} FROM usage_rollup", SUM_COLUMNS.join(", ")))
            .fetch_all(&db.pool)
            .await
            .map_err(|e| e.to_string())?;
    if stored.len() != expected.len() {
        return Err(format!("{} rollup rows, but the records make {}", stored.len(), expected.len()));
    }
    let by_text: HashMap<(&str, i64, &str, &str, &str), &Sums> =
        expected.iter().map(|(k, s)| ((k.scope.as_str(), k.scope_id, k.dimension.as_str(), k.day.as_str(), k.key.as_str()), s)).collect();
    for (scope, scope_id, dimension, day, key, a, b, c, d, e, f, g, h, i, j) in &stored {
        if by_text.get(&(scope.as_str(), *scope_id, dimension.as_str(), day.as_str(), key.as_str())) != Some(&&[*a, *b, *c, *d, *e, *f, *g, *h, *i, *j]) {
            return Err(format!("rollup ({scope} {scope_id}, {dimension}, {day}, {key}) disagrees with the records"));
        }
    }
    Ok(stored.len())
}

/// Every counter the records imply must match, and no counter may exist without records.
async fn check_counters(db: &Db, expected: &HashMap<CounterKey, [i64; 3]>) -> Result<usize, String> {
    let stored: Vec<(String, i64, String, i64, i64, i64)> =
        sqlx::query_as("SELECT scope, scope_id, period, tokens, cost_microusd, calls FROM usage_counters")
            .fetch_all(&db.pool)
            .await
            .map_err(|e| e.to_string())?;
    for (scope, scope_id, period, tokens, cost, calls) in &stored {
        let key = CounterKey::parse(scope, *scope_id, period).ok_or_else(|| format!("unknown counter {scope}/{scope_id}/{period}"))?;
        if expected.get(&key) != Some(&[*tokens, *cost, *calls]) {
            return Err(format!("counter {scope}/{scope_id}/{period} is {:?}, the records say {:?}", [tokens, cost, calls], expected.get(&key)));
        }
    }
    if stored.len() != expected.len() {
        return Err(format!("{} counters, but the records make {}", stored.len(), expected.len()));
    }
    Ok(stored.len())
}

/// The rollups a set of fine aggregates make.
pub fn rollups_of(daily: impl IntoIterator<Item = (DailyKey, Sums)>) -> Vec<(RollupKey, Sums)> {
    let mut out: HashMap<RollupKey, Sums> = HashMap::new();
    for (k, sums) in daily {
        for key in RollupKey::of(&k.day, k.user_id, k.deal_id, &k.model, &k.operation) {
            let entry = out.entry(key).or_default();
            for (slot, value) in entry.iter_mut().zip(sums) {
                *slot += value;
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_upserts_add_every_sum() {
        let sql = aggregate_upsert(&mut Params { anonymous: false, written: 0 }, "usage_rollup", &ROLLUP_KEY_COLUMNS, 2, None);
        assert!(sql.starts_with("INSERT INTO usage_rollup (scope, scope_id, dimension, day, key, calls,"));
        assert!(sql.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15), ($16,"));
        assert!(sql.contains("ON CONFLICT (scope, scope_id, dimension, day, key) DO UPDATE SET calls = usage_rollup.calls + excluded.calls"));
        assert!(sql.ends_with("savings_microusd = usage_rollup.savings_microusd + excluded.savings_microusd"));
    }

    #[test]
    fn gated_upserts_insert_their_rows_only_where_the_gate_holds() {
        let gate = Some("EXISTS (SELECT 1 FROM record)");
        let sql = counters_upsert(&mut Params { anonymous: false, written: 3 }, 2, gate);
        assert!(sql.starts_with(
            "INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls) SELECT * FROM (VALUES ($4, $5, $6, $7, $8, $9), ($10,"
        ));
        assert!(sql.contains("$15)) AS v (scope, scope_id, period, tokens, cost_microusd, calls) WHERE EXISTS (SELECT 1 FROM record) ON CONFLICT (scope, scope_id, period)"));
        assert!(counters_upsert(&mut Params { anonymous: false, written: 0 }, 1, None).contains("calls) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT"));
    }

    #[test]
    fn anonymous_parameters_are_one_per_value_in_order() {
        let sql = aggregate_upsert(&mut Params { anonymous: true, written: 0 }, "usage_daily", &DAILY_KEY_COLUMNS, 3, None);
        assert_eq!(sql.matches('?').count(), 3 * (5 + SUM_COLUMNS.len()));
        assert!(!sql.contains('$'));
        assert_eq!(values(true, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(values(false, 2, 2), "($1, $2), ($3, $4)");
    }
}
