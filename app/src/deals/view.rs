//! Deal components: the list's searchable, sortable table, the fields of the create and edit forms, and a
//! deal's header. Pages (`pages/deals.rs`, `pages/deal.rs`) put them together.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{Deal, DealColumn, DealSummary, PropertyType, search_and_sort};
use crate::budget::DealBudget;
use crate::format::format_price;
use crate::ui::{SortHeader, textarea_text};

/// The deals a search finds, as a table ordered by any column's header (most recently
/// changed first until one is pressed); `badge` shows a deal's budget standing (the page
/// decides how). A search that finds nothing says so, quoting it.
#[component]
pub fn DealTable(deals: Vec<DealSummary>, query: Signal<String>, badge: fn(DealBudget) -> AnyView) -> impl IntoView {
    let sort = RwSignal::new((DealColumn::Updated, true));
    let deals = StoredValue::new(deals);
    let shown = Memo::new(move |_| {
        let (column, descending) = sort.get();
        query.with(|q| deals.with_value(|all| search_and_sort(all, q, column, descending)))
    });
    // Each header boxed: the table's full view type is otherwise too deep for the release
    // build of the browser bundle.
    let header = move |column: DealColumn, label: &'static str| {
        view! { <SortHeader column label sort numeric=column == DealColumn::AskingPrice/> }.into_any()
    };
    view! {
        <div class="table-scroll" hidden=move || shown.with(Vec::is_empty)>
            <table class="table deals" data-testid="deals">
                <thead>
                    <tr>
                        {header(DealColumn::Name, "Deal")}
                        {header(DealColumn::Type, "Type")}
                        {header(DealColumn::Address, "Address")}
                        {header(DealColumn::AskingPrice, "Asking price")}
                        <th>"Budget"</th>
                        {header(DealColumn::Updated, "Updated")}
                    </tr>
                </thead>
                {view! {
                    <tbody>
                        {move || shown.get().into_iter().map(|DealSummary { deal: d, budget }| view! {
                            <tr data-testid="deal-row">
                                <td><A href=format!("/deals/{}", d.id)>{d.name}</A></td>
                                <td>{d.property_type.label()}</td>
                                <td>{d.address}</td>
                                <td class="num nowrap">{format_price(d.asking_price)}</td>
                                <td>{badge(budget)}</td>
                                <td class="nowrap">{d.updated_on}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                }.into_any()}
            </table>
        </div>
        {move || shown.with(Vec::is_empty).then(|| view! {
            <p class="muted" role="status" data-testid="no-deals-match">{format!("No deals match “{}”.", query.get().trim())}</p>
        })}
    }
}

/// The inputs of the create and edit forms, pre-filled when editing.
#[component]
pub fn DealFields(deal: Option<Deal>) -> impl IntoView {
    let (name, address, kind, price, notes) = match deal {
        Some(d) => (d.name, d.address, Some(d.property_type), d.asking_price.map(|p| format_price(Some(p))).unwrap_or_default(), d.notes),
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
                {PropertyType::ALL.into_iter().map(|t| {
                    view! { <option value=t.label() selected=kind == Some(t)>{t.label()}</option> }
                }).collect_view()}
            </select>
        </label>
        <label>"Asking price (USD)"
            <input name="asking_price" value=price inputmode="decimal" placeholder="e.g. 12,500,000 or 12.5M"/>
        </label>
        <label>"Notes"
            <textarea name="notes" rows="6" maxlength=super::MAX_NOTES_CHARS>{textarea_text(notes)}</textarea>
        </label>
    }
}

/// A deal's name, type, address and facts.
#[component]
pub fn DealHeader(deal: Deal) -> impl IntoView {
    let edit_href = format!("/deals/{}/edit", deal.id);
    view! {
        <div class="page-head">
            <div>
                <h1 data-testid="deal-name">{deal.name.clone()}</h1>
                <p class="muted">{deal.property_type.label()} " · " {deal.address.clone()}</p>
            </div>
            <A href=edit_href attr:class="button">"Edit"</A>
        </div>
        <dl class="facts">
            <dt>"Asking price"</dt><dd>{format_price(deal.asking_price)}</dd>
            <dt>"Created by"</dt><dd>{deal.created_by.clone()}</dd>
            <dt>"Last updated"</dt><dd>{deal.updated_on.clone()}</dd>
        </dl>
        {(!deal.notes.is_empty()).then(|| view! { <p class="notes">{deal.notes.clone()}</p> })}
    }
}
