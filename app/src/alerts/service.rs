//! Alerts as people read them, their acknowledgement, and the webhook that posts each
//! one: signed, retried with backoff, by whichever instance takes it first.

use std::time::Duration;

use super::store::{self, AlertRow, Attempt, Which};
use super::{AlertScope, AlertView, Delivery};
use crate::audit::Actor;
use crate::db::Db;
use crate::error::AppError;
use crate::settings::{AlertSettings, Secret};
use crate::state::AppState;
use crate::time::{now_millis, utc_minute};

/// Most alerts one list shows.
pub const LIST_LIMIT: i64 = 500;

/// "ana@firm.com's monthly budget", "Harbor Point's budget", "the firm's daily token cap".
pub fn subject(row: &AlertRow) -> String {
    let name = row.name.clone().unwrap_or_else(|| format!("#{}", row.scope_id));
    match AlertScope::parse(&row.scope) {
        Some(AlertScope::User) => format!("{name}'s monthly budget"),
        Some(AlertScope::Deal) => format!("{name}'s budget"),
        Some(AlertScope::Firm) => {
            let window = match row.period.split(':').next() {
                Some("hour") => "hourly",
                Some("day") => "daily",
                _ => "monthly",
            };
            let kind = if row.unit == "microusd" { "spending" } else { "token" };
            format!("the firm's {window} {kind} cap")
        }
        None => row.scope.clone(),
    }
}

pub fn view(row: AlertRow) -> AlertView {
    let subject = subject(&row);
    let delivery = row.attempts.map(|attempts| Delivery {
        status: if row.delivered_at.is_some() {
            "delivered"
        } else if row.failed_at.is_some() {
            "failed"
        } else {
            "pending"
        }
        .into(),
        attempts,
        last_error: row.last_error.clone(),
    });
    AlertView {
        id: row.id,
        scope: AlertScope::parse(&row.scope).unwrap_or(AlertScope::Firm),
        scope_id: row.scope_id,
        message: super::message(&subject, &row.level, row.used, row.budget, &row.unit),
        subject,
        level: row.level,
        period: row.period,
        used: row.used,
        budget: row.budget,
        unit: row.unit,
        at: utc_minute(row.created_at),
        acknowledged: row.acknowledged_by.zip(row.acknowledged_at.map(utc_minute)),
        delivery,
    }
}

pub async fn list(state: &AppState, which: Which) -> Result<Vec<AlertView>, AppError> {
    Ok(store::list(&state.db, which, LIST_LIMIT).await?.into_iter().map(view).collect())
}

/// Acknowledges an alert, with its audit entry.
pub async fn acknowledge(state: &AppState, actor: &Actor, id: i64) -> Result<(), AppError> {
    let Some(row) = store::get(&state.db, id).await? else { return Err(AppError::not_found("alert")) };
    let now = now_millis();
    let mut tx = state.db.begin_write().await?;
    if !store::acknowledge(&mut tx, id, actor.id.unwrap_or(0), now).await? {
        return Err(AppError::invalid("That alert is already acknowledged."));
    }
    let text = view(row).message;
    crate::audit::store::record(&mut tx, actor, now, &format!("alert #{id}"), &text, "acknowledged").await?;
    tx.commit().await?;
    Ok(())
}

/// The webhook's signature of a post: `sha256=` and the hex HMAC-SHA256, under the
/// secret, of `<timestamp>.<body>` (so a captured post cannot be replayed later with
/// another timestamp).
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Posts every due alert to the webhook, every second, for as long as the server runs.
/// A delivery is leased to one instance at a time; a failure (no answer, or not 2xx) is
/// retried after `webhook_retry_base_ms`, doubling, until `webhook_max_attempts`.
pub fn spawn_webhook_delivery(db: Db, settings: AlertSettings, secret: Secret) {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(settings.webhook_timeout_seconds)).build() {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(%err, "alert webhook disabled: no HTTP client");
                return;
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if let Err(err) = deliver_due(&db, &client, &settings, &secret).await {
                tracing::warn!(%err, "alert deliveries could not be read");
            }
        }
    });
}

async fn deliver_due(db: &Db, client: &reqwest::Client, settings: &AlertSettings, secret: &Secret) -> Result<(), sqlx::Error> {
    for alert_id in store::due_deliveries(db, now_millis(), 20).await? {
        let now = now_millis();
        let lease = now + (settings.webhook_timeout_seconds as i64 + 5) * 1000;
        let Some(attempt) = store::claim(db, alert_id, now, lease).await? else { continue };
        let Some(row) = store::get(db, alert_id).await? else { continue };
        let outcome = post(client, &settings.webhook_url, secret.expose(), &view(row)).await;
        let done = match outcome {
            Ok(status) => Attempt::Delivered { status },
            Err((status, error)) if attempt >= i64::from(settings.webhook_max_attempts) => {
                tracing::error!(alert_id, attempt, ?error, "alert webhook gave up");
                Attempt::GaveUp { status, error }
            }
            Err((status, error)) => {
                let wait = settings.webhook_retry_base_ms.saturating_mul(1 << (attempt - 1).clamp(0, 20)) as i64;
                tracing::warn!(alert_id, attempt, ?error, wait_ms = wait, "alert webhook failed; will retry");
                Attempt::Retry { status, error, next_attempt_at: now_millis() + wait }
            }
        };
        store::finish_attempt(db, alert_id, now_millis(), &done).await?;
    }
    Ok(())
}

/// The JSON an alert is posted as.
pub fn payload(alert: &AlertView) -> serde_json::Value {
    serde_json::json!({
        "id": alert.id,
        "scope": alert.scope,
        "scope_id": alert.scope_id,
        "subject": alert.subject,
        "level": alert.level,
        "period": alert.period,
        "used": alert.used,
        "budget": alert.budget,
        "unit": alert.unit,
        "message": alert.message,
        "at": alert.at,
    })
}

/// One post: the answer's status when 2xx, else the status (if any) and what went wrong.
async fn post(client: &reqwest::Client, url: &str, secret: &str, alert: &AlertView) -> Result<i64, (Option<i64>, String)> {
    let body = payload(alert).to_string();
    let timestamp = now_millis() / 1000;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-dealdesk-alert", alert.id.to_string())
        .header("x-dealdesk-timestamp", timestamp.to_string())
        .header("x-dealdesk-signature", sign(secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|err| (None, format!("no answer: {}", err.without_url())))?;
    let status = i64::from(response.status().as_u16());
    if response.status().is_success() { Ok(status) } else { Err((Some(status), format!("answered HTTP {status}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let a = sign("s3cret", 1_700_000_000, "{\"id\":1}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, sign("s3cret", 1_700_000_001, "{\"id\":1}"));
        assert_ne!(a, sign("s3cret", 1_700_000_000, "{\"id\":2}"));
        assert_ne!(a, sign("other", 1_700_000_000, "{\"id\":1}"));
        assert_eq!(a, sign("s3cret", 1_700_000_000, "{\"id\":1}"));
    }
}
