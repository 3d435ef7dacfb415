//! The deals list, and the pages to create and edit a deal.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::shell::Shell;
use crate::budget::view::BudgetBadge;
use crate::deals::Deal;
use crate::deals::api::{CreateDeal, UpdateDeal, get_deal, list_deals};
use crate::deals::view::{DealFields, DealTable};
use crate::error::AppError;
use crate::ui::ErrorNotice;

#[component]
pub fn DealsPage() -> impl IntoView {
    let deals = Resource::new(|| (), |_| list_deals());
    view! {
        <Shell>
            <div class="page-head">
                <h1>"Deals"</h1>
                <A href="/deals/new" attr:class="button primary">"New deal"</A>
            </div>
            <Suspense fallback=|| view! { <p class="muted">"Loading deals…"</p> }>
                {move || Suspend::new(async move {
                    match deals.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(deals) if deals.is_empty() => view! {
                            <p class="muted">"No deals yet. Create the first one."</p>
                        }.into_any(),
                        Ok(deals) => view! { <DealTable deals badge=|budget| view! { <BudgetBadge budget/> }.into_any()/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
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
