//! The sales comps tab: paste or upload broker text and extract; add a sale by hand; edit
//! or delete rows (a delete can be undone).

use leptos::prelude::*;

use super::api::{AddComp, DeleteComp, ExtractComps, RestoreComp, UpdateComp, list_comps};
use super::{Comp, CompFields, MAX_SOURCE_CHARS, display_sale_date};
use crate::format::{format_percent, format_price, format_psf, format_sf};
use crate::ui::ErrorNotice;

/// What the sale form is open for.
#[derive(Clone, Debug, PartialEq)]
enum FormFor {
    /// A sale the analyst types in.
    New,
    /// Corrections to a stored sale.
    Edit(Box<Comp>),
}

/// A deleted sale, as the undo notice names it.
#[derive(Clone, Debug, PartialEq)]
struct Deleted {
    id: i64,
    label: String,
}

/// The sales comps tab: the extraction form above the deal's comps. `calls` is bumped
/// after every extraction (a Claude call), so the page reads the budgets again.
#[component]
pub fn CompsTab(deal_id: i64, calls: RwSignal<u64>, budget: Signal<Option<crate::budget::BudgetStatus>>) -> impl IntoView {
    let extract = ServerAction::<ExtractComps>::new();
    let update = ServerAction::<UpdateComp>::new();
    let add = ServerAction::<AddComp>::new();
    let delete = ServerAction::<DeleteComp>::new();
    let restore = ServerAction::<RestoreComp>::new();
    // The list is read again after a saved form, not after a failed one: the form stays
    // as the analyst typed it, with the error above its buttons.
    let saved = RwSignal::new(0u64);
    let comps = Resource::new(
        move || (extract.version().get(), saved.get(), delete.version().get(), restore.version().get()),
        move |_| list_comps(deal_id),
    );
    let form = RwSignal::new(None::<FormFor>);
    // Each opening starts clean: no outcome of an earlier save is shown or acted on.
    let open = Callback::new(move |for_: FormFor| {
        update.clear();
        add.clear();
        form.set(Some(for_));
    });
    // Which sales show their source text, by id: kept across re-reads of the list.
    let sources = RwSignal::new(Vec::<i64>::new());
    // The sale whose Delete was clicked, and the one the notice offers to bring back.
    let deleting = RwSignal::new(None::<Deleted>);
    let undo = RwSignal::new(None::<Deleted>);
    Effect::new(move |_| {
        if matches!(update.value().get(), Some(Ok(_))) || matches!(add.value().get(), Some(Ok(_))) {
            form.set(None);
            saved.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = delete.value().get() {
            restore.clear();
            undo.set(deleting.get_untracked().filter(|d| d.id == id));
            if matches!(form.get_untracked(), Some(FormFor::Edit(ref c)) if c.id == id) {
                form.set(None);
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = restore.value().get() {
            undo.update(|u| if u.as_ref().is_some_and(|d| d.id == id) { *u = None });
        }
    });
    Effect::new(move |_| {
        if extract.version().get() > 0 {
            calls.update(|n| *n += 1);
        }
    });
    view! {
        <div class="comps">
            <ExtractForm deal_id extract budget/>
            <div class="table-head">
                <h3>"Comparable sales"</h3>
                <button type="button" class="button" on:click=move |_| open.run(FormFor::New)>"Add a sale"</button>
            </div>
            {move || form.get().map(|for_| view! { <CompForm deal_id for_ form update add/> })}
            <UndoNotice deal_id undo restore/>
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading comps…"</p> }>
                {move || Suspend::new(async move {
                    match comps.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No sales comps yet."</p> }.into_any(),
                        Ok(list) => view! { <CompsTable deal_id list sources open deleting delete/> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

/// Broker text, pasted or read from a file, and the Extract button with its outcome.
#[component]
fn ExtractForm(deal_id: i64, extract: ServerAction<ExtractComps>, budget: Signal<Option<crate::budget::BudgetStatus>>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    // A budget that stops every call turns Extract off, saying why (as the banner does).
    let blocked = Memo::new(move |_| budget.with(|b| b.as_ref().and_then(|b| b.blocked_reason())));
    let file_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(_)) = extract.value().get() {
            text.set(String::new());
        }
    });
    let outcome = move || match extract.value().get() {
        Some(Err(error)) => Some(view! { <ErrorNotice error/> }.into_any()),
        Some(Ok(r)) => Some(view! {
            <p class="notice" role="status" data-testid="extract-result">
                {match r.added { 0 => "No comparable sales were found in that text.".to_string(), 1 => "1 sale added.".to_string(), n => format!("{n} sales added.") }}
                {r.limited.map(|note| format!(" {note}"))}
            </p>
        }.into_any()),
        None => None,
    };
    view! {
        <form class="form wide" on:submit=move |ev| {
            ev.prevent_default();
            extract.dispatch(ExtractComps { deal_id, text: text.get_untracked() });
        }>
            <label>"Broker or offering-memorandum text"
                <textarea
                    name="text"
                    rows="7"
                    placeholder="Paste the comparable sales section here, or choose a .txt, .md or .csv file."
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                ></textarea>
            </label>
            <div class="actions">
                <input type="file" accept=".txt,.md,.csv,text/plain,text/markdown,text/csv" aria-label="Upload a text file"
                    on:change=move |ev| read_file(ev, text, file_error)/>
                <span class="muted small">{move || format!("{} / {MAX_SOURCE_CHARS} characters", text.with(|t| t.chars().count()))}</span>
                <span class="spacer"></span>
                <button type="submit" class="button primary" data-testid="extract"
                    disabled=move || extract.pending().get() || text.with(|t| t.trim().is_empty()) || blocked.with(Option::is_some)>
                    {move || if extract.pending().get() { "Extracting…" } else { "Extract" }}
                </button>
            </div>
            {move || blocked.get().map(|reason| view! { <p class="muted small" data-testid="extract-blocked">{format!("Extract is off: {reason}")}</p> })}
            {move || file_error.get().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {outcome}
        </form>
    }
}

/// Reads a chosen text file into the box (in the browser; nothing is uploaded until Extract).
fn read_file(ev: leptos::ev::Event, text: RwSignal<String>, file_error: RwSignal<Option<String>>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        /// Largest file read into the box.
        const MAX_FILE_BYTES: f64 = 400_000.0;
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        let name = file.name().to_lowercase();
        if ![".txt", ".md", ".csv"].iter().any(|ext| name.ends_with(ext)) {
            file_error.set(Some("Choose a .txt, .md or .csv file.".into()));
            return;
        }
        if file.size() > MAX_FILE_BYTES {
            file_error.set(Some("That file is too large; paste the relevant part instead.".into()));
            return;
        }
        file_error.set(None);
        leptos::task::spawn_local(async move {
            match wasm_bindgen_futures::JsFuture::from(file.text()).await.ok().and_then(|v| v.as_string()) {
                Some(content) => text.set(content),
                None => file_error.set(Some("That file could not be read as text.".into())),
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, text, file_error);
}

/// "Deleted <sale>." with an Undo button, after a delete until it is undone (or the next
/// delete takes its place).
#[component]
fn UndoNotice(deal_id: i64, undo: RwSignal<Option<Deleted>>, restore: ServerAction<RestoreComp>) -> impl IntoView {
    move || {
        undo.get().map(|Deleted { id, label }| {
            view! {
                <div class="notice ok" role="status" data-testid="undo-delete">
                    <span>{format!("Deleted {label}.")}</span>
                    " "
                    <button type="button" class="link-button" disabled=move || restore.pending().get()
                        on:click=move |_| { restore.dispatch(RestoreComp { deal_id, id }); }>"Undo"</button>
                </div>
                {move || restore.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
            }
        })
    }
}

#[component]
fn CompsTable(
    deal_id: i64,
    list: Vec<Comp>,
    sources: RwSignal<Vec<i64>>,
    open: Callback<FormFor>,
    deleting: RwSignal<Option<Deleted>>,
    delete: ServerAction<DeleteComp>,
) -> impl IntoView {
    let summary = super::summary(&list);
    let dates = summary.dates.map(|(first, last)| {
        if first == last { display_sale_date(&first) } else { format!("{} – {}", display_sale_date(&first), display_sale_date(&last)) }
    });
    view! {
        <div class="table-scroll"><table class="table comps-table" data-testid="comps">
            <thead>
                <tr>
                    <th>"Property"</th><th>"Address"</th><th>"Sale date"</th><th class="num">"Price"</th>
                    <th class="num">"SF"</th><th class="num">"$/SF"</th><th class="num">"Cap rate"</th>
                    <th>"Buyer"</th><th>"Seller"</th><th></th>
                </tr>
            </thead>
            <tbody>
                {list.into_iter().map(|comp| view! { <CompRow deal_id comp sources open deleting delete/> }.into_any()).collect_view()}
            </tbody>
            <tfoot>
                <tr class="summary" data-testid="comps-summary">
                    <td colspan="2">{match summary.count { 1 => "1 sale".to_string(), n => format!("{n} sales") }}</td>
                    <td class="nowrap">{dates.unwrap_or_else(|| "—".into())}</td>
                    <td></td><td></td>
                    <td class="num">{stat(summary.psf, |v| format_psf(Some(v)))}</td>
                    <td class="num">{stat(summary.cap_rate, |v| format_percent(Some(v)))}</td>
                    <td colspan="3" class="small muted">"average / median"</td>
                </tr>
            </tfoot>
        </table></div>
        <p class="small"><a href=format!("/api/comps/csv?deal_id={deal_id}") download="" data-testid="comps-csv">"Download CSV"</a></p>
    }
    .into_any()
}

/// One sale: its fields, its source text on demand (or a mark that it was added by hand),
/// Edit and Delete.
#[component]
fn CompRow(
    deal_id: i64,
    comp: Comp,
    sources: RwSignal<Vec<i64>>,
    open: Callback<FormFor>,
    deleting: RwSignal<Option<Deleted>>,
    delete: ServerAction<DeleteComp>,
) -> impl IntoView {
    let id = comp.id;
    let label = comp.fields.label().to_string();
    let edit = comp.clone();
    let f = comp.fields;
    let excerpt = f.source_excerpt.clone();
    let source = if excerpt.is_empty() {
        view! { <span class="muted small" data-testid="comp-manual">"added by hand"</span> }.into_any()
    } else {
        view! {
            <button type="button" class="link-button small source-toggle"
                aria-expanded=move || sources.with(|s| s.contains(&id)).to_string()
                on:click=move |_| sources.update(|s| if let Some(i) = s.iter().position(|x| *x == id) { s.remove(i); } else { s.push(id); })
            >"source"</button>
            {move || sources.with(|s| s.contains(&id)).then(|| view! { <p class="source-text">{excerpt.clone()}</p> })}
        }
        .into_any()
    };
    view! {
        <tr data-testid="comp-row">
            <td>{f.property_name}" "{source}</td>
            <td>{f.address}</td>
            <td class="nowrap">{f.sale_date.as_deref().map_or_else(|| "—".to_string(), display_sale_date)}</td>
            <td class="num">{format_price(f.sale_price)}</td>
            <td class="num">{format_sf(f.building_sf)}</td>
            <td class="num">{format_psf(f.price_per_sf)}</td>
            <td class="num">{format_percent(f.cap_rate)}</td>
            <td>{f.buyer}</td>
            <td>{f.seller}</td>
            <td class="row-actions">
                <button type="button" class="link-button" on:click=move |_| open.run(FormFor::Edit(Box::new(edit.clone())))>"Edit"</button>
                <button type="button" class="link-button danger" disabled=move || delete.pending().get() on:click=move |_| {
                    deleting.set(Some(Deleted { id, label: label.clone() }));
                    delete.dispatch(DeleteComp { deal_id, id });
                }>"Delete"</button>
            </td>
        </tr>
    }
    .into_any()
}

/// "average / median" of a summary column, or a dash when no sale states it.
fn stat(values: Option<(f64, f64)>, show: impl Fn(f64) -> String) -> String {
    values.map_or("—".into(), |(mean, median)| format!("{} / {}", show(mean), show(median)))
}

/// The sale form's fields as typed, one signal each.
#[derive(Clone, Copy)]
struct Draft {
    property_name: RwSignal<String>,
    address: RwSignal<String>,
    sale_date: RwSignal<String>,
    sale_price: RwSignal<String>,
    building_sf: RwSignal<String>,
    price_per_sf: RwSignal<String>,
    cap_rate: RwSignal<String>,
    buyer: RwSignal<String>,
    seller: RwSignal<String>,
    notes: RwSignal<String>,
}

impl Draft {
    fn new(f: &CompFields) -> Draft {
        let text = |v: &str| RwSignal::new(v.to_string());
        let opt = |v: Option<String>| RwSignal::new(v.unwrap_or_default());
        Draft {
            property_name: text(&f.property_name),
            address: text(&f.address),
            sale_date: opt(f.sale_date.clone()),
            sale_price: opt(f.sale_price.map(|p| p.to_string())),
            building_sf: opt(f.building_sf.map(|s| s.to_string())),
            price_per_sf: opt(f.price_per_sf.map(|v| v.to_string())),
            cap_rate: opt(f.cap_rate.map(|v| v.to_string())),
            buyer: text(&f.buyer),
            seller: text(&f.seller),
            notes: text(&f.notes),
        }
    }
}

/// The sale form, for a sale added by hand or an edit: the same fields, the same server
/// validation, the same error inside the form. A refused save keeps everything typed; a
/// saved one closes the form (`CompsTab` watches both actions).
#[component]
fn CompForm(
    deal_id: i64,
    for_: FormFor,
    form: RwSignal<Option<FormFor>>,
    update: ServerAction<UpdateComp>,
    add: ServerAction<AddComp>,
) -> impl IntoView {
    let (title, id, d) = match &for_ {
        FormFor::New => ("Add a sale", None, Draft::new(&CompFields::default())),
        FormFor::Edit(comp) => ("Edit sale", Some(comp.id), Draft::new(&comp.fields)),
    };
    let pending = move || if id.is_some() { update.pending().get() } else { add.pending().get() };
    let error = move || if id.is_some() { update.value().get() } else { add.value().get() }.and_then(Result::err);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let v = |s: RwSignal<String>| s.get_untracked();
        let (property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes) = (
            v(d.property_name), v(d.address), v(d.sale_date), v(d.sale_price), v(d.building_sf), v(d.price_per_sf), v(d.cap_rate), v(d.buyer), v(d.seller), v(d.notes),
        );
        match id {
            Some(id) => {
                update.dispatch(UpdateComp { deal_id, id, property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes });
            }
            None => {
                add.dispatch(AddComp { deal_id, property_name, address, sale_date, sale_price, building_sf, price_per_sf, cap_rate, buyer, seller, notes });
            }
        }
    };
    view! {
        <form class="card form edit-comp" data-testid="comp-form" on:submit=save>
            <h3>{title}</h3>
            <div class="grid">
                {field("Property", "property_name", d.property_name, "")}
                {field("Address", "address", d.address, "")}
                {field("Sale date", "sale_date", d.sale_date, "YYYY-MM-DD or YYYY-MM")}
                {field("Sale price (USD)", "sale_price", d.sale_price, "")}
                {field("Building size (SF)", "building_sf", d.building_sf, "")}
                {field("Price per SF", "price_per_sf", d.price_per_sf, "computed if empty")}
                {field("Cap rate (%)", "cap_rate", d.cap_rate, "")}
                {field("Buyer", "buyer", d.buyer, "")}
                {field("Seller", "seller", d.seller, "")}
                {field("Notes", "notes", d.notes, "")}
            </div>
            {move || error().map(|error| view! { <ErrorNotice error/> })}
            <div class="actions">
                <button type="submit" class="button primary" disabled=pending>"Save sale"</button>
                <button type="button" class="button" on:click=move |_| form.set(None)>"Cancel"</button>
            </div>
        </form>
    }
    .into_any()
}

/// One labelled text input of the sale form, bound to its signal.
fn field(label: &'static str, name: &'static str, value: RwSignal<String>, placeholder: &'static str) -> impl IntoView {
    view! {
        <label>{label}
            <input name=name placeholder=(!placeholder.is_empty()).then_some(placeholder)
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))/>
        </label>
    }
}
