//! `/admin/limits`: the firm's limits; every change is applied at once and audited.

use leptos::prelude::*;

use super::shell::Shell;
use crate::budget::api::{ResetLimits, SaveLimits, get_limits};
use crate::budget::view::LimitsAdmin;
use crate::ui::ErrorNotice;

#[component]
pub fn LimitsPage() -> impl IntoView {
    let save = ServerAction::<SaveLimits>::new();
    let reset = ServerAction::<ResetLimits>::new();
    let limits = Resource::new(move || (save.version().get(), reset.version().get()), |_| get_limits());
    view! {
        <Shell>
            <div class="page-head"><h1>"Limits"</h1><a href="/admin/audit">"Audit log"</a></div>
            <Transition fallback=|| view! { <p class="muted">"Loading limits…"</p> }>
                {move || Suspend::new(async move {
                    match limits.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(view) => view! { <LimitsAdmin view save reset/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}
