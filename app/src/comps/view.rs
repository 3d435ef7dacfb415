//! The sales comps tab: paste or upload broker text, extract, then edit or delete rows.

use leptos::prelude::*;

use super::api::{DeleteComp, ExtractComps, UpdateComp, list_comps};
use super::{Comp, MAX_SOURCE_CHARS};
use crate::format::{format_percent, format_price, format_psf, format_sf};
use crate::error::AppError;
use crate::ui::ErrorNotice;

/// The sales comps tab: the extraction form above the deal's comps. `calls` is bumped
/// after every extraction (a Claude call), so the page reads the budgets again.
#[component]
pub fn CompsTab(deal_id: i64, calls: RwSignal<u64>) -> impl IntoView {
    let extract = ServerAction::<ExtractComps>::new();
    let update = ServerAction::<UpdateComp>::new();
    let delete = ServerAction::<DeleteComp>::new();
    // The list is read again after a saved edit, not after a failed one: the edit form
    // stays as the analyst typed it, with the error above its buttons.
    let saved = RwSignal::new(0u64);
    let comps = Resource::new(
        move || (extract.version().get(), saved.get(), delete.version().get()),
        move |_| list_comps(deal_id),
    );
    let editing = RwSignal::new(None::<i64>);
    // Which sales show their source text, by id: kept across re-reads of the list.
    let sources = RwSignal::new(Vec::<i64>::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = update.value().get() {
            editing.set(None);
            saved.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if extract.version().get() > 0 {
            calls.update(|n| *n += 1);
        }
    });
    view! {
        <div class="comps">
            <ExtractForm deal_id extract/>
            <Transition fallback=|| view! { <p class="muted">"Loading comps…"</p> }>
                {move || Suspend::new(async move {
                    match comps.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No sales comps yet."</p> }.into_any(),
                        Ok(list) => view! { <CompsTable deal_id list editing sources update delete/> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

/// Broker text, pasted or read from a file, and the Extract button with its outcome.
#[component]
fn ExtractForm(deal_id: i64, extract: ServerAction<ExtractComps>) -> impl IntoView {
    let text = RwSignal::new(String::new());
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
                <button type="submit" class="button primary"
                    disabled=move || extract.pending().get() || text.with(|t| t.trim().is_empty())>
                    {move || if extract.pending().get() { "Extracting…" } else { "Extract" }}
                </button>
            </div>
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

#[component]
fn CompsTable(
    deal_id: i64,
    list: Vec<Comp>,
    editing: RwSignal<Option<i64>>,
    sources: RwSignal<Vec<i64>>,
    update: ServerAction<UpdateComp>,
    delete: ServerAction<DeleteComp>,
) -> impl IntoView {
    let edited = list.clone();
    let summary = super::summary(&list);
    view! {
        {move || editing.get().and_then(|id| edited.iter().find(|c| c.id == id).cloned()).map(|comp| view! {
            <EditComp deal_id comp editing update/>
        })}
        {move || delete.value().get().and_then(Result::err).map(|error: AppError| view! { <ErrorNotice error/> })}
        <div class="table-head">
            <h3>"Comparable sales"</h3>
            <a href=format!("/api/comps/csv?deal_id={deal_id}") download="" class="small" data-testid="comps-csv">"Download CSV"</a>
        </div>
        <div class="table-scroll"><table class="table comps-table" data-testid="comps">
            <thead>
                <tr>
                    <th>"Property"</th><th>"Address"</th><th>"Sale date"</th><th class="num">"Price"</th>
                    <th class="num">"SF"</th><th class="num">"$/SF"</th><th class="num">"Cap rate"</th>
                    <th>"Buyer"</th><th>"Seller"</th><th></th>
                </tr>
            </thead>
            <tbody>
                {list.into_iter().map(|c| {
                    let id = c.id;
                    let f = c.fields;
                    let excerpt = f.source_excerpt.clone();
                    view! {
                        <tr data-testid="comp-row">
                            <td>
                                {f.property_name}
                                " "
                                <button type="button" class="link-button small source-toggle"
                                    aria-expanded=move || sources.with(|s| s.contains(&id)).to_string()
                                    on:click=move |_| sources.update(|s| if let Some(i) = s.iter().position(|x| *x == id) { s.remove(i); } else { s.push(id); })
                                >"source"</button>
                                {move || sources.with(|s| s.contains(&id)).then(|| view! { <p class="source-text">{excerpt.clone()}</p> })}
                            </td>
                            <td>{f.address}</td>
                            <td class="nowrap">{f.sale_date.unwrap_or_else(|| "—".into())}</td>
                            <td class="num">{format_price(f.sale_price)}</td>
                            <td class="num">{format_sf(f.building_sf)}</td>
                            <td class="num">{format_psf(f.price_per_sf)}</td>
                            <td class="num">{format_percent(f.cap_rate)}</td>
                            <td>{f.buyer}</td>
                            <td>{f.seller}</td>
                            <td class="row-actions">
                                <button type="button" class="link-button" on:click=move |_| editing.set(Some(id))>"Edit"</button>
                                <button type="button" class="link-button danger" on:click=move |_| { delete.dispatch(DeleteComp { deal_id, id }); }>"Delete"</button>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
            <tfoot>
                <tr class="summary" data-testid="comps-summary">
                    <td colspan="2">{match summary.count { 1 => "1 sale".to_string(), n => format!("{n} sales") }}</td>
                    <td class="nowrap">{summary.dates.map(|(first, last)| if first == last { first } else { format!("{first} – {last}") }).unwrap_or_else(|| "—".into())}</td>
                    <td></td><td></td>
                    <td class="num">{stat(summary.psf, |v| format_psf(Some(v)))}</td>
                    <td class="num">{stat(summary.cap_rate, |v| format_percent(Some(v)))}</td>
                    <td colspan="3" class="small muted">"average / median"</td>
                </tr>
            </tfoot>
        </table></div>
    }
}

/// "average / median" of a summary column, or a dash when no sale states it.
fn stat(values: Option<(f64, f64)>, show: impl Fn(f64) -> String) -> String {
    values.map_or("—".into(), |(mean, median)| format!("{} / {}", show(mean), show(median)))
}

#[component]
fn EditComp(deal_id: i64, comp: Comp, editing: RwSignal<Option<i64>>, update: ServerAction<UpdateComp>) -> impl IntoView {
    let f = comp.fields;
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    view! {
        <ActionForm action=update attr:class="card form edit-comp">
            <h3>"Edit sale"</h3>
            <input type="hidden" name="deal_id" value=deal_id/>
            <input type="hidden" name="id" value=comp.id/>
            <div class="grid">
                <label>"Property"<input name="property_name" value=f.property_name/></label>
                <label>"Address"<input name="address" value=f.address/></label>
                <label>"Sale date"<input name="sale_date" value=f.sale_date.unwrap_or_default() placeholder="YYYY-MM-DD"/></label>
                <label>"Sale price (USD)"<input name="sale_price" value=f.sale_price.map(|p| p.to_string()).unwrap_or_default()/></label>
                <label>"Building size (SF)"<input name="building_sf" value=f.building_sf.map(|s| s.to_string()).unwrap_or_default()/></label>
                <label>"Price per SF"<input name="price_per_sf" value=num(f.price_per_sf) placeholder="computed if empty"/></label>
                <label>"Cap rate (%)"<input name="cap_rate" value=num(f.cap_rate)/></label>
                <label>"Buyer"<input name="buyer" value=f.buyer/></label>
                <label>"Seller"<input name="seller" value=f.seller/></label>
                <label>"Notes"<input name="notes" value=f.notes/></label>
            </div>
            {move || update.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
            <div class="actions">
                <button type="submit" class="button primary" disabled=move || update.pending().get()>"Save sale"</button>
                <button type="button" class="button" on:click=move |_| { editing.set(None); update.clear(); }>"Cancel"</button>
            </div>
        </ActionForm>
    }
}
