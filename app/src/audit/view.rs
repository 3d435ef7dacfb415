//! The audit log as a table, with older pages on request.

use leptos::prelude::*;

use super::AuditEntry;
use super::api::list_audit;
use crate::ui::ErrorNotice;

/// The newest entries, and a button that appends older ones.
#[component]
pub fn AuditLog(entries: Vec<AuditEntry>, next_before: Option<i64>) -> impl IntoView {
    let older = RwSignal::new(Vec::<AuditEntry>::new());
    let next = RwSignal::new(next_before);
    let failed = RwSignal::new(None);
    let load_older = move |_| {
        let Some(before) = next.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            match list_audit(Some(before)).await {
                Ok(page) => {
                    older.update(|o| o.extend(page.entries));
                    next.set(page.next_before);
                }
                Err(error) => failed.set(Some(error)),
            }
        });
    };
    let empty = entries.is_empty();
    view! {
        {empty.then(|| view! { <p class="muted">"No changes yet."</p> })}
        <div class="table-scroll">
            <table class="table" data-testid="audit-log">
                <thead><tr><th>"When (UTC)"</th><th>"Who"</th><th>"What"</th><th>"Before"</th><th>"After"</th></tr></thead>
                <tbody>
                    {entries.into_iter().map(|e| view! { <AuditRow entry=e/> }).collect_view()}
                    {move || older.get().into_iter().map(|e| view! { <AuditRow entry=e/> }).collect_view()}
                </tbody>
            </table>
        </div>
        {move || failed.get().map(|error| view! { <ErrorNotice error/> })}
        <Show when=move || next.get().is_some()>
            <button type="button" class="button" on:click=load_older>"Older changes"</button>
        </Show>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    view! {
        <tr>
            <td class="nowrap">{entry.at}</td>
            <td>{entry.actor}</td>
            <td>{entry.subject}</td>
            <td class="audit-value">{entry.old_value}</td>
            <td class="audit-value">{entry.new_value}</td>
        </tr>
    }
}
