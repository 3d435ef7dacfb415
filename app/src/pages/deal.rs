//! The deal page: the deal's header, its budgets, and the Chat, Report and Sales comps
//! tabs, composed from the features' views. A deal that does not exist (or an id that
//! is not a number) gets only a notice and the way back to the list: no tabs.
//!
//! The header waits for the deal inside its own Suspense. The workspace (budgets and
//! tabs) is its sibling, keyed by the deal id in the URL, so its resources are created
//! once per deal and never inside the header's Suspense — where every re-run would
//! create them anew and the page's stream would never finish. Every resource is awaited
//! in exactly one Transition, through `Suspend`: one awaited by two boundaries can leave
//! one of them (and the page's stream) waiting for ever. So that the workspace is never
//! drawn for a deal that does not exist, the server's request guard says so before the
//! page renders (`DealNotFound`), and the browser learns it from the server while
//! hydrating, or from the deal's answer after a navigation.

use leptos::prelude::*;

use super::deals::{deal_id_param, deal_resource};
use super::shell::Shell;
use super::split::{split_view, tab_unavailable};
use crate::budget::BudgetStatus;
use crate::budget::api::get_budget_status;
use crate::budget::view::BudgetPanel;
use crate::chat::view::{ChatSelection, ChatTab};
use crate::comps::view::CompsTab;
use crate::deals::Deal;
use crate::deals::view::DealHeader;
use crate::reports::view::ReportTab;
use crate::error::{AppError, ErrorKind};
use crate::ui::ErrorNotice;

#[component]
pub fn DealPage() -> impl IntoView {
    let id = deal_id_param();
    let deal = deal_resource(id);
    let missing = deal_missing(deal);
    view! {
        <Shell>
            <Suspense fallback=|| view! { <p class="muted">"Loading deal…"</p> }>
                {move || Suspend::new(async move {
                    match deal.await {
                        Err(error) => view! {
                            <ErrorNotice error/>
                            <p data-testid="back-to-deals"><a href="/deals">"Back to the deals"</a></p>
                        }.into_any(),
                        Ok(deal) => view! { <DealHeader deal/> }.into_any(),
                    }
                })}
            </Suspense>
            {move || (!missing.get()).then(|| id.get().map(|deal_id| view! { <DealWorkspace deal_id/> }))}
        </Shell>
    }
}

/// Put into a `/deals/{id}` request's extensions by the server's request guard, before
/// the page renders, when no deal has that id.
#[derive(Clone, Copy, Debug)]
pub struct DealNotFound;

/// Whether the deal in the URL is known not to exist: from the server's guard when the
/// page is rendered there (and so, identically, while the browser hydrates it), then
/// from the deal's own answer (a navigation in the page to a deal that is not there).
/// Read in an effect, not in the view: the resource is awaited by the header only.
fn deal_missing(deal: Resource<Result<Deal, AppError>>) -> RwSignal<bool> {
    let missing = RwSignal::new(SharedValue::new(missing_on_the_server).into_inner());
    Effect::new(move |_| {
        if let Some(result) = deal.get() {
            let now = matches!(result, Err(ref error) if error.kind == ErrorKind::NotFound);
            if missing.get_untracked() != now {
                missing.set(now);
            }
        }
    });
    missing
}

/// On the server: whether the request guard found no such deal. In the browser (a page
/// not hydrating) nothing is known yet.
fn missing_on_the_server() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>().is_some_and(|parts| parts.extensions.get::<DealNotFound>().is_some())
    }
    #[cfg(not(feature = "ssr"))]
    {
        false
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tab {
    Chat,
    Report,
    Comps,
}

impl Tab {
    const ALL: [Tab; 3] = [Tab::Chat, Tab::Report, Tab::Comps];

    /// The tab the arrow keys, Home and End move to from this one (they wrap around).
    fn after_key(self, key: &str) -> Option<Tab> {
        let n = Tab::ALL.len();
        let i = Tab::ALL.iter().position(|t| *t == self)?;
        let next = match key {
            "ArrowRight" => (i + 1) % n,
            "ArrowLeft" => (i + n - 1) % n,
            "Home" => 0,
            "End" => n - 1,
            _ => return None,
        };
        Some(Tab::ALL[next])
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Chat => "Chat",
            Tab::Report => "Report",
            Tab::Comps => "Sales comps",
        }
    }
}

/// The budgets every tab works within, and the tabs. A tab that makes a Claude call bumps
/// `calls`, and the budgets are read again.
#[component]
fn DealWorkspace(deal_id: i64) -> impl IntoView {
    let tab = RwSignal::new(Tab::Chat);
    // The conversation named in the address (`/deals/{id}/chat/{thread}`), read once.
    let thread = leptos_router::hooks::use_params_map().with_untracked(|p| p.get("thread").and_then(|t| t.parse().ok()));
    let selection = ChatSelection::new(thread);
    let calls = RwSignal::new(0u64);
    // Bumped by a tab's "Try again" when its code did not arrive.
    let retry = RwSignal::new(0u32);
    let budget = Resource::new(move || calls.get(), move |_| get_budget_status(deal_id));
    // The tabs' copy of the latest status (their pre-flight estimates, a blocked Send),
    // for the browser: an effect runs only there, after hydration, so this reads the
    // resource outside every Suspense boundary and the server renders without it.
    let known = RwSignal::new(None::<BudgetStatus>);
    Effect::new(move |_| {
        if let Some(Ok(status)) = budget.get() {
            known.set(Some(status));
        }
    });
    let known = Signal::from(known);
    view! {
        <div class="deal-tabs">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    budget.await.ok().map(|status| view! { <BudgetPanel status/> })
                })}
            </Transition>
            <div class="tabs" role="tablist">
                {Tab::ALL.into_iter().map(|t| view! {
                    <button
                        type="button"
                        role="tab"
                        class="tab"
                        aria-selected=move || (tab.get() == t).to_string()
                        tabindex=move || if tab.get() == t { "0" } else { "-1" }
                        on:click=move |_| tab.set(t)
                        on:keydown=move |ev| {
                            if let Some(next) = t.after_key(&ev.key()) {
                                ev.prevent_default();
                                tab.set(next);
                                focus_tab(&ev, next);
                            }
                        }
                    >{t.label()}</button>
                }).collect_view()}
            </div>
            <section class="tab-panel" role="tabpanel" data-testid="tab-panel">
                {move || {
                    retry.track();
                    match tab.get() {
                        Tab::Chat => view! { <ChatTab deal_id budget=known calls selection/> }.into_any(),
                        Tab::Report => view! {
                            <Suspense fallback=loading_tab>{Suspend::new(async move {
                                report_tab(deal_id, calls).await.unwrap_or_else(|_| tab_unavailable(retry))
                            })}</Suspense>
                        }.into_any(),
                        Tab::Comps => view! {
                            <Suspense fallback=loading_tab>{Suspend::new(async move {
                                comps_tab(deal_id, calls, known).await.unwrap_or_else(|_| tab_unavailable(retry))
                            })}</Suspense>
                        }.into_any(),
                    }
                }}
            </section>
        </div>
    }
}

/// Shown while a tab's code is fetched (the first time it is opened, on a slow network).
fn loading_tab() -> impl IntoView {
    view! { <p class="muted" role="status">"Loading the tab…"</p> }
}

split_view! {
    /// The Report tab, a chunk of the browser bundle of its own: fetched when the tab is
    /// first opened, not with the deal page (the Chat tab, open first, comes with the page).
    fn report_tab, preload __preload_report_tab (deal_id: i64, calls: RwSignal<u64>) {
        view! { <ReportTab deal_id calls/> }.into_any()
    }
}

split_view! {
    /// The Sales comps tab, a chunk of its own like the Report tab.
    fn comps_tab, preload __preload_comps_tab (deal_id: i64, calls: RwSignal<u64>, budget: Signal<Option<BudgetStatus>>) {
        view! { <CompsTab deal_id calls budget/> }.into_any()
    }
}

/// Moves the keyboard focus to tab `to` (a sibling of the tab the key was pressed on).
fn focus_tab(ev: &leptos::ev::KeyboardEvent, to: Tab) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let index = Tab::ALL.iter().position(|t| *t == to).unwrap_or(0) as u32;
        let sibling = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|tab| tab.parent_element())
            .and_then(|list| list.children().item(index))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(element) = sibling {
            let _ = element.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, to);
}

#[cfg(test)]
mod tests {
    use super::Tab;

    #[test]
    fn arrow_keys_move_between_tabs_and_wrap() {
        assert_eq!(Tab::Chat.after_key("ArrowRight"), Some(Tab::Report));
        assert_eq!(Tab::Comps.after_key("ArrowRight"), Some(Tab::Chat));
        assert_eq!(Tab::Chat.after_key("ArrowLeft"), Some(Tab::Comps));
        assert_eq!(Tab::Report.after_key("Home"), Some(Tab::Chat));
        assert_eq!(Tab::Report.after_key("End"), Some(Tab::Comps));
        assert_eq!(Tab::Report.after_key("a"), None);
    }
}
