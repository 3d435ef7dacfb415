//! The alerts log (`budget_alerts`) and the webhook deliveries of its rows.

use sqlx::AnyConnection;

use crate::db::Db;

/// A threshold crossed, to record once per scope, period and level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub scope: &'static str,
    pub scope_id: i64,
    pub period: String,
    /// `50%`, `warning`, `blocked`, `critical`, `stop`, `projected_overrun`.
    pub level: String,
    pub used: i64,
    pub budget: i64,
    /// `microusd` or `tokens`.
    pub unit: &'static str,
    pub at: i64,
}

/// The alerts of `alerts` not yet recorded (one read, no write lock): the ones a call
/// newly crossed. `insert` still keeps each once should two instances race.
pub async fn not_yet_fired(db: &Db, alerts: Vec<NewAlert>) -> Result<Vec<NewAlert>, sqlx::Error> {
    if alerts.is_empty() {
        return Ok(alerts);
    }
    let each: Vec<String> = (0..alerts.len())
        .map(|i| format!("(scope = ${} AND scope_id = ${} AND period = ${} AND level = ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
        .collect();
    let sql = format!("SELECT scope, scope_id, period, level FROM budget_alerts WHERE {}", each.join(" OR "));
    let mut query = sqlx::query_as::<_, (String, i64, String, String)>(&sql);
    for a in &alerts {
        query = query.bind(a.scope).bind(a.scope_id).bind(a.period.as_str()).bind(a.level.as_str());
    }
    let fired = query.fetch_all(&db.pool).await?;
    Ok(alerts
        .into_iter()
        .filter(|a| !fired.iter().any(|(scope, id, period, level)| scope == a.scope && *id == a.scope_id && *period == a.period && *level == a.level))
        .collect())
}

/// Records an alert once: its id when new, None when this threshold already fired this
/// period (on any instance). With `deliver`, a webhook delivery is queued with it.
pub async fn insert(conn: &mut AnyConnection, alert: &NewAlert, deliver: bool) -> Result<Option<i64>, sqlx::Error> {
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO budget_alerts (scope, scope_id, period, level, used, budget, unit, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope, scope_id, period, level) DO NOTHING RETURNING id",
    )
    .bind(alert.scope)
    .bind(alert.scope_id)
    .bind(alert.period.as_str())
    .bind(alert.level.as_str())
    .bind(alert.used)
    .bind(alert.budget)
    .bind(alert.unit)
    .bind(alert.at)
    .fetch_optional(&mut *conn)
    .await?;
    if let (Some((id,)), true) = (id, deliver) {
        sqlx::query("INSERT INTO alert_deliveries (alert_id, next_attempt_at) VALUES ($1, $2)").bind(id).bind(alert.at).execute(&mut *conn).await?;
    }
    Ok(id.map(|(id,)| id))
}

/// One alert with the names it is about, who acknowledged it and its delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub scope: String,
    pub scope_id: i64,
    pub period: String,
    pub level: String,
    pub used: i64,
    pub budget: i64,
    pub unit: String,
    pub created_at: i64,
    /// The user's email or the deal's name.
    pub name: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub attempts: Option<i64>,
    pub last_error: Option<String>,
}

type RawRow = (i64, String, i64, String, String, i64, i64, String, i64, Option<String>, Option<String>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>);

const SELECT: &str = "SELECT a.id, a.scope, a.scope_id, a.period, a.level, a.used, a.budget, a.unit, a.created_at, \
    COALESCE(u.email, d.name), ack.email, a.acknowledged_at, dl.delivered_at, dl.failed_at, dl.attempts, dl.last_error \
    FROM budget_alerts a \
    LEFT JOIN users u ON a.scope = 'user' AND u.id = a.scope_id \
    LEFT JOIN deals d ON a.scope = 'deal' AND d.id = a.scope_id \
    LEFT JOIN users ack ON ack.id = a.acknowledged_by \
    LEFT JOIN alert_deliveries dl ON dl.alert_id = a.id";

fn into_row(r: RawRow) -> AlertRow {
    let (id, scope, scope_id, period, level, used, budget, unit, created_at, name, acknowledged_by, acknowledged_at, delivered_at, failed_at, attempts, last_error) = r;
    AlertRow { id, scope, scope_id, period, level, used, budget, unit, created_at, name, acknowledged_by, acknowledged_at, delivered_at, failed_at, attempts, last_error }
}

/// Which alerts to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Every alert (admins).
    All { unacknowledged_only: bool },
    /// A user's own (their monthly budget's).
    OfUser(i64),
}

/// The newest `limit` alerts, newest first.
pub async fn list(db: &Db, which: Which, limit: i64) -> Result<Vec<AlertRow>, sqlx::Error> {
    let rows: Vec<RawRow> = match which {
        Which::All { unacknowledged_only: false } => sqlx::query_as(&format!("{SELECT} ORDER BY a.id DESC LIMIT $1")).bind(limit).fetch_all(&db.pool).await?,
        Which::All { unacknowledged_only: true } => {
            sqlx::query_as(&format!("{SELECT} WHERE a.acknowledged_at IS NULL ORDER BY a.id DESC LIMIT $1")).bind(limit).fetch_all(&db.pool).await?
        }
        Which::OfUser(user_id) => {
            sqlx::query_as(&format!("{SELECT} WHERE a.scope = 'user' AND a.scope_id = $1 ORDER BY a.id DESC LIMIT $2"))
                .bind(user_id)
                .bind(limit)
                .fetch_all(&db.pool)
                .await?
        }
    };
    Ok(rows.into_iter().map(into_row).collect())
}

/// One alert.
pub async fn get(db: &Db, id: i64) -> Result<Option<AlertRow>, sqlx::Error> {
    let row: Option<RawRow> = sqlx::query_as(&format!("{SELECT} WHERE a.id = $1")).bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(into_row))
}

/// The newest alert of a scope in a period: its level, used and budget.
pub async fn latest(db: &Db, scope: &str, scope_id: i64, period: &str) -> Result<Option<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT level, used, budget FROM budget_alerts WHERE scope = $1 AND scope_id = $2 AND period = $3 ORDER BY id DESC LIMIT 1")
        .bind(scope)
        .bind(scope_id)
        .bind(period)
        .fetch_optional(&db.pool)
        .await
}

/// Marks an alert acknowledged; false when there is no such alert or it already was.
pub async fn acknowledge(conn: &mut AnyConnection, id: i64, by: i64, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE budget_alerts SET acknowledged_by = $1, acknowledged_at = $2 WHERE id = $3 AND acknowledged_at IS NULL")
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Alerts whose delivery is due (not delivered, not given up, not leased to an instance).
pub async fn due_deliveries(db: &Db, now: i64, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT alert_id FROM alert_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
         AND next_attempt_at <= $1 AND lease_until <= $1 ORDER BY alert_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Takes a due delivery for this instance until `lease_until` (one statement, so two
/// instances never both take it); returns the attempt's number, or None if another
/// instance has it.
pub async fn claim(db: &Db, alert_id: i64, now: i64, lease_until: i64) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE alert_deliveries SET lease_until = $1, attempts = attempts + 1 \
         WHERE alert_id = $2 AND delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3 AND lease_until <= $3 \
         RETURNING attempts",
    )
    .bind(lease_until)
    .bind(alert_id)
    .bind(now)
    .fetch_optional(&mut *db.writer().await?)
    .await?;
    Ok(row.map(|(n,)| n))
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered { status: i64 },
    /// Try again at `next_attempt_at`.
    Retry { status: Option<i64>, error: String, next_attempt_at: i64 },
    /// Given up after the last attempt.
    GaveUp { status: Option<i64>, error: String },
}

pub async fn finish_attempt(db: &Db, alert_id: i64, now: i64, attempt: &Attempt) -> Result<(), sqlx::Error> {
    let query = match attempt {
        Attempt::Delivered { status } => sqlx::query("UPDATE alert_deliveries SET delivered_at = $1, last_status = $2, last_error = NULL, lease_until = 0 WHERE alert_id = $3")
            .bind(now)
            .bind(*status)
            .bind(alert_id),
        Attempt::Retry { status, error, next_attempt_at } => {
            sqlx::query("UPDATE alert_deliveries SET next_attempt_at = $1, last_status = $2, last_error = $3, lease_until = 0 WHERE alert_id = $4")
                .bind(*next_attempt_at)
                .bind(*status)
                .bind(error.as_str())
                .bind(alert_id)
        }
        Attempt::GaveUp { status, error } => sqlx::query("UPDATE alert_deliveries SET failed_at = $1, last_status = $2, last_error = $3, lease_until = 0 WHERE alert_id = $4")
            .bind(now)
            .bind(*status)
            .bind(error.as_str())
            .bind(alert_id),
    };
    query.execute(&mut *db.writer().await?).await?;
    Ok(())
}
