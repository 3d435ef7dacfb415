//! `GET /api/alerts[?unacknowledged=true]` for admins: every alert as JSON, newest first,
//! for scripts and monitoring (the same rows /admin/alerts shows).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct AlertsQuery {
    #[serde(default)]
    pub unacknowledged: Option<bool>,
}

pub async fn alerts_json(State(state): State<AppState>, session: Session, Query(q): Query<AlertsQuery>) -> Response {
    let answer = async {
        let ctx = crate::auth::service::user_from_session(&state.db, &session).await?;
        if !ctx.is_admin() {
            return Err(AppError::forbidden());
        }
        let which = super::store::Which::All { unacknowledged_only: q.unacknowledged.unwrap_or(false) };
        super::service::list(&state, which).await
    };
    match answer.await {
        Ok(alerts) => axum::Json(serde_json::json!({ "alerts": alerts })).into_response(),
        Err(err) => {
            let status = axum::http::StatusCode::from_u16(err.kind.http_status()).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(err)).into_response()
        }
    }
}
