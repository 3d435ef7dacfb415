//! `/admin/prices`: the price book, and the form that adds a dated price.

use leptos::prelude::*;

use super::shell::Shell;
use crate::prices::api::{AddPrice, get_price_book};
use crate::prices::view::{AddPriceForm, PriceBookTable};
use crate::ui::ErrorNotice;

#[component]
pub fn PricesPage() -> impl IntoView {
    let add = ServerAction::<AddPrice>::new();
    let book = Resource::new(move || add.version().get(), |_| get_price_book());
    view! {
        <Shell>
            <div class="page-head"><h1>"Prices"</h1><a href="/admin/audit">"Audit log"</a></div>
            <AddPriceForm action=add/>
            <Transition fallback=|| view! { <p class="muted">"Loading prices…"</p> }>
                {move || Suspend::new(async move {
                    match book.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(book) => view! { <PriceBookTable book/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}
