//! `/admin/alerts`: every budget alert, its webhook delivery, and acknowledgement.

use leptos::prelude::*;

use super::shell::Shell;
use crate::alerts::api::{AcknowledgeAlert, list_alerts};
use crate::alerts::view::AlertsTable;
use crate::ui::ErrorNotice;

#[component]
pub fn AlertsPage() -> impl IntoView {
    let acknowledge = ServerAction::<AcknowledgeAlert>::new();
    let alerts = Resource::new(move || acknowledge.version().get(), |_| list_alerts(None));
    view! {
        <Shell>
            <div class="page-head"><h1>"Alerts"</h1><a href="/api/alerts">"As JSON"</a></div>
            {move || acknowledge.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading alerts…"</p> }>
                {move || Suspend::new(async move {
                    match alerts.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(alerts) => view! { <AlertsTable alerts acknowledge/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}
