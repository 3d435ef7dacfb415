//! The browser entry point: hydrates the server-rendered page, then marks the body so
//! tests (and people debugging) can tell the page is interactive.
//!
//! The pages are lazy routes (their code is in chunks of the bundle), so hydration is
//! asynchronous: the router fetches the page's chunks, then hydrates. The body is marked
//! once that is done, not when it starts.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) else {
            return;
        };
        let app = leptos::mount::hydrate_from_async(body.clone(), app::App).await;
        app.forget();
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
