//! Alerts for people: an analyst's own, every alert for admins, acknowledgement.

use leptos::prelude::*;

use super::AlertView;
use crate::error::AppError;

/// The caller's own alerts (their monthly budget's), newest first.
#[server(prefix = "/api", endpoint = "alerts/mine")]
pub async fn my_alerts() -> Result<Vec<AlertView>, AppError> {
    let ctx = crate::auth::service::require_user().await?;
    let state = crate::state::app_state()?;
    super::service::list(&state, super::store::Which::OfUser(ctx.user_id)).await
}

/// Every alert, newest first (admins only).
#[server(prefix = "/api", endpoint = "admin/alerts/list")]
pub async fn list_alerts(unacknowledged_only: Option<bool>) -> Result<Vec<AlertView>, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::list(&state, super::store::Which::All { unacknowledged_only: unacknowledged_only.unwrap_or(false) }).await
}

/// Acknowledges an alert (admins only; audited).
#[server(prefix = "/api", endpoint = "admin/alerts/acknowledge")]
pub async fn acknowledge_alert(id: i64) -> Result<(), AppError> {
    let admin = crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    super::service::acknowledge(&state, &crate::audit::Actor::admin(admin.user_id, &admin.email), id).await
}
