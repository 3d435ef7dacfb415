//! A memo version as a Word document, written with `docx-rs` from the Markdown the page
//! renders: a title block (deal, version, date, author, model, cost), the sections as
//! Word headings, paragraphs with bold, italic, struck and code runs, lists, and tables
//! with a shaded header row and figures right-aligned. As on the page, raw HTML in the
//! Markdown stays text, an image is only its alt text (never fetched), and a link is its
//! text followed by its address when that is http(s) or mailto. Characters XML cannot
//! hold are dropped, so model output can never make a file Word refuses to open.

use docx_rs::{
    AlignmentType, BreakType, Docx, Paragraph, Run, RunFonts, Shading, Style, StyleType, Table, TableCell, TableRow,
};
use pulldown_cmark::{Alignment, Event, HeadingLevel, Tag, TagEnd};

use super::ReportVersion;
use crate::markdown::{is_figure, parse};
use crate::error::AppError;
use crate::format::{format_tokens, format_usd};

/// The `.docx` bytes of `memo`, a version of the memo of deal `deal_name`.
pub fn memo_docx(deal_name: &str, memo: &ReportVersion) -> Result<Vec<u8>, AppError> {
    let mut doc = Docx::new()
        .add_style(Style::new("Title", StyleType::Paragraph).name("Title").size(40).bold())
        .add_style(Style::new("Heading1", StyleType::Paragraph).name("Heading 1").size(32).bold().outline_lvl(0))
        .add_style(Style::new("Heading2", StyleType::Paragraph).name("Heading 2").size(28).bold().outline_lvl(1))
        .add_style(Style::new("Heading3", StyleType::Paragraph).name("Heading 3").size(24).bold().outline_lvl(2))
        .add_paragraph(Paragraph::new().style("Title").add_run(Run::new().add_text(xml_safe(&format!("Investment memo: {deal_name}")))))
        .add_paragraph(Paragraph::new().add_run(Run::new().italic().color("555555").add_text(xml_safe(&byline(memo)))));
    for block in blocks(&memo.markdown) {
        doc = match block {
            Block::Paragraph(p) => doc.add_paragraph(p),
            Block::Table(t) => doc.add_table(t),
        };
    }
    let mut out = std::io::Cursor::new(Vec::new());
    doc.build().pack(&mut out).map_err(|err| AppError::internal("docx", err))?;
    Ok(out.into_inner())
}

/// "Version 2 · 2026-11-23 14:05 UTC · ana@firm.com · claude-… · 5,120 tokens · $0.0712"
fn byline(memo: &ReportVersion) -> String {
    let model = if memo.model.is_empty() { "model unknown" } else { &memo.model };
    format!(
        "Version {} · {} UTC · {} · {} · {} tokens · {}",
        memo.version,
        memo.created_at,
        memo.author,
        model,
        format_tokens(memo.input_tokens + memo.output_tokens),
        format_usd(memo.cost_microusd)
    )
}

/// Text as XML 1.0 may hold it: without control characters (tabs and newlines aside)
/// and the two non-characters U+FFFE and U+FFFF. `docx-rs` escapes `<`, `>` and `&`.
fn xml_safe(text: &str) -> String {
    text.chars().filter(|&c| !(c < ' ' && c != '\t' && c != '\n' || c == '\u{FFFE}' || c == '\u{FFFF}')).collect()
}

enum Block {
    Paragraph(Paragraph),
    Table(Table),
}

/// Inline styling in force at a run.
#[derive(Default, Clone, Copy)]
struct Inline {
    bold: u8,
    italic: u8,
    strike: u8,
}

/// A table being built: finished rows, the row and cell under way, and the cell's text
/// (to decide whether it is a figure).
#[derive(Default)]
struct TableBuild {
    rows: Vec<TableRow>,
    cells: Vec<TableCell>,
    in_head: bool,
    cell_text: String,
    /// Each column's alignment as the Markdown gives it (as the page honours it).
    alignments: Vec<Alignment>,
}

#[derive(Default)]
struct Writer {
    blocks: Vec<Block>,
    paragraph: Option<Paragraph>,
    style: Inline,
    /// Open lists, innermost last: the next number of an ordered list, None for bullets.
    lists: Vec<Option<u64>>,
    quote: usize,
    code_block: bool,
    table: Option<TableBuild>,
    /// The address of the link being written, shown after its text.
    link: Option<String>,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut w = Writer::default();
    for event in parse(markdown) {
        w.event(event);
    }
    w.flush();
    w.blocks
}

impl Writer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) if self.code_block => self.code_lines(&text),
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => self.text(&text, false),
            Event::Code(text) => self.text(&text, true),
            Event::SoftBreak => self.text(" ", false),
            Event::HardBreak => self.run(Run::new().add_break(BreakType::TextWrapping)),
            Event::Rule => {
                self.flush();
                self.blocks.push(Block::Paragraph(Paragraph::new().align(AlignmentType::Center).add_run(Run::new().add_text("* * *"))));
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph if self.paragraph.is_some() => {}
            Tag::Paragraph => self.open(Paragraph::new()),
            Tag::Heading { level, .. } => {
                self.flush();
                let style = match level {
                    HeadingLevel::H1 => "Heading1",
                    HeadingLevel::H2 => "Heading2",
                    _ => "Heading3",
                };
                self.paragraph = Some(Paragraph::new().style(style));
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.quote += 1;
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.code_block = true;
            }
            Tag::List(start) => {
                self.flush();
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}.\t", *n - 1)
                    }
                    _ => "•\t".to_string(),
                };
                let depth = self.lists.len() as i32;
                let p = Paragraph::new()
                    .indent(Some(360 * depth + 360 * self.quote as i32), Some(docx_rs::SpecialIndentType::Hanging(360)), None, None)
                    .add_run(Run::new().add_text(marker));
                self.paragraph = Some(p);
            }
            Tag::Table(alignments) => {
                self.flush();
                self.table = Some(TableBuild { alignments, ..TableBuild::default() });
            }
            Tag::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_head = true;
                }
            }
            Tag::TableRow => {}
            Tag::TableCell => {
                if let Some(t) = &mut self.table {
                    t.cell_text.clear();
                }
                self.paragraph = Some(Paragraph::new());
            }
            Tag::Emphasis => self.style.italic += 1,
            Tag::Strong => self.style.bold += 1,
            Tag::Strikethrough => self.style.strike += 1,
            Tag::Link { dest_url, .. } => {
                let url = dest_url.trim().to_string();
                let lower = url.to_ascii_lowercase();
                let shown = lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:");
                self.link = shown.then_some(url);
            }
            Tag::Image { .. } => self.text("[image: ", false),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item => self.flush(),
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quote = self.quote.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                self.flush();
                self.code_block = false;
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::TableCell => self.end_cell(),
            TagEnd::TableHead => self.end_row(),
            TagEnd::TableRow => self.end_row(),
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    self.blocks.push(Block::Table(Table::new(t.rows)));
                }
            }
            TagEnd::Emphasis => self.style.italic = self.style.italic.saturating_sub(1),
            TagEnd::Strong => self.style.bold = self.style.bold.saturating_sub(1),
            TagEnd::Strikethrough => self.style.strike = self.style.strike.saturating_sub(1),
            TagEnd::Link => {
                if let Some(url) = self.link.take() {
                    self.text(&format!(" ({url})"), false);
                }
            }
            TagEnd::Image => self.text("]", false),
            _ => {}
        }
    }

    /// Starts a paragraph, indented inside block quotes and lists.
    fn open(&mut self, p: Paragraph) {
        self.flush();
        let indent = 360 * (self.lists.len() + self.quote) as i32;
        self.paragraph = Some(if indent > 0 { p.indent(Some(indent), None, None, None) } else { p });
    }

    /// Ends the paragraph under way (outside tables: cells keep theirs until they end).
    fn flush(&mut self) {
        if self.table.is_some() {
            return;
        }
        if let Some(p) = self.paragraph.take() {
            let p = if self.quote > 0 { p.italic() } else { p };
            self.blocks.push(Block::Paragraph(p));
        }
    }

    fn text(&mut self, text: &str, code: bool) {
        if let Some(t) = &mut self.table {
            t.cell_text.push_str(text);
        }
        let mut run = Run::new().add_text(xml_safe(text));
        if self.style.bold > 0 || self.table.as_ref().is_some_and(|t| t.in_head) {
            run = run.bold();
        }
        if self.style.italic > 0 {
            run = run.italic();
        }
        if self.style.strike > 0 {
            run = run.strike();
        }
        if code {
            run = run.fonts(RunFonts::new().ascii("Consolas").hi_ansi("Consolas"));
        }
        self.run(run);
    }

    /// A code block: one monospace line per line, in one paragraph.
    fn code_lines(&mut self, text: &str) {
        if self.paragraph.is_none() {
            self.open(Paragraph::new());
        }
        for (i, line) in text.trim_end_matches('\n').split('\n').enumerate() {
            let mut run = Run::new();
            if i > 0 {
                run = run.add_break(BreakType::TextWrapping);
            }
            self.run(run.add_text(xml_safe(line)).fonts(RunFonts::new().ascii("Consolas").hi_ansi("Consolas")).size(18));
        }
    }

    fn run(&mut self, run: Run) {
        if self.paragraph.is_none() {
            self.open(Paragraph::new());
        }
        if let Some(p) = self.paragraph.take() {
            self.paragraph = Some(p.add_run(run));
        }
    }

    fn end_cell(&mut self) {
        let p = self.paragraph.take().unwrap_or_default();
        let Some(t) = &mut self.table else { return };
        // The column's own alignment if the Markdown gives one, else figures to the right.
        let p = match t.alignments.get(t.cells.len()) {
            Some(Alignment::Left) => p.align(AlignmentType::Left),
            Some(Alignment::Center) => p.align(AlignmentType::Center),
            Some(Alignment::Right) => p.align(AlignmentType::Right),
            _ if !t.in_head && is_figure(&t.cell_text) => p.align(AlignmentType::Right),
            _ => p,
        };
        let mut cell = TableCell::new().add_paragraph(p);
        if t.in_head {
            cell = cell.shading(Shading::new().fill("E7ECF2"));
        }
        t.cells.push(cell);
    }

    fn end_row(&mut self) {
        if let Some(t) = &mut self.table {
            let cells = std::mem::take(&mut t.cells);
            if !cells.is_empty() {
                t.rows.push(TableRow::new(cells));
            }
            t.in_head = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn memo(markdown: &str) -> ReportVersion {
        ReportVersion {
            id: 7,
            version: 2,
            created_at: "2026-11-23 14:05".into(),
            author: "ana@firm.com".into(),
            model: "claude-sonnet-4-5".into(),
            input_tokens: 4_000,
            output_tokens: 1_120,
            cost_microusd: 71_200,
            markdown: markdown.into(),
            html: String::new(),
            limited: None,
        }
    }

    /// Every part of the archive by name, as text.
    fn parts(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).unwrap();
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                (file.name().to_string(), text)
            })
            .collect()
    }

    /// The document's text without its markup (runs split text anywhere).
    fn plain(xml: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in xml.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn the_memo_becomes_a_word_document_with_its_parts() {
        let bytes = memo_docx(
            "Harbor Point",
            &memo("## Summary\n\n**Buy** at *6.5%*.\n\n- one\n- two\n\n1. first\n2. second\n\n| Property | Price |\n|---|---|\n| Palm Court | $18.2M |\n"),
        )
        .unwrap();
        let parts = parts(&bytes);
        for name in ["[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/styles.xml"] {
            assert!(parts.contains_key(name), "{name} missing: {:?}", parts.keys());
        }
        assert!(parts["[Content_Types].xml"].contains("wordprocessingml.document.main+xml"));
        let doc = &parts["word/document.xml"];
        assert!(doc.contains("Investment memo: Harbor Point"), "{doc}");
        assert!(doc.contains("Version 2 · 2026-11-23 14:05 UTC · ana@firm.com · claude-sonnet-4-5 · 5,120 tokens · $0.07"), "{doc}");
        assert!(doc.contains(r#"<w:pStyle w:val="Heading2" />"#) || doc.contains(r#"<w:pStyle w:val="Heading2"/>"#), "{doc}");
        assert!(doc.contains(">Summary<"), "{doc}");
        assert!(doc.contains("<w:b />") || doc.contains("<w:b/>"), "bold run: {doc}");
        assert!(doc.contains("•\t") && doc.contains("2.\t"), "list markers: {doc}");
        assert!(doc.contains("<w:tbl>"), "{doc}");
        assert!(doc.contains(">Palm Court<") && doc.contains(">$18.2M<"), "{doc}");
        assert!(doc.contains(r#"<w:jc w:val="right" />"#) || doc.contains(r#"<w:jc w:val="right"/>"#), "a figure is right-aligned: {doc}");
        assert!(parts["word/styles.xml"].contains("Heading 2"));
    }

    #[test]
    fn a_column_aligned_in_the_markdown_keeps_its_alignment() {
        let bytes = memo_docx("D", &memo("| Note | Price |\n|:-:|---|\n| 12 | $1M |\n")).unwrap();
        let doc = &parts(&bytes)["word/document.xml"];
        let jc = |v: &str| doc.matches(&format!("<w:jc w:val=\"{v}\" />")).count() + doc.matches(&format!("<w:jc w:val=\"{v}\"/>")).count();
        assert_eq!(jc("center"), 2, "the centred column, header and body: {doc}");
        assert_eq!(jc("right"), 1, "the figure in the unaligned column: {doc}");
    }

    #[test]
    fn model_text_stays_text_and_the_xml_stays_well_formed() {
        let bytes = memo_docx(
            "A & B <Tower>",
            &memo("## Risks\n\nNote <script>alert(1)</script> & \u{1}bell\u{FFFF} ![leak](https://evil.example/x?d=1) [src](javascript:alert(2))\n"),
        )
        .unwrap();
        let doc = &plain(&parts(&bytes)["word/document.xml"]);
        assert!(doc.contains("A &amp; B &lt;Tower&gt;"), "{doc}");
        assert!(doc.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{doc}");
        assert!(!doc.contains('\u{1}') && !doc.contains('\u{FFFF}'), "control characters dropped");
        assert!(doc.contains("[image: leak]") && !doc.contains("evil.example"), "{doc}");
        assert!(!doc.contains("javascript:"), "{doc}");
    }
}
