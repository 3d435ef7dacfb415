//! The price book on screen: every dated price, and the form that adds one.

use leptos::prelude::*;

use super::api::AddPrice;
use super::{PriceBookView, PriceRow, PriceStatus};
use crate::claude::pricing::Rates;
use crate::format::{format_rate, format_tokens};
use crate::ui::ErrorNotice;

/// Every price, current ones marked, and what an unpriced model is charged.
#[component]
pub fn PriceBookTable(book: PriceBookView) -> impl IntoView {
    let fallback = book.fallback;
    view! {
        <p class="muted">
            "Calls ask for " <strong>{book.default_model}</strong> ". A model with no price is charged "
            {format_rate(fallback.input)} " in / " {format_rate(fallback.output)} " out per million tokens and flagged on the usage dashboard."
        </p>
        <div class="table-scroll">
            <table class="table" data-testid="price-book">
                <thead>
                    <tr>
                        <th>"Model"</th><th>"From (UTC)"</th><th>"Status"</th>
                        <th class="num">"Input"</th><th class="num">"Output"</th><th class="num">"Cache write 5 min"</th>
                        <th class="num">"Cache write 1 h"</th><th class="num">"Cache read"</th><th>"Long prompts"</th><th>"Set by"</th>
                    </tr>
                </thead>
                <tbody>{book.prices.into_iter().map(|row| view! { <PriceLine row/> }).collect_view()}</tbody>
            </table>
        </div>
        <p class="muted small">"USD per million tokens."</p>
    }
}

#[component]
fn PriceLine(row: PriceRow) -> impl IntoView {
    let (class, status) = match row.status {
        PriceStatus::Current => ("current", "in force"),
        PriceStatus::Scheduled => ("scheduled", "scheduled"),
        PriceStatus::Past => ("past", "replaced"),
    };
    let long = row.long_prompt.map(|tier| {
        format!("over {} tokens: {} in / {} out", format_tokens(tier.above_tokens), format_rate(tier.rates.input), format_rate(tier.rates.output))
    });
    view! {
        <tr class=class data-testid="price-row">
            <td>{row.model}</td>
            <td class="nowrap">{row.from}</td>
            <td>{status}</td>
            <RateCells rates=row.rates/>
            <td>{long.unwrap_or_default()}</td>
            <td>{row.source}</td>
        </tr>
    }
}

#[component]
fn RateCells(rates: Rates) -> impl IntoView {
    [rates.input, rates.output, rates.cache_write_5m, rates.cache_write_1h, rates.cache_read]
        .into_iter()
        .map(|r| view! { <td class="num">{format_rate(r)}</td> })
        .collect_view()
}

/// Adds a dated price; `added` is bumped on success so the page reads the book again.
#[component]
pub fn AddPriceForm(action: ServerAction<AddPrice>) -> impl IntoView {
    view! {
        <ActionForm action attr:class="card form price-form" attr:data-testid="add-price">
            <h2>"Add a price"</h2>
            <p class="muted small">
                "Applies to calls from the start of the chosen day (" <em>"today"</em> " means from now); calls already recorded keep "
                "their price. Empty cache prices take the usual multiples of input: 1.25× (5 min), 2× (1 h), 0.1× (read)."
            </p>
            <div class="form-grid">
                <label>"Model"<input name="model" required placeholder="claude-sonnet-5-5" autocomplete="off"/></label>
                <label>"Effective from"<input type="date" name="effective_date"/></label>
                <label>"Input $/MTok"<input name="input" required inputmode="decimal" placeholder="2.00"/></label>
                <label>"Output $/MTok"<input name="output" required inputmode="decimal" placeholder="10.00"/></label>
                <label>"Cache write 5 min"<input name="cache_write_5m" inputmode="decimal"/></label>
                <label>"Cache write 1 h"<input name="cache_write_1h" inputmode="decimal"/></label>
                <label>"Cache read"<input name="cache_read" inputmode="decimal"/></label>
            </div>
            <details>
                <summary>"Long-prompt tier (optional)"</summary>
                <div class="form-grid">
                    <label>"Prompts over (tokens)"<input name="long_above_tokens" inputmode="numeric" placeholder="100000"/></label>
                    <label>"Input"<input name="long_input" inputmode="decimal"/></label>
                    <label>"Output"<input name="long_output" inputmode="decimal"/></label>
                    <label>"Cache write 5 min"<input name="long_cache_write_5m" inputmode="decimal"/></label>
                    <label>"Cache write 1 h"<input name="long_cache_write_1h" inputmode="decimal"/></label>
                    <label>"Cache read"<input name="long_cache_read" inputmode="decimal"/></label>
                </div>
            </details>
            {move || action.value().get().map(|result| match result {
                Ok(()) => view! { <p class="notice ok" role="status">"Price added."</p> }.into_any(),
                Err(error) => view! { <ErrorNotice error/> }.into_any(),
            })}
            <button type="submit" class="button primary">"Add price"</button>
        </ActionForm>
    }
}
