//! `GET /api/comps/csv?deal_id=ID`: a deal's sales comps as CSV for any signed-in user,
//! in the order the tab shows them, every field quoted and never read as a formula.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Comp;
use crate::error::AppError;
use crate::state::AppState;
use crate::usage::csv_cell;

#[derive(Deserialize)]
pub struct CompsQuery {
    deal_id: Option<String>,
}

pub async fn comps_csv(State(state): State<AppState>, session: Session, Query(query): Query<CompsQuery>) -> Response {
    match csv(&state, &session, query).await {
        Ok(response) => response,
        Err(err) => {
            let status = StatusCode::from_u16(err.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(err)).into_response()
        }
    }
}

async fn csv(state: &AppState, session: &Session, query: CompsQuery) -> Result<Response, AppError> {
    crate::auth::service::user_from_session(&state.db, session).await?;
    let deal_id: i64 = query.deal_id.as_deref().unwrap_or("").trim().parse().map_err(|_| AppError::invalid("`deal_id` must be a deal's id."))?;
    crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let comps = super::store::list(&state.db, deal_id).await?;
    let disposition = format!("attachment; filename=\"comps-deal-{deal_id}.csv\"");
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)], to_csv(&comps)).into_response())
}

/// The header row and one row per comp.
pub fn to_csv(comps: &[Comp]) -> String {
    let mut out = String::from(
        "\"property\",\"address\",\"sale_date\",\"sale_price_usd\",\"building_sf\",\"price_per_sf\",\"cap_rate_percent\",\"buyer\",\"seller\",\"notes\"\r\n",
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for c in comps {
        let f = &c.fields;
        let cells = [
            f.property_name.clone(),
            f.address.clone(),
            opt(f.sale_date.clone()),
            opt(f.sale_price.map(|v| v.to_string())),
            opt(f.building_sf.map(|v| v.to_string())),
            opt(f.price_per_sf.map(|v| format!("{v:.2}"))),
            opt(f.cap_rate.map(|v| format!("{v:.2}"))),
            f.buyer.clone(),
            f.seller.clone(),
            f.notes.clone(),
        ];
        out.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_csv;
    use crate::comps::{Comp, CompFields};

    #[test]
    fn every_field_is_quoted_and_formulas_stay_text() {
        let comp = Comp {
            id: 1,
            fields: CompFields {
                property_name: "=HYPERLINK(\"http://x\")".into(),
                address: "1 Main St, \"Suite\" 2".into(),
                sale_date: Some("2025-03-01".into()),
                sale_price: Some(12_500_000),
                price_per_sf: Some(250.0),
                cap_rate: Some(5.75),
                ..Default::default()
            },
        };
        let csv = to_csv(&[comp]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), 3, "header, one row, and the final line break");
        assert!(lines[0].starts_with("\"property\",\"address\""));
        assert_eq!(
            lines[1],
            "\"'=HYPERLINK(\"\"http://x\"\")\",\"1 Main St, \"\"Suite\"\" 2\",\"2025-03-01\",\"12500000\",\"\",\"250.00\",\"5.75\",\"\",\"\",\"\""
        );
    }
}
