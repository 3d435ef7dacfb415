//! The HTTP guards around every request, outermost first: the client's address,
//! security headers (a Content-Security-Policy with a fresh nonce per response), the
//! refusal of cross-site writes, the request-body limit, load shedding, the sign-in guard
//! of pages and the deadline of server-rendered pages.

use std::time::Duration;

use app::auth::service::{ClientAddress, USER_ID_KEY, user_from_session};
use app::error::{AppError, ErrorKind};
use app::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use futures::StreamExt;
use tower_sessions::Session;

/// The nonce of one response's Content-Security-Policy, for the inline scripts Leptos
/// writes (hydration, streamed resources).
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

/// A refusal in the shape every server function error has: `{"kind", "message"}`.
pub fn error_response(status: StatusCode, kind: ErrorKind, message: &str) -> Response {
    let body = AppError::new(kind, message);
    (status, axum::Json(body)).into_response()
}

/// Who is asking: the configured proxy header's last entry, or the connection's peer.
pub async fn client_address(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let configured = &state.settings.server.client_address_header;
    let from_header = (!configured.is_empty())
        .then(|| req.headers().get(configured.as_str()))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64);
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let address = from_header.or(peer).unwrap_or_else(|| "unknown".into());
    req.extensions_mut().insert(ClientAddress(address));
    next.run(req).await
}

/// Security headers on every response. The CSP allows only the app's own scripts (and
/// inline ones carrying this response's nonce), styles, images and wasm; no framing.
pub async fn security_headers(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let nonce: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let forwarded_https = req.headers().get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let static_asset = is_static_asset(req.uri().path());
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let csp = content_security_policy(&nonce);
    set(headers, header::CONTENT_SECURITY_POLICY, &csp);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
    if state.settings.session.secure_cookie || forwarded_https {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains");
    }
    if !static_asset && !headers.contains_key(header::CACHE_CONTROL) {
        // Pages and answers carry deal data: no shared cache may keep them.
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

pub fn content_security_policy(nonce: &str) -> String {
    // `cargo leptos watch` reloads through a websocket on its own port.
    let reload = std::env::var("LEPTOS_WATCH")
        .ok()
        .and(std::env::var("LEPTOS_RELOAD_PORT").ok())
        .map(|port| format!(" ws://127.0.0.1:{port} ws://localhost:{port}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'{reload}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn set(headers: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Browsers say where a request comes from: a state-changing request that another
/// site started (a form posted from elsewhere, a cross-origin fetch) is refused.
/// Clients that send neither header (curl, scripts) are not browsers and pass.
pub async fn refuse_cross_site_writes(req: Request, next: Next) -> Response {
    if is_safe_method(req.method()) || !is_cross_site(req.headers()) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "cross-site request refused");
    error_response(StatusCode::FORBIDDEN, ErrorKind::Forbidden, "This request came from another site and was refused.")
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn is_cross_site(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = header("origin") else { return false };
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
    let hosts = [header("x-forwarded-host"), header("host")];
    !hosts.into_iter().flatten().any(|host| !origin_host.is_empty() && host.eq_ignore_ascii_case(origin_host))
}

/// How much of an oversized body is read and thrown away before the 413 is sent. A
/// client is still writing its body when the refusal is ready; closing the connection
/// under it makes most clients report a broken pipe instead of the answer, so up to this
/// much is drained first, while it keeps arriving (`DRAIN_IDLE`) and within the body
/// read timeout. Bodies declared larger than this are refused at once.
const DRAIN_LIMIT_BYTES: u64 = 16 * 1024 * 1024;
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// Reads the whole request body under the size limit and the read timeout, so an
/// oversized or trickled body is refused here with a clear answer (413 `too_long`, 408)
/// instead of failing deep inside a handler.
pub async fn limit_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_safe_method(req.method()) {
        return next.run(req).await;
    }
    let limits = &state.settings.server;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT_BYTES) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(limits.body_read_timeout_seconds);
    let mut chunks = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen: u64 = 0;
    let max = limits.max_body_bytes as u64;
    let over = |seen: u64| seen > max || declared.is_some_and(|n| n > max);
    loop {
        let wait_until = if over(seen) { deadline.min(tokio::time::Instant::now() + DRAIN_IDLE) } else { deadline };
        let chunk = match tokio::time::timeout_at(wait_until, chunks.next()).await {
            Err(_) if over(seen) => return too_large(),
            Err(_) => {
                return error_response(StatusCode::REQUEST_TIMEOUT, ErrorKind::Invalid, "The request took too long to arrive. Please try again.");
            }
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                tracing::info!(%err, "request body could not be read");
                return error_response(StatusCode::BAD_REQUEST, ErrorKind::Invalid, "The request could not be read. Please try again.");
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT_BYTES {
            return too_large();
        }
        if over(seen) {
            kept = Vec::new(); // drain the rest, keep nothing
        } else {
            kept.extend_from_slice(&chunk);
        }
    }
    if over(seen) {
        return too_large();
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(kept)))).await
}

/// Load shedding (`app::load`): a request whose body has arrived is worked on only if
/// fewer than `server.max_busy_requests` are busy; otherwise it is refused at once with
/// 503 `overloaded` and `Retry-After: 1`, so a server offered more than it can serve
/// keeps answering the calls it takes quickly, and its memory bounded. Health checks and
/// static files are never refused. Placed after the body limit: a client trickling its
/// body holds no place.
pub async fn shed_load(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || is_static_asset(path) {
        return next.run(req).await;
    }
    let Some(place) = state.busy.try_enter() else {
        state.metrics.shed();
        let now_seconds = u64::try_from(app::time::now_millis() / 1000).unwrap_or(0);
        if let Some(refused) = state.busy.refused(now_seconds) {
            tracing::warn!(refused, busy = state.busy.limit(), "server busy: requests refused (503 overloaded)");
        }
        return overloaded(path.starts_with("/api/"));
    };
    app::load::within(place, next.run(req)).await
}

const OVERLOADED_MESSAGE: &str = "DealDesk is busy right now. Please try again in a moment.";

/// 503 `overloaded`, retry after a second: JSON for server functions, text for pages.
fn overloaded(api: bool) -> Response {
    let mut response = if api {
        let body = AppError::new(ErrorKind::Overloaded, OVERLOADED_MESSAGE).retry_after(Some(1));
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, OVERLOADED_MESSAGE).into_response()
    };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 413 `too_long`; the connection is closed after it, whatever of the body is unread.
fn too_large() -> Response {
    let mut response =
        error_response(StatusCode::PAYLOAD_TOO_LARGE, ErrorKind::TooLong, "That request is too large. Shorten the text and try again.");
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The boundary where a server function's failure gets the HTTP status of its kind
/// (401, 403, 404, 429, …): Leptos answers every failed server function with 500 and the
/// error's JSON body, and errors are built without side effects, anywhere (a spawned
/// task included), so the status is set here, once.
pub async fn api_error_status(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    if !is_api || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(error.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(seconds) = error.retry_after_seconds {
            parts.headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Every page but `/login` needs a session: page loads (GET and HEAD alike) without one
/// go to the sign-in page. Server functions check the caller themselves (and refuse with
/// `unauthorized`). Admin pages answer 403 to everyone else (the page itself says why;
/// its server functions refuse on their own too).
pub async fn require_sign_in(State(state): State<AppState>, session: Session, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_public_path(&path) {
        return next.run(req).await;
    }
    let signed_in = matches!(session.get::<i64>(USER_ID_KEY).await, Ok(Some(_)));
    match (path == "/login", signed_in) {
        (true, true) => return Redirect::to("/").into_response(),
        (false, false) => return Redirect::to("/login").into_response(),
        _ => {}
    }
    let admin_only = path == "/admin" || path.starts_with("/admin/");
    if admin_only && !user_from_session(&state.db, &session).await.is_ok_and(|ctx| ctx.is_admin()) {
        let mut response = next.run(req).await;
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    // A deal that does not exist is a 404 (the page itself says so, and hydrates as usual).
    if let Some(id) = deal_page_id(&path) {
        let exists = match id.parse::<i64>() {
            Ok(id) => app::deals::store::get(&state.db, id).await.map(|deal| deal.is_some()).unwrap_or(true),
            Err(_) => false,
        };
        if !exists {
            // The page then shows the notice alone, without the deal's tabs.
            let mut req = req;
            req.extensions_mut().insert(app::pages::deal::DealNotFound);
            let mut response = next.run(req).await;
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
    }
    next.run(req).await
}

/// The id segment of `/deals/{id}`, `/deals/{id}/edit` and `/deals/{id}/chat/{thread}`
/// (not `/deals/new`).
fn deal_page_id(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/deals/")?;
    let id = match rest.split_once("/chat/") {
        Some((id, thread)) if !thread.is_empty() && !thread.contains('/') => id,
        _ => rest.strip_suffix("/edit").unwrap_or(rest),
    };
    (!id.is_empty() && id != "new" && !id.contains('/')).then_some(id)
}

pub fn is_public_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/healthz" || is_static_asset(path)
}

fn is_static_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || path.rsplit('/').next().is_some_and(|last| last.contains('.'))
}

/// A server-rendered page must be complete within `server.render_deadline_seconds`:
/// a render that stalls is cut off and logged, so no response (and no connection) is
/// held open by it.
pub async fn render_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_public_path(&path) {
        return next.run(req).await;
    }
    let limit = Duration::from_secs(state.settings.server.render_deadline_seconds);
    let deadline = tokio::time::Instant::now() + limit;
    let response = match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(%path, seconds = limit.as_secs(), "page render passed its deadline before its first byte");
            return (StatusCode::SERVICE_UNAVAILABLE, "This page took too long to prepare. Please reload.").into_response();
        }
    };
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, cut_off_at(body, deadline, path))
}

/// The body, ended with an error (the connection is aborted, so no client mistakes the
/// cut page for a whole one) if it is not complete by `deadline`.
pub fn cut_off_at(body: Body, deadline: tokio::time::Instant, path: String) -> Body {
    let chunks = body.into_data_stream();
    let guarded = futures::stream::unfold((chunks, false), move |(mut chunks, cut)| {
        let path = path.clone();
        async move {
            if cut {
                return None;
            }
            match tokio::time::timeout_at(deadline, chunks.next()).await {
                Ok(Some(chunk)) => Some((chunk, (chunks, false))),
                Ok(None) => None,
                Err(_) => {
                    tracing::error!(%path, "page render passed its deadline; response cut off");
                    let err = axum::Error::new(std::io::Error::new(std::io::ErrorKind::TimedOut, "render deadline passed"));
                    Some((Err(err), (chunks, true)))
                }
            }
        }
    });
    Body::from_stream(guarded)
}

#[cfg(test)]
mod tests {
    #[test]
    fn deal_pages_are_recognised_by_their_id_segment() {
        use super::deal_page_id;
        assert_eq!(deal_page_id("/deals/12"), Some("12"));
        assert_eq!(deal_page_id("/deals/12/edit"), Some("12"));
        assert_eq!(deal_page_id("/deals/abc"), Some("abc"));
        assert_eq!(deal_page_id("/deals/new"), None);
        assert_eq!(deal_page_id("/deals"), None);
        assert_eq!(deal_page_id("/deals/12/chat/3"), Some("12"));
        assert_eq!(deal_page_id("/deals/12/chat/"), None);
        assert_eq!(deal_page_id("/deals/12/chat/3/x"), None);
    }

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn only_assets_api_and_health_are_public() {
        assert!(is_public_path("/api/login"));
        assert!(is_public_path("/pkg/dealdesk.js"));
        assert!(is_public_path("/favicon.ico"));
        assert!(is_public_path("/healthz"));
        assert!(!is_public_path("/"));
        assert!(!is_public_path("/deals/3"));
        assert!(!is_public_path("/admin/users"));
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        assert!(!is_cross_site(&headers(&[])), "non-browser clients pass");
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[("origin", "http://app.firm.com"), ("host", "app.firm.com")])));
        assert!(!is_cross_site(&headers(&[("origin", "https://APP.firm.com"), ("host", "app.firm.com")])));
        assert!(is_cross_site(&headers(&[("origin", "https://evil.example"), ("host", "app.firm.com")])));
        assert!(is_cross_site(&headers(&[("origin", "null"), ("host", "app.firm.com")])));
        assert!(!is_cross_site(&headers(&[("origin", "https://app.firm.com"), ("host", "10.0.0.5:3000"), ("x-forwarded-host", "app.firm.com")])));
    }

    #[tokio::test]
    async fn a_stalled_page_is_cut_off_at_its_deadline() {
        use http_body_util::BodyExt;
        // One chunk, then nothing ever again: a render that hangs.
        let stalled = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"<!DOCTYPE html><html>")) })
            .chain(futures::stream::pending());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let body = cut_off_at(Body::from_stream(stalled), deadline, "/deals/1".into());
        let collected = tokio::time::timeout(Duration::from_secs(5), body.collect()).await.expect("the body ended by itself");
        assert!(collected.is_err(), "a cut page ends with an error, not as if it were complete");
        // A page that finishes in time is untouched.
        let whole = Body::from("<html></html>");
        let body = cut_off_at(whole, tokio::time::Instant::now() + Duration::from_secs(5), "/".into());
        assert_eq!(body.collect().await.unwrap().to_bytes(), Bytes::from_static(b"<html></html>"));
    }

    #[test]
    fn the_policy_allows_only_our_own_scripts_and_no_framing() {
        let csp = content_security_policy("abc");
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("img-src 'self' data:"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
