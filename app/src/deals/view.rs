//! Deal components: the list's table, the fields of the create and edit forms, and a
//! deal's header. Pages (`pages/deals.rs`, `pages/deal.rs`) put them together.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{Deal, DealSummary, PropertyType};
use crate::budget::DealBudget;
use crate::format::format_price;
use crate::ui::textarea_text;

/// Every deal as a table; `badge` shows a deal's budget standing (the page decides how).
#[component]
pub fn DealTable(deals: Vec<DealSummary>, badge: fn(DealBudget) -> AnyView) -> impl IntoView {
    view! {
        <div class="table-scroll"><table class="table deals">
            <thead>
                <tr><th>"Deal"</th><th>"Type"</th><th>"Address"</th><th class="num">"Asking price"</th><th>"Budget"</th><th>"Updated"</th></tr>
            </thead>
            <tbody>
                {deals.into_iter().map(|DealSummary { deal: d, budget }| view! {
                    <tr>
                        <td><A href=format!("/deals/{}", d.id)>{d.name}</A></td>
                        <td>{d.property_type.label()}</td>
                        <td>{d.address}</td>
                        <td class="num">{format_price(d.asking_price)}</td>
                        <td>{badge(budget)}</td>
                        <td>{d.updated_on}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
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
