//! `/admin/tokens`: who spent what, on which deal, when, and what it cost. Works without
//! JavaScript (range links, a GET form, an SVG chart with native tooltips, CSV links);
//! once hydrated, tables sort and the chart shows hover detail.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::api::{Dashboard, get_usage_dashboard};
use super::chart::{self, Bar};
use super::{UsageReport, UsageRow, UsageSums};
use crate::budget::{BudgetState, format_tokens};
use crate::claude::pricing::format_usd;
use crate::layout::{ErrorNotice, Shell};

const RANGES: [(&str, &str); 4] = [("today", "Today"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days")];

#[component]
pub fn TokensPage() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default();
        (get("range"), get("from"), get("to"), get("user"), get("deal"))
    };
    let dashboard = Resource::new(params, |(range, from, to, user, deal)| get_usage_dashboard(range, from, to, user, deal));
    view! {
        <Shell>
            <div class="page-head"><h1>"Token usage"</h1></div>
            <nav class="ranges" aria-label="Date range">
                {RANGES.into_iter().map(|(value, label)| view! {
                    <a href=format!("/admin/tokens?range={value}")
                        aria-current=move || (params().0 == value || (value == "30" && params().0.is_empty())).then_some("page")>{label}</a>
                }).collect_view()}
                <form method="get" action="/admin/tokens" class="custom-range">
                    <input type="hidden" name="range" value="custom"/>
                    <label>"From"<input type="date" name="from" value=move || params().1/></label>
                    <label>"To"<input type="date" name="to" value=move || params().2/></label>
                    <button type="submit" class="button">"Show"</button>
                </form>
            </nav>
            <Suspense fallback=|| view! { <p class="muted">"Loading usage…"</p> }>
                {move || Suspend::new(async move {
                    match dashboard.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(d) => view! { <DashboardView d/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let t = d.by_day.totals.clone();
    let bars = chart::daily_bars(&d.from, &d.to, &d.by_day.rows);
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
        </dl>
        {(t.default_priced_calls > 0).then(|| view! {
            <p class="notice warn">{format!("{} calls were priced at the default rates because their model has no configured price.", t.default_priced_calls)}</p>
        })}
        <DailyChart bars/>
        <UsageTable title="By user" report=d.by_user flagged=d.flagged_users link=user_link/>
        <UsageTable title="By deal" report=d.by_deal flagged=d.flagged_deals link=deal_link/>
        <UsageTable title="By day" report=d.by_day flagged=vec![] link=no_link/>
        <UsageTable title="By model" report=d.by_model flagged=vec![] link=no_link/>
        <UsageTable title="By operation" report=d.by_operation flagged=vec![] link=no_link/>
    }
}

#[component]
fn DailyChart(bars: Vec<Bar>) -> impl IntoView {
    let hovered = RwSignal::new(None::<String>);
    let describe = |b: &Bar| format!("{}: {} tokens, {}", b.day, format_tokens(b.tokens.max(0) as u64), format_usd(b.cost_microusd));
    let line = bars.iter().map(|b| format!("{:.1},{:.1}", b.x + b.width / 2.0, b.cost_y)).collect::<Vec<_>>().join(" ");
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {} {}", chart::WIDTH, chart::HEIGHT) role="img" aria-label="Tokens and cost per day" data-testid="daily-chart">
                {bars.iter().map(|b| {
                    let text = describe(b);
                    let hover = text.clone();
                    view! {
                        <rect class="bar" x=format!("{:.1}", b.x) y=format!("{:.1}", b.y) width=format!("{:.1}", b.width) height=format!("{:.1}", b.height.max(0.5))
                            on:mouseenter=move |_| hovered.set(Some(hover.clone()))>
                            <title>{text}</title>
                        </rect>
                    }
                }).collect_view()}
                <polyline class="cost-line" points=line fill="none"/>
            </svg>
            <figcaption class="muted small">
                {move || hovered.get().unwrap_or_else(|| "Bars: tokens per day. Line: estimated cost. Hover a bar for its numbers.".into())}
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

/// One grouping as a sortable table; `link` gives a row its own breakdown page, and
/// `flagged` rows (warning or over budget) are highlighted.
#[component]
fn UsageTable(
    title: &'static str,
    report: UsageReport,
    flagged: Vec<(String, BudgetState)>,
    link: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    let sort = RwSignal::new((Column::Label, false));
    let csv = format!("/api/usage?group_by={}&from={}&to={}&format=csv", report.group_by.as_str(), report.from, report.to);
    let flagged = StoredValue::new(flagged);
    let link = StoredValue::new(link);
    let rows = StoredValue::new(report.rows);
    let sorted = move || {
        let (column, descending) = sort.get();
        let mut rows = rows.get_value();
        let key = |r: &UsageRow| -> i64 {
            match column {
                Column::Label => 0,
                Column::Calls => r.sums.calls,
                Column::Failed => r.sums.failed_calls,
                Column::Tokens => r.sums.total_tokens(),
                Column::Cost => r.sums.cost_microusd,
            }
        };
        if column == Column::Label {
            rows.sort_by(|a, b| a.label.cmp(&b.label));
        } else {
            rows.sort_by_key(key);
        }
        if descending {
            rows.reverse();
        }
        rows
    };
    let header = move |column: Column, label: &'static str| {
        view! {
            <th class=if column == Column::Label { "" } else { "num" }
                aria-sort=move || match sort.get() { (c, true) if c == column => "descending", (c, false) if c == column => "ascending", _ => "none" }>
                <button type="button" class="sort" on:click=move |_| sort.update(|(c, d)| { *d = *c == column && !*d; *c = column; })>{label}</button>
            </th>
        }
    };
    view! {
        <section class="usage-table" data-testid=format!("table-{}", title.to_lowercase().replace(' ', "-"))>
            <div class="table-head">
                <h2>{title}</h2>
                <a href=csv.clone() download="" class="small">"Download CSV"</a>
            </div>
            <table class="table">
                <thead><tr>
                    {header(Column::Label, "Name")}
                    {header(Column::Calls, "Calls")}
                    {header(Column::Failed, "Failed")}
                    <th class="num">"Input"</th><th class="num">"Output"</th><th class="num">"Cache"</th>
                    {header(Column::Tokens, "Tokens")}
                    {header(Column::Cost, "Est. cost")}
                </tr></thead>
                <tbody>
                    {move || sorted().into_iter().map(|r| {
                        let s: UsageSums = r.sums;
                        let state = flagged.with_value(|f| f.iter().find(|(k, _)| *k == r.key).map(|(_, s)| *s));
                        let (class, badge) = match state {
                            Some(BudgetState::Blocked) => ("row-blocked", Some(("badge blocked", "over budget"))),
                            Some(BudgetState::Warning) => ("row-warning", Some(("badge warn", "budget warning"))),
                            _ => ("", None),
                        };
                        let href = link.with_value(|l| l(&r.key));
                        view! {
                            <tr class=class>
                                <td>
                                    {match href {
                                        Some(href) => view! { <a href=href>{r.label}</a> }.into_any(),
                                        None => view! { <span>{r.label}</span> }.into_any(),
                                    }}
                                    {badge.map(|(class, text)| view! { <span class=class>{text}</span> })}
                                    {(s.default_priced_calls > 0).then(|| view! { <span class="badge warn" title="Priced at default rates">"default rates"</span> })}
                                </td>
                                <td class="num">{s.calls}</td>
                                <td class="num">{s.failed_calls}</td>
                                <td class="num">{format_tokens(s.input_tokens.max(0) as u64)}</td>
                                <td class="num">{format_tokens(s.output_tokens.max(0) as u64)}</td>
                                <td class="num">{format_tokens((s.cache_creation_tokens + s.cache_read_tokens).max(0) as u64)}</td>
                                <td class="num">{format_tokens(s.total_tokens().max(0) as u64)}</td>
                                <td class="num">{format_usd(s.cost_microusd)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
