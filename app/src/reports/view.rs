//! The report tab: generate a memo, browse its versions, read it rendered.

use leptos::prelude::*;

use super::ReportVersion;
use super::api::{GenerateReport, list_reports};
use crate::format::{format_tokens, format_usd};
use crate::ui::ErrorNotice;

/// `calls` is bumped after every memo generated (a Claude call), so the page reads the
/// budgets again.
#[component]
pub fn ReportTab(deal_id: i64, calls: RwSignal<u64>) -> impl IntoView {
    let generate = ServerAction::<GenerateReport>::new();
    let reports = Resource::new(move || generate.version().get(), move |_| list_reports(deal_id));
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
    view! {
        <div class="report">
            <div class="actions">
                <button
                    type="button"
                    class="button primary"
                    disabled=move || generate.pending().get()
                    on:click=move |_| { generate.dispatch(GenerateReport { deal_id }); }
                >"Generate memo"</button>
                <Show when=move || generate.pending().get()>
                    <span class="thinking" data-testid="report-pending">"Drafting the memo…"</span>
                </Show>
            </div>
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
    let by_id = versions.clone();
    view! {
        <div class="versions" aria-label="Memo versions">
            {versions.into_iter().map(|v| {
                let id = v.id;
                view! {
                    <button type="button" class="version"
                        aria-current=move || (shown() == Some(id)).then_some("true")
                        on:click=move |_| selected.set(Some(id))>
                        {format!("v{} · {} · {} · {} tokens · {} · {}",
                            v.version, v.created_at, v.author,
                            format_tokens(v.input_tokens + v.output_tokens), format_usd(v.cost_microusd), v.model)}
                    </button>
                }
            }).collect_view()}
        </div>
        {move || by_id.iter().find(|v| Some(v.id) == shown()).map(|v| view! {
            // Sanitised on the server (reports::render): raw HTML and unsafe links removed.
            <article class="memo" data-testid="memo" inner_html=v.html.clone()></article>
        })}
    }
}
