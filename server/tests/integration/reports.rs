//! The memo's pre-flight estimate and its downloads (Markdown and Word), on SQLite and
//! PostgreSQL, with the built-in offline model writing the memo.

use std::io::Read;

use app::auth::UserRole;
use serde_json::Value;

use crate::support::{Engine, TestApp, kind};

const BROKER_TEXT: &str = "1. Bayview Commons, 40 Bay St, Tampa, FL — sold March 2025 for $24,500,000; 98,000 SF; 6.1% cap rate.\n\n\
    2. Palm Court, 12 Palm Ave, Tampa, FL — sold 2024-11-15 for $18.2M, 70,000 square feet, 6.4% cap.";

/// An app, an analyst and a deal named so that its file name must be cleaned.
async fn start(engine: Engine) -> (TestApp, reqwest::Client, String) {
    let app = TestApp::spawn(engine).await;
    let client = app.signed_in("ana@firm.com", UserRole::Analyst).await;
    let (_, deal) = app
        .post(&client, "/api/deals/create", &[("name", "Harbor \"Point\" <Tampa>"), ("address", ""), ("property_type", "Office"), ("asking_price", "25M"), ("notes", "")])
        .await;
    (app, client, deal.as_i64().unwrap().to_string())
}

/// Every part of a .docx archive by name, as text.
fn docx_parts(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    (0..archive.len())
        .map(|i| {
            let mut part = archive.by_index(i).unwrap();
            let mut text = String::new();
            part.read_to_string(&mut text).unwrap();
            (part.name().to_string(), text)
        })
        .collect()
}

async fn the_estimate_states_tokens_cost_and_budget_share_before_generating(engine: Engine) {
    let (app, client, deal) = start(engine).await;
    let (status, estimate) = app.post(&client, "/api/reports/estimate", &[("deal_id", &deal)]).await;
    assert_eq!(status, 200, "{estimate}");
    let text = estimate["text"].as_str().unwrap();
    assert!(text.starts_with("≈ "), "{text}");
    let most = app::format::format_tokens(u64::from(app.state.settings.claude.max_tokens_report));
    assert!(text.contains(&format!(" input tokens and up to {most} output tokens on offline-simulated · ≈ $")), "{text}");
    assert!(text.contains("reserves up to"), "{text}");
    assert!(text.contains("of what is left of this deal's token budget"), "{text}");
    assert_eq!(estimate["sendable"], true);
    assert_eq!(app.count("usage_records").await, 0, "an estimate is not a call");
    assert_eq!(app.count("usage_reservations").await, 0, "an estimate reserves nothing");

    // Comps make the prompt longer, and the estimate follows.
    let input = |text: &str| -> u64 { text[text.find("≈ ").unwrap() + "≈ ".len()..].split(' ').next().unwrap().replace(',', "").parse().unwrap() };
    let before = input(text);
    let (status, _) = app.post(&client, "/api/comps/extract", &[("deal_id", &deal), ("text", BROKER_TEXT)]).await;
    assert_eq!(status, 200);
    let (_, after) = app.post(&client, "/api/reports/estimate", &[("deal_id", &deal)]).await;
    assert!(input(after["text"].as_str().unwrap()) > before, "{before} then {after}");
}

async fn the_estimate_says_why_a_memo_cannot_be_generated(engine: Engine) {
    let (app, client, deal) = start(engine).await;
    let admin = app.signed_in("root@firm.com", UserRole::Admin).await;
    let (status, body) = app.post(&admin, "/api/admin/deals/budget", &[("deal_id", &deal), ("tokens", "100")]).await;
    assert_eq!(status, 200, "{body}");
    let (status, estimate) = app.post(&client, "/api/reports/estimate", &[("deal_id", &deal)]).await;
    assert_eq!(status, 200, "{estimate}");
    assert_eq!(estimate["sendable"], false, "{estimate}");
    assert!(estimate["text"].as_str().unwrap().contains("cannot be generated now: this deal's budget cannot take it"), "{estimate}");
    assert_eq!(app.count("admission_refusals").await, 0, "an estimate is not a refused call");

    let (status, body) = app.post(&client, "/api/reports/estimate", &[("deal_id", "999999")]).await;
    assert_eq!((status, kind(&body)), (404, "not_found"));
    let (status, _) = app.post(&reqwest::Client::new(), "/api/reports/estimate", &[("deal_id", &deal)]).await;
    assert_eq!(status, 401);
}

async fn a_memo_downloads_as_markdown_and_as_a_word_document(engine: Engine) {
    let (app, client, deal) = start(engine).await;
    app.post(&client, "/api/comps/extract", &[("deal_id", &deal), ("text", BROKER_TEXT)]).await;
    let (status, memo) = app.post(&client, "/api/reports/generate", &[("deal_id", &deal)]).await;
    assert_eq!(status, 200, "{memo}");
    let id = memo["id"].as_i64().unwrap();
    let markdown = memo["markdown"].as_str().unwrap().to_string();
    assert!(markdown.contains("## Summary"), "{markdown}");
    assert!(memo["html"].as_str().unwrap().contains("<td class=\"num\">$24,500,000</td>"), "figures right-aligned: {memo}");

    let get = |path: String| client.get(format!("{}{path}", app.base)).send();
    let md = get(format!("/api/reports/{id}/markdown")).await.unwrap();
    assert_eq!(md.status().as_u16(), 200);
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    assert_eq!(md.headers()["content-disposition"], "attachment; filename=\"memo-harbor-point-tampa-v1.md\"");
    assert_eq!(md.text().await.unwrap(), markdown);

    let docx = get(format!("/api/reports/{id}/docx")).await.unwrap();
    assert_eq!(docx.status().as_u16(), 200);
    assert_eq!(docx.headers()["content-type"], "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
    assert_eq!(docx.headers()["content-disposition"], "attachment; filename=\"memo-harbor-point-tampa-v1.docx\"");
    let parts = docx_parts(&docx.bytes().await.unwrap());
    for name in ["[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/styles.xml", "word/_rels/document.xml.rels"] {
        assert!(parts.contains_key(name), "{name} in {:?}", parts.keys());
    }
    let document = &parts["word/document.xml"];
    assert!(document.contains("Investment memo: Harbor &quot;Point&quot; &lt;Tampa&gt;") || document.contains("Investment memo: Harbor \"Point\" &lt;Tampa&gt;"), "{document}");
    assert!(document.contains("ana@firm.com"), "the byline names the author");
    for section in app::reports::SECTIONS {
        assert!(document.contains(&format!(">{section}<")), "{section}");
    }
    assert!(document.contains("<w:tbl>") && document.contains(">Bayview Commons<"), "the comps table");

    // An older version still downloads as itself once a newer one exists.
    let (_, newer) = app.post(&client, "/api/reports/generate", &[("deal_id", &deal)]).await;
    assert_eq!(newer["version"], 2);
    let old = get(format!("/api/reports/{id}/markdown")).await.unwrap();
    assert_eq!(old.headers()["content-disposition"], "attachment; filename=\"memo-harbor-point-tampa-v1.md\"");
    let newer_id = newer["id"].as_i64().unwrap();
    let new = get(format!("/api/reports/{newer_id}/markdown")).await.unwrap();
    assert_eq!(new.headers()["content-disposition"], "attachment; filename=\"memo-harbor-point-tampa-v2.md\"");

    // Signed-in users only; a clear error for a bad or unknown id.
    let anonymous = reqwest::Client::new().get(format!("{}/api/reports/{id}/docx", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let bad = get("/api/reports/abc/docx".to_string()).await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(kind(&body), "invalid");
    let missing = get(format!("/api/reports/{}/markdown", newer_id + 1000)).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

on_both_engines!(
    the_estimate_states_tokens_cost_and_budget_share_before_generating,
    the_estimate_says_why_a_memo_cannot_be_generated,
    a_memo_downloads_as_markdown_and_as_a_word_document,
);
