//! Usage on screen: the totals, the daily chart and the sortable tables of one range.
//! Works without JavaScript (an SVG chart with native tooltips, CSV links); once
//! hydrated, tables sort and the chart shows hover detail.

use leptos::prelude::*;

use super::chart::{self, Bar};
use super::{Dashboard, RefusalRow, UsageReport, UsageRow, UsageSums, refusal_label};
use crate::format::{format_tokens, format_usd};
use crate::ui::SortHeader;

/// How a table row is marked (e.g. a user over budget): a class for the row and a badge.
#[derive(Clone, Debug, PartialEq)]
pub struct RowMark {
    pub row_class: &'static str,
    pub badge_class: &'static str,
    pub label: &'static str,
}

/// The whole dashboard of one range; rows of `users` and `deals` with a mark (keyed by
/// the row's key) are highlighted, and `more_totals` (cards the page adds, such as the
/// firm's budget) stand after the range's own totals.
#[component]
pub fn DashboardView(
    d: Dashboard,
    user_marks: Vec<(String, RowMark)>,
    deal_marks: Vec<(String, RowMark)>,
    more_totals: Option<AnyView>,
) -> impl IntoView {
    let t = d.by_day.totals.clone();
    let refused = d.refusals.iter().map(|r| r.count.max(0) as u64).sum::<u64>();
    let chart = chart::daily_chart(&d.from, &d.to, &d.by_day.rows);
    let range = format!("range=custom&from={}&to={}", d.from, d.to);
    let user_link = { let range = range.clone(); move |key: &str| Some(format!("/admin/tokens?{range}&user={key}")) };
    let deal_link = { let range = range.clone(); move |key: &str| (key != "0").then(|| format!("/admin/tokens?{range}&deal={key}")) };
    let no_link = |_: &str| None;
    view! {
        <p class="muted" data-testid="range">{format!("{} to {}", d.from, d.to)}</p>
        {d.focus.map(|name| view! {
            <p class="notice" data-testid="focus">"Showing only " <strong>{name}</strong> ". "
                <a href=format!("/admin/tokens?{range}")>"Show everyone"</a></p>
        })}
        <dl class="totals" data-testid="totals">
            <div><dt>"Calls"</dt><dd>{format_tokens(t.calls.max(0) as u64)}</dd></div>
            <div><dt>"Failed calls"</dt><dd>{format_tokens(t.failed_calls.max(0) as u64)}</dd></div>
            <div><dt>"Input tokens"</dt><dd>{format_tokens(t.input_tokens.max(0) as u64)}</dd></div>
            <div><dt>"Output tokens"</dt><dd>{format_tokens(t.output_tokens.max(0) as u64)}</dd></div>
            <div><dt>"Cache tokens"</dt><dd>{format_tokens((t.cache_creation_tokens + t.cache_read_tokens).max(0) as u64)}</dd></div>
            <div><dt>"Estimated cost"</dt><dd>{format_usd(t.cost_microusd)}</dd></div>
            <div data-testid="refused-total"><dt>"Refused calls"</dt><dd>{format_tokens(refused)}</dd></div>
            {(t.savings_microusd != 0).then(|| view! {
                <div data-testid="savings"><dt>"Saved by cheaper models"</dt><dd>{format_usd(t.savings_microusd)}</dd></div>
            })}
            {d.projection.clone().map(|p| view! {
                <div data-testid="projection"><dt>{format!("Projected for {}", p.month)}</dt><dd>{format_usd(p.month_end_microusd)}</dd>
                    <span class="small muted">{format!("{} so far, {} a day", format_usd(p.month_to_date_microusd), format_usd(p.per_day_microusd))}</span></div>
            })}
            {more_totals}
        </dl>
        {(t.default_priced_calls > 0).then(|| view! {
            <p class="notice warn">{format!("{} calls were priced at the default rates because their model has no configured price.", t.default_priced_calls)}</p>
        })}
        {(t.unknown_usage_calls > 0).then(|| view! {
            <p class="notice warn" data-testid="unknown-usage">{format!(
                "{} calls were billed by Claude but their usage could not be read (an answer lost in transit, or a server stopped mid-call); \
                 they are counted at the most they could have used.", t.unknown_usage_calls)}</p>
        })}
        // Each part boxed: the page's full view type is otherwise too deep for the
        // release build of the browser bundle.
        {view! { <DailyChart chart pace=d.projection.map(|p| p.per_day_microusd)/> }.into_any()}
        {view! { <UsageTable title="By user" report=d.by_user marks=user_marks link=user_link/> }.into_any()}
        {view! { <UsageTable title="By deal" report=d.by_deal marks=deal_marks link=deal_link/> }.into_any()}
        {view! { <RefusalsTable rows=d.refusals/> }.into_any()}
        {view! { <UsageTable title="By day" report=d.by_day marks=vec![] link=no_link/> }.into_any()}
        {view! { <UsageTable title="By model" report=d.by_model marks=vec![] link=no_link/> }.into_any()}
        {view! { <UsageTable title="By operation" report=d.by_operation marks=vec![] link=no_link/> }.into_any()}
    }
    .into_any()
}

/// Tokens (bars, left axis) and cost (line, right axis) per day, dated below; with
/// `pace`, the recent daily cost the month's projection assumes, dashed. Values of short
/// ranges are written over their bars; any bar's numbers show on hover or tap.
#[component]
fn DailyChart(chart: chart::Chart, pace: Option<i64>) -> impl IntoView {
    use chart::{BOTTOM, LEFT, RIGHT, TOP};
    let pace_y = pace.filter(|_| !chart.bars.is_empty()).map(|per_day| chart.cost_y(per_day));
    let hovered = RwSignal::new(None::<String>);
    let describe = |b: &Bar| format!("{}: {} tokens, {}", b.day, format_tokens(b.tokens.max(0) as u64), format_usd(b.cost_microusd));
    let line = chart.bars.iter().map(|b| format!("{:.1},{:.1}", b.x + b.width / 2.0, b.cost_y)).collect::<Vec<_>>().join(" ");
    let show_values = chart.bars.len() <= 14;
    // Gridlines at 0, half and the top of each scale.
    let ticks: Vec<(f64, String, String)> = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|k: f64| {
            let tokens = (chart.max_tokens as f64 * k).round() as i64;
            let cost = (chart.max_cost as f64 * k).round() as i64;
            (chart::TOP + (chart::BOTTOM - chart::TOP) * (1.0 - k), chart::compact(tokens), format_usd(cost))
        })
        .collect();
    let bars = chart.bars.clone();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {} {}", chart::WIDTH, chart::HEIGHT) role="img" aria-label="Tokens and cost per day" data-testid="daily-chart">
                {ticks.into_iter().map(|(y, tokens, dollars)| view! {
                    <line class="grid" x1=LEFT.to_string() x2=RIGHT.to_string() y1=format!("{y:.1}") y2=format!("{y:.1}")/>
                    <text class="axis tokens" x=format!("{:.1}", LEFT - 6.0) y=format!("{:.1}", y + 4.0) text-anchor="end">{tokens}</text>
                    <text class="axis dollars" x=format!("{:.1}", RIGHT + 6.0) y=format!("{:.1}", y + 4.0)>{dollars}</text>
                }).collect_view()}
                {bars.into_iter().map(|b| {
                    let text = describe(&b);
                    let hover = text.clone();
                    let tap = text.clone();
                    let center = b.x + b.width / 2.0;
                    view! {
                        <rect class="bar" x=format!("{:.1}", b.x) y=format!("{:.1}", b.y) width=format!("{:.1}", b.width) height=format!("{:.1}", b.height.max(0.5))
                            on:mouseenter=move |_| hovered.set(Some(hover.clone()))
                            on:click=move |_| hovered.set(Some(tap.clone()))>
                            <title>{text}</title>
                        </rect>
                        {(show_values && b.tokens > 0).then(|| view! {
                            <text class="value" x=format!("{center:.1}") y=format!("{:.1}", (b.y - 4.0).max(TOP - 2.0)) text-anchor="middle">{chart::compact(b.tokens)}</text>
                        })}
                        {b.label.map(|label| view! {
                            <text class="axis date" x=format!("{center:.1}") y=format!("{:.1}", BOTTOM + 16.0) text-anchor="middle">{label}</text>
                        })}
                    }
                }).collect_view()}
                <polyline class="cost-line" points=line fill="none"/>
                {pace_y.map(|y| view! {
                    <line class="pace-line" data-testid="pace-line" x1=LEFT.to_string() x2=RIGHT.to_string() y1=format!("{y:.1}") y2=format!("{y:.1}")>
                        <title>{format!("Recent pace: {} a day", format_usd(pace.unwrap_or(0)))}</title>
                    </line>
                })}
            </svg>
            <figcaption class="small">
                <span class="legend"><span class="swatch bars"></span>"Tokens per day (left scale)"</span>
                <span class="legend"><span class="swatch cost"></span>"Cost per day (right scale)"</span>
                {pace.map(|p| view! { <span class="legend"><span class="swatch pace"></span>{format!("Recent pace, {} a day", format_usd(p))}</span> })}
                <span class="muted" data-testid="chart-detail">{move || hovered.get().unwrap_or_else(|| "Hover or tap a bar for its numbers.".into())}</span>
            </figcaption>
        </figure>
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Column {
    Label,
    Calls,
    Failed,
    Tokens,
    Cost,
}

impl Column {
    /// The rows in this column's order (labels alphabetically), reversed for descending.
    fn sort(self, rows: &mut [UsageRow], descending: bool) {
        match self {
            Column::Label => rows.sort_by(|a, b| a.label.cmp(&b.label)),
            Column::Calls => rows.sort_by_key(|r| r.sums.calls),
            Column::Failed => rows.sort_by_key(|r| r.sums.failed_calls),
            Column::Tokens => rows.sort_by_key(|r| r.sums.total_tokens()),
            Column::Cost => rows.sort_by_key(|r| r.sums.cost_microusd),
        }
        if descending {
            rows.reverse();
        }
    }
}

/// One grouping as a sortable table; `link` gives a row its own breakdown page, and rows
/// with a mark (by key) are highlighted.
#[component]
fn UsageTable(
    title: &'static str,
    report: UsageReport,
    marks: Vec<(String, RowMark)>,
    link: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    let sort = RwSignal::new((Column::Label, false));
    let heading = report.group_by.heading();
    let csv = format!("/api/usage?group_by={}&from={}&to={}&format=csv", report.group_by.as_str(), report.from, report.to);
    let marks = StoredValue::new(marks);
    let link = StoredValue::new(link);
    let rows = StoredValue::new(report.rows);
    let sorted = move || {
        let (column, descending) = sort.get();
        let mut rows = rows.get_value();
        column.sort(&mut rows, descending);
        rows
    };
    // Each header boxed: the table's full view type is otherwise too deep for the release
    // build of the browser bundle.
    let header = move |column: Column, label: &'static str| view! { <SortHeader column label sort numeric=column != Column::Label/> }.into_any();
    view! {
        <section class="usage-table" data-testid=format!("table-{}", title.to_lowercase().replace(' ', "-"))>
            <div class="table-head">
                <h2>{title}</h2>
                <a href=csv download="" class="small">"Download CSV"</a>
            </div>
            <div class="table-scroll">
                {view! {
                    <table class="table">
                        <thead><tr>
                            {header(Column::Label, heading)}
                            {header(Column::Calls, "Calls")}
                            {header(Column::Failed, "Failed")}
                            <th class="num">"Input"</th><th class="num">"Output"</th><th class="num">"Cache"</th>
                            {header(Column::Tokens, "Tokens")}
                            {header(Column::Cost, "Est. cost")}
                        </tr></thead>
                        {view! {
                            <tbody>
                                {move || sorted().into_iter().map(|row| {
                                    let mark = marks.with_value(|m| m.iter().find(|(k, _)| *k == row.key).map(|(_, mark)| mark.clone()));
                                    let href = link.with_value(|l| l(&row.key));
                                    view! { <UsageRowView row mark href/> }
                                }).collect_view()}
                            </tbody>
                        }.into_any()}
                    </table>
                }.into_any()}
            </div>
        </section>
    }
}

/// Calls refused before reaching Claude, by user, deal and why — so an admin sees who is
/// being blocked, and by what.
#[component]
fn RefusalsTable(rows: Vec<RefusalRow>) -> impl IntoView {
    let body = if rows.is_empty() {
        view! { <p class="muted">"No calls were refused in this range."</p> }.into_any()
    } else {
        view! {
            <div class="table-scroll">
                <table class="table">
                    <thead><tr><th>"User"</th><th>"Deal"</th><th>"Refused by"</th><th class="num">"Calls"</th><th>"Latest (UTC)"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|r| view! {
                            <tr>
                                <td>{r.user}</td>
                                <td>{r.deal.unwrap_or_else(|| "—".into())}</td>
                                <td><span class="badge warn">{refusal_label(&r.kind)}</span></td>
                                <td class="num">{r.count}</td>
                                <td class="nowrap">{r.latest}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="usage-table" data-testid="table-refused">
            <div class="table-head"><h2>"Refused calls"</h2></div>
            {body}
        </section>
    }
}

#[component]
fn UsageRowView(row: UsageRow, mark: Option<RowMark>, href: Option<String>) -> impl IntoView {
    let s: UsageSums = row.sums;
    let tokens = |n: i64| format_tokens(n.max(0) as u64);
    let row_class = mark.as_ref().map_or("", |m| m.row_class);
    view! {
        <tr class=row_class>
            <td>
                {match href {
                    Some(href) => view! { <a href=href>{row.label}</a> }.into_any(),
                    None => view! { <span>{row.label}</span> }.into_any(),
                }}
                {mark.map(|m| view! { <span class=m.badge_class>{m.label}</span> })}
                {(s.default_priced_calls > 0).then(|| view! { <span class="badge warn" title="Priced at default rates">"default rates"</span> })}
                {(s.unknown_usage_calls > 0).then(|| view! { <span class="badge warn" title="Billed, usage unreadable: counted at the reservation">"usage unknown"</span> })}
            </td>
            <td class="num">{s.calls}</td>
            <td class="num">{s.failed_calls}</td>
            <td class="num">{tokens(s.input_tokens)}</td>
            <td class="num">{tokens(s.output_tokens)}</td>
            <td class="num">{tokens(s.cache_creation_tokens + s.cache_read_tokens)}</td>
            <td class="num">{tokens(s.total_tokens())}</td>
            <td class="num">{format_usd(s.cost_microusd)}</td>
        </tr>
    }
}
