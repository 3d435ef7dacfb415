//! Deal pages: the list, the create and edit forms, and the deal page with its tabs.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::api::{CreateDeal, UpdateDeal, get_deal, list_deals};
use super::{Deal, PROPERTY_TYPES, format_price};
use crate::chat::view::ChatTab;
use crate::comps::view::CompsTab;
use crate::reports::view::ReportTab;
use crate::error::AppError;
use crate::layout::{ErrorNotice, Shell};

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
                        Ok(deals) => view! { <DealTable deals/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

#[component]
fn DealTable(deals: Vec<Deal>) -> impl IntoView {
    view! {
        <table class="table deals">
            <thead>
                <tr><th>"Deal"</th><th>"Type"</th><th>"Address"</th><th class="num">"Asking price"</th><th>"Budget"</th><th>"Updated"</th></tr>
            </thead>
            <tbody>
                {deals.into_iter().map(|d| view! {
                    <tr>
                        <td><A href=format!("/deals/{}", d.id)>{d.name}</A></td>
                        <td>{d.property_type}</td>
                        <td>{d.address}</td>
                        <td class="num">{format_price(d.asking_price)}</td>
                        <td><BudgetBadge budget=d.budget/></td>
                        <td>{d.updated_on}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// A deal's budget standing in the list: nothing while it is fine.
#[component]
fn BudgetBadge(budget: crate::budget::DealBudget) -> impl IntoView {
    use crate::budget::BudgetState;
    let pct = if budget.limit == 0 { 100 } else { budget.used * 100 / budget.limit };
    match budget.state {
        BudgetState::Ok => view! { <span class="muted small">{format!("{pct}%")}</span> }.into_any(),
        BudgetState::Warning => view! { <span class="badge warn" data-testid="budget-warning">{format!("Warning · {pct}% used")}</span> }.into_any(),
        BudgetState::Blocked => view! { <span class="badge blocked" data-testid="budget-blocked">"Blocked · budget used up"</span> }.into_any(),
    }
}

/// The deal id in the URL, if it is a number.
fn deal_id_param() -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|id| id.parse().ok()))
}

fn deal_resource(id: Memo<Option<i64>>) -> Resource<Result<Deal, AppError>> {
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

/// The inputs of the create and edit forms, pre-filled when editing.
#[component]
fn DealFields(deal: Option<Deal>) -> impl IntoView {
    let (name, address, kind, price, notes) = match deal {
        Some(d) => (
            d.name,
            d.address,
            d.property_type,
            d.asking_price.map(|p| p.to_string()).unwrap_or_default(),
            d.notes,
        ),
        None => Default::default(),
    };
    view! {
        <label>"Name"
            <input name="name" required maxlength=super::MAX_NAME_CHARS value=name placeholder="e.g. Harbor Point Office Tower"/>
        </label>
        <label>"Address"
            <input name="address" maxlength=super::MAX_ADDRESS_CHARS value=address/>
        </label>
        <label>"Property type"
            <select name="property_type">
                {PROPERTY_TYPES.iter().map(|t| {
                    let selected = *t == kind;
                    view! { <option value=*t selected=selected>{*t}</option> }
                }).collect_view()}
            </select>
        </label>
        <label>"Asking price (USD)"
            <input name="asking_price" value=price inputmode="decimal" placeholder="e.g. 12,500,000 or 12.5M"/>
        </label>
        <label>"Notes"
            <textarea name="notes" rows="6" maxlength=super::MAX_NOTES_CHARS>{notes}</textarea>
        </label>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Chat,
    Report,
    Comps,
}

impl Tab {
    const ALL: [Tab; 3] = [Tab::Chat, Tab::Report, Tab::Comps];

    fn label(self) -> &'static str {
        match self {
            Tab::Chat => "Chat",
            Tab::Report => "Report",
            Tab::Comps => "Sales comps",
        }
    }
}

#[component]
pub fn DealPage() -> impl IntoView {
    let id = deal_id_param();
    let deal = deal_resource(id);
    view! {
        <Shell>
            <Suspense fallback=|| view! { <p class="muted">"Loading deal…"</p> }>
                {move || Suspend::new(async move {
                    match deal.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(deal) => view! { <DealView deal/> }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}

#[component]
fn DealView(deal: Deal) -> impl IntoView {
    let tab = RwSignal::new(Tab::Chat);
    let deal_id = deal.id;
    let edit_href = format!("/deals/{}/edit", deal.id);
    view! {
        <div class="page-head">
            <div>
                <h1 data-testid="deal-name">{deal.name.clone()}</h1>
                <p class="muted">{deal.property_type.clone()} " · " {deal.address.clone()}</p>
            </div>
            <A href=edit_href attr:class="button">"Edit"</A>
        </div>
        <dl class="facts">
            <dt>"Asking price"</dt><dd>{format_price(deal.asking_price)}</dd>
            <dt>"Created by"</dt><dd>{deal.created_by.clone()}</dd>
            <dt>"Last updated"</dt><dd>{deal.updated_on.clone()}</dd>
        </dl>
        {(!deal.notes.is_empty()).then(|| view! { <p class="notes">{deal.notes.clone()}</p> })}
        <div class="tabs" role="tablist">
            {Tab::ALL.into_iter().map(|t| view! {
                <button
                    type="button"
                    role="tab"
                    class="tab"
                    aria-selected=move || (tab.get() == t).to_string()
                    on:click=move |_| tab.set(t)
                >{t.label()}</button>
            }).collect_view()}
        </div>
        <section class="tab-panel" role="tabpanel" data-testid="tab-panel">
            {move || match tab.get() {
                Tab::Chat => view! { <ChatTab deal_id/> }.into_any(),
                Tab::Report => view! { <ReportTab deal_id/> }.into_any(),
                Tab::Comps => view! { <CompsTab deal_id/> }.into_any(),
            }}
        </section>
    }
}
