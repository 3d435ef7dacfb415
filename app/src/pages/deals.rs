//! The deals list with its search, and the pages to create and edit a deal.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_location, use_navigate, use_params_map, use_query_map};

use super::shell::Shell;
use crate::budget::view::BudgetBadge;
use crate::deals::Deal;
use crate::deals::api::{CreateDeal, UpdateDeal, get_deal, list_deals};
use crate::deals::view::{DealFields, DealTable};
use crate::error::AppError;
use crate::ui::ErrorNotice;

/// Every deal, found as you type in the search box. The search is kept in the URL
/// (`?q=`), so a reload or a shared link shows the same deals, and the box works without
/// JavaScript too (a GET form); the list is small, so the browser filters it.
#[component]
pub fn DealsPage() -> impl IntoView {
    let deals = Resource::new(|| (), |_| list_deals());
    let query = search_query();
    view! {
        <Shell>
            <div class="page-head">
                <h1>"Deals"</h1>
                <A href="/deals/new" attr:class="button primary">"New deal"</A>
            </div>
            <DealSearch query/>
            <Suspense fallback=|| view! { <p class="muted">"Loading deals…"</p> }>
                {move || Suspend::new(async move {
                    match deals.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(deals) if deals.is_empty() => view! {
                            <p class="muted">"No deals yet. Create the first one."</p>
                        }.into_any(),
                        Ok(deals) => view! {
                            <DealTable deals query=query.into() badge=|budget| view! { <BudgetBadge budget/> }.into_any()/>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

/// The search as the URL has it when the page opens; from then on the box leads and the
/// URL follows (so a keystroke is never overwritten by an older URL).
fn search_query() -> RwSignal<String> {
    let query = use_query_map();
    RwSignal::new(query.with_untracked(|q| q.get("q").unwrap_or_default()))
}

/// The search box: filters as you type, keeping the search in the URL without adding a
/// history entry per keystroke.
#[component]
fn DealSearch(query: RwSignal<String>) -> impl IntoView {
    let navigate = use_navigate();
    let path = use_location().pathname;
    let follow = move |text: String| {
        let path = path.get_untracked();
        let url = if text.trim().is_empty() { path } else { format!("{path}?q={}", encode_query(&text)) };
        navigate(&url, NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let typed = follow.clone();
    view! {
        <form class="search" role="search" method="get" action="/deals"
            on:submit=move |ev| {
                ev.prevent_default();
                follow(query.get_untracked());
            }>
            <input type="search" name="q" aria-label="Search deals" placeholder="Search by name, type, address or date"
                value=query.get_untracked() prop:value=query
                on:input:target=move |ev| {
                    let text = ev.target().value();
                    query.set(text.clone());
                    typed(text);
                }/>
            <button type="submit" class="button">"Search"</button>
        </form>
    }
}

/// `text` as a URL query value: unreserved characters as they are, the rest as UTF-8
/// percent escapes.
fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The deal id in the URL, if it is a number.
pub fn deal_id_param() -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|id| id.parse().ok()))
}

pub fn deal_resource(id: Memo<Option<i64>>) -> Resource<Result<Deal, AppError>> {
    Resource::new(move || id.get(), |id| async move {
        match id {
            Some(id) => get_deal(id).await,
            None => Err(AppError::not_found("deal")),
        }
    })
}

#[component]
pub fn NewDealPage() -> impl IntoView {
    let create = ServerAction::<CreateDeal>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = create.value().get() {
            navigate(&format!("/deals/{id}"), Default::default());
        }
    });
    view! {
        <Shell>
            <h1>"New deal"</h1>
            <ActionForm action=create attr:class="card form">
                <DealFields deal=None/>
                {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                <div class="actions">
                    <button type="submit" class="button primary" disabled=move || create.pending().get()>"Create deal"</button>
                    <A href="/deals">"Cancel"</A>
                </div>
            </ActionForm>
        </Shell>
    }
}

#[component]
pub fn EditDealPage() -> impl IntoView {
    let id = deal_id_param();
    let deal = deal_resource(id);
    let update = ServerAction::<UpdateDeal>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = update.value().get() {
            navigate(&format!("/deals/{id}"), Default::default());
        }
    });
    view! {
        <Shell>
            <h1>"Edit deal"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match deal.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(deal) => {
                            let id = deal.id;
                            view! {
                                <ActionForm action=update attr:class="card form">
                                    <input type="hidden" name="id" value=id/>
                                    <DealFields deal=Some(deal)/>
                                    {move || update.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                                    <div class="actions">
                                        <button type="submit" class="button primary" disabled=move || update.pending().get()>"Save changes"</button>
                                        <A href=format!("/deals/{id}")>"Cancel"</A>
                                    </div>
                                </ActionForm>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Shell>
    }
}

#[cfg(test)]
mod tests {
    use super::encode_query;

    #[test]
    fn a_search_is_written_into_the_url_safely() {
        assert_eq!(encode_query("harbor"), "harbor");
        assert_eq!(encode_query("Harbor Point"), "Harbor%20Point");
        assert_eq!(encode_query("a&b=c?#%"), "a%26b%3Dc%3F%23%25");
        assert_eq!(encode_query("café"), "caf%C3%A9");
        assert_eq!(encode_query("<script>"), "%3Cscript%3E");
    }
}
