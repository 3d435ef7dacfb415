//! `GET /api/usage?group_by=user|deal|day|model|operation&from=&to=&format=json|csv` for
//! admins (optionally `&user=ID` or `&deal=ID`): exactly the numbers the dashboard
//! shows. A plain axum handler (a GET with a query string and a CSV body), with the same
//! error kinds as the server functions.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::GroupBy;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct UsageQuery {
    group_by: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    user: Option<String>,
    deal: Option<String>,
}

fn error_response(err: AppError) -> Response {
    let status = StatusCode::from_u16(err.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(err)).into_response()
}

pub async fn usage_api(State(state): State<AppState>, session: Session, Query(query): Query<UsageQuery>) -> Response {
    match usage(&state, &session, query).await {
        Ok(response) => response,
        Err(err) => error_response(err),
    }
}

async fn usage(state: &AppState, session: &Session, query: UsageQuery) -> Result<Response, AppError> {
    let ctx = crate::auth::service::user_from_session(&state.db, session).await?;
    if !ctx.is_admin() {
        return Err(AppError::forbidden());
    }
    let group_by = match query.group_by.as_deref() {
        None | Some("") => GroupBy::Day,
        Some(text) => GroupBy::parse(text)
            .ok_or_else(|| AppError::invalid("`group_by` must be one of user, deal, day, model, operation."))?,
    };
    let today = chrono::Utc::now().with_timezone(&state.settings.time.tz()).date_naive();
    let (from, to) = super::service::date_range(query.from.as_deref(), query.to.as_deref(), today)?;
    let filter = super::service::Filter::parse(query.user.as_deref().unwrap_or(""), query.deal.as_deref().unwrap_or(""))?;
    let report = super::service::usage_report(&state.db, group_by, &from, &to, filter).await?;
    match query.format.as_deref() {
        None | Some("") | Some("json") => Ok(axum::Json(report).into_response()),
        Some("csv") => {
            let filename = format!("attachment; filename=\"usage-by-{}-{from}-to-{to}.csv\"", group_by.as_str());
            Ok((
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, filename)],
                report.to_csv(),
            )
                .into_response())
        }
        Some(_) => Err(AppError::invalid("`format` must be json or csv.")),
    }
}
