//! The report tab: the pre-flight estimate and Generate, the versions (labelled by
//! date, author, model and cost), the memo rendered, copied as Markdown, printed or
//! downloaded as Markdown or Word, and two versions side by side.

use leptos::prelude::*;

use super::ReportVersion;
use super::api::{GenerateReport, estimate_report, list_reports};
use crate::ui::{ErrorNotice, copy_text};

/// `calls` is bumped after every memo generated (a Claude call), so the page reads the
/// budgets again — and the estimate, which depends on them.
#[component]
pub fn ReportTab(deal_id: i64, calls: RwSignal<u64>) -> impl IntoView {
    let generate = ServerAction::<GenerateReport>::new();
    let reports = Resource::new(move || generate.version().get(), move |_| list_reports(deal_id));
    let estimate = Resource::new(move || calls.get(), move |_| estimate_report(deal_id));
    // None shows the newest version.
    let selected = RwSignal::new(None::<i64>);
    Effect::new(move |_| {
        if let Some(Ok(_)) = generate.value().get() {
            selected.set(None);
        }
    });
    Effect::new(move |_| {
        if generate.version().get() > 0 {
            calls.update(|n| *n += 1);
        }
    });
    // Whether the budgets would take a memo now (the server decides for real). Read in
    // an effect, which runs only in the browser: the server renders the button enabled
    // and the resource is awaited in one Transition only.
    let sendable = RwSignal::new(true);
    Effect::new(move |_| {
        if let Some(Ok(e)) = estimate.get() {
            sendable.set(e.sendable);
        }
    });
    view! {
        <div class="report">
            <div class="actions">
                <button
                    type="button"
                    class="button primary"
                    disabled=move || generate.pending().get() || !sendable.get()
                    on:click=move |_| { generate.dispatch(GenerateReport { deal_id }); }
                >"Generate memo"</button>
                <Show when=move || generate.pending().get()>
                    <span class="thinking" data-testid="report-pending">"Drafting the memo…"</span>
                </Show>
            </div>
            <Transition fallback=|| view! { <p class="preflight muted small">"Estimating…"</p> }>
                {move || Suspend::new(async move {
                    match estimate.await {
                        Ok(e) => view! { <p class="preflight muted small" data-testid="memo-estimate">{e.text}</p> }.into_any(),
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                    }
                })}
            </Transition>
            {move || generate.value().get().map(|result| match result {
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
                Ok(memo) => memo.limited.map(|note| view! { <p class="notice warn" role="status" data-testid="memo-limited">{note}</p> }).into_any(),
            })}
            <Transition fallback=|| view! { <p class="muted">"Loading memos…"</p> }>
                {move || Suspend::new(async move {
                    match reports.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(versions) if versions.is_empty() => view! {
                            <p class="muted">"No memo yet. Generate one from the deal's facts and its sales comps."</p>
                        }.into_any(),
                        Ok(versions) => view! { <Versions versions selected/> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn Versions(versions: Vec<ReportVersion>, selected: RwSignal<Option<i64>>) -> impl IntoView {
    let newest = versions.first().map(|v| v.id);
    let shown = move || selected.get().or(newest);
    // The version shown beside the current one, if any.
    let compare = RwSignal::new(None::<i64>);
    let versions = StoredValue::new(versions);
    let find = move |id: Option<i64>| versions.with_value(|all| all.iter().find(|v| Some(v.id) == id).cloned());
    view! {
        <div class="versions" role="group" aria-label="Memo versions">
            {versions.with_value(|all| all.iter().map(|v| {
                let id = v.id;
                view! {
                    <button type="button" class="version" data-testid="memo-version"
                        aria-pressed=move || (shown() == Some(id)).to_string()
                        on:click=move |_| selected.set(Some(id))>
                        {v.label()}
                    </button>
                }
            }).collect_view())}
        </div>
        {move || find(shown()).map(|v| view! { <MemoTools memo=v versions compare/> }.into_any())}
        {move || {
            let current = find(shown());
            match (current, find(compare.get()).filter(|c| Some(c.id) != shown())) {
                (Some(v), None) => view! {
                    // Sanitised on the server (crate::markdown): raw HTML and unsafe links removed.
                    <article class="memo" data-testid="memo" inner_html=v.html></article>
                }.into_any(),
                (Some(v), Some(other)) => view! {
                    <div class="memo-compare" data-testid="memo-compare">
                        <section aria-label=format!("Version {}", v.version)>
                            <h3 class="compare-label">{v.label()}</h3>
                            <article class="memo" data-testid="memo" inner_html=v.html></article>
                        </section>
                        <section aria-label=format!("Version {}", other.version)>
                            <h3 class="compare-label">{other.label()}</h3>
                            <article class="memo" data-testid="memo-other" inner_html=other.html></article>
                        </section>
                    </div>
                }.into_any(),
                (None, _) => ().into_any(),
            }
        }}
    }
}

/// What can be done with the version shown: copy, print, download, compare.
#[component]
fn MemoTools(memo: ReportVersion, versions: StoredValue<Vec<ReportVersion>>, compare: RwSignal<Option<i64>>) -> impl IntoView {
    let copied = RwSignal::new(None::<String>);
    let markdown = StoredValue::new(memo.markdown.clone());
    let id = memo.id;
    let others: Vec<(i64, String)> = versions.with_value(|all| all.iter().filter(|v| v.id != id).map(|v| (v.id, v.label())).collect());
    view! {
        <div class="memo-tools" role="toolbar" aria-label="Memo">
            <button type="button" class="button" on:click=move |_| copy_text(markdown.get_value(), "Copied as Markdown.", copied)>"Copy as Markdown"</button>
            <button type="button" class="button" on:click=move |_| print_page()>"Print"</button>
            <a class="button" data-testid="memo-md" href=format!("/api/reports/{id}/markdown") download>"Download .md"</a>
            <a class="button" data-testid="memo-docx" href=format!("/api/reports/{id}/docx") download>"Download .docx"</a>
            {(!others.is_empty()).then(|| view! {
                <label class="compare">"Compare with "
                    <select on:change=move |ev| compare.set(event_target_value(&ev).parse().ok())>
                        <option value="" selected=move || compare.get().is_none()>"No other version"</option>
                        {others.into_iter().map(|(other, label)| view! {
                            <option value=other.to_string() selected=move || compare.get() == Some(other)>{label}</option>
                        }).collect_view()}
                    </select>
                </label>
            })}
            <span class="muted small" role="status" data-testid="memo-copied">{move || copied.get()}</span>
        </div>
    }
}

/// Opens the browser's print dialog; the print stylesheet leaves only the memo.
fn print_page() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.print();
    }
}
