//! The audit log for admins.

use leptos::prelude::*;

use super::AuditPage;
use crate::error::AppError;

/// Entries per page.
pub const PAGE_SIZE: i64 = 100;

/// A page of the audit log, newest first (`before`: the previous page's `next_before`).
#[server(prefix = "/api", endpoint = "admin/audit")]
pub async fn list_audit(before: Option<i64>) -> Result<AuditPage, AppError> {
    crate::auth::service::require_admin().await?;
    let state = crate::state::app_state()?;
    Ok(super::store::page(&state.db, before, PAGE_SIZE).await?)
}
