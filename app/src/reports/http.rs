//! `GET /api/reports/{id}/markdown` and `GET /api/reports/{id}/docx`: a memo version as
//! a Markdown file or a Word document, for any signed-in user (as the tab shows it).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::ReportVersion;
use crate::error::AppError;
use crate::state::AppState;

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

pub async fn memo_markdown(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    respond(download(&state, &session, &id, Format::Markdown).await)
}

pub async fn memo_docx(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    respond(download(&state, &session, &id, Format::Docx).await)
}

#[derive(Clone, Copy)]
enum Format {
    Markdown,
    Docx,
}

fn respond(result: Result<Response, AppError>) -> Response {
    result.unwrap_or_else(|err| {
        let status = StatusCode::from_u16(err.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(err)).into_response()
    })
}

async fn download(state: &AppState, session: &Session, id: &str, format: Format) -> Result<Response, AppError> {
    crate::auth::service::user_from_session(&state.db, session).await?;
    let id: i64 = id.trim().parse().map_err(|_| AppError::invalid("A memo version's id is a number."))?;
    let deal_id = super::store::deal_of(&state.db, id).await?.ok_or_else(|| AppError::not_found("memo version"))?;
    let deal = crate::deals::store::get(&state.db, deal_id).await?.ok_or_else(|| AppError::not_found("deal"))?;
    let memo = super::store::get(&state.db, deal_id, id).await?.ok_or_else(|| AppError::not_found("memo version"))?;
    let name = file_name(&deal.name, &memo);
    let (content_type, body, extension) = match format {
        Format::Markdown => ("text/markdown; charset=utf-8", memo.markdown.clone().into_bytes(), "md"),
        Format::Docx => (DOCX_TYPE, super::docx::memo_docx(&deal.name, &memo)?, "docx"),
    };
    let disposition = format!("attachment; filename=\"{name}.{extension}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body).into_response())
}

/// `memo-harbor-point-v2`: the deal's name in lower-case ASCII letters and digits
/// joined by hyphens (nothing a header or a file system could misread), and the version.
fn file_name(deal_name: &str, memo: &ReportVersion) -> String {
    let slug: Vec<String> = deal_name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let slug: String = slug.join("-").chars().take(48).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() { format!("memo-v{}", memo.version) } else { format!("memo-{slug}-v{}", memo.version) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_ascii() {
        let memo = ReportVersion {
            id: 1,
            version: 3,
            created_at: String::new(),
            author: String::new(),
            model: String::new(),
            input_tokens: 0,
            output_tokens: 0,
            cost_microusd: 0,
            markdown: String::new(),
            html: String::new(),
            limited: None,
        };
        assert_eq!(file_name("Harbor Point (Tampa)", &memo), "memo-harbor-point-tampa-v3");
        assert_eq!(file_name("\"; evil=\r\n x", &memo), "memo-evil-x-v3");
        assert_eq!(file_name("Île — 東京", &memo), "memo-le-v3");
        assert_eq!(file_name("東京", &memo), "memo-v3");
    }
}
