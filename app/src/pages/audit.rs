//! `/admin/audit`: every change to limits, budgets, prices and accounts.

use leptos::prelude::*;

use super::shell::Shell;
use crate::audit::api::list_audit;
use crate::audit::view::AuditLog;
use crate::ui::ErrorNotice;

#[component]
pub fn AuditPage() -> impl IntoView {
    let first = Resource::new(|| (), |_| list_audit(None));
    view! {
        <Shell>
            <div class="page-head"><h1>"Audit log"</h1></div>
            <Transition fallback=|| view! { <p class="muted">"Loading changes…"</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(page) => view! { <AuditLog entries=page.entries next_before=page.next_before/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}
