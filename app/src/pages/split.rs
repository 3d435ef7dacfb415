//! Split points of the browser bundle that survive a chunk that does not arrive.
//!
//! Leptos' `#[lazy]` panics when a chunk cannot be fetched (a dropped connection, a
//! deploy that replaced the files under an open page), and a panic stops the whole app
//! in that browser: no link or button works until the page is reloaded. A `split_view!`
//! function is the same split point, but a failed fetch is an `Err(ChunkUnavailable)`
//! that the page shows, with a way to try again; the loader keeps no failure, so the
//! next call fetches the chunk anew.

use leptos::prelude::*;

/// A chunk of the browser bundle could not be fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkUnavailable;

impl From<leptos::wasm_split::SplitLoaderError> for ChunkUnavailable {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> Self {
        ChunkUnavailable
    }
}

/// `fn name, preload preload_name (args) { view }`: an `async fn name(args) ->
/// Result<AnyView, ChunkUnavailable>` whose code is a chunk of its own in the browser
/// (`preload_name` fetches the chunk without running it, and returns whether it came).
/// On the server it renders at once, and names the chunk for the page's preload links
/// (the splitter's manifest calls the chunk `name`).
macro_rules! split_view {
    ($(#[$meta:meta])* $vis:vis fn $name:ident, preload $preload:ident ($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[cfg(target_arch = "wasm32")]
        #[::leptos::wasm_split::wasm_split(
            $name,
            wasm_split_path = ::leptos::wasm_split,
            fallible,
            preload(#[allow(dead_code)] $preload)
        )]
        $vis fn $name($($arg: $ty),*) -> Result<::leptos::prelude::AnyView, $crate::pages::split::ChunkUnavailable> {
            Ok($body)
        }

        $(#[$meta])*
        #[cfg(not(target_arch = "wasm32"))]
        $vis async fn $name($($arg: $ty),*) -> Result<::leptos::prelude::AnyView, $crate::pages::split::ChunkUnavailable> {
            ::leptos::prefetch_lazy_fn_on_server(stringify!($name));
            Ok($body)
        }
    };
}
pub(crate) use split_view;

/// What a page shows when its code did not arrive: the page must be loaded again, from
/// the server (a link the router leaves to the browser).
pub fn page_unavailable() -> AnyView {
    let here = leptos_router::hooks::use_location();
    let href = move || {
        let search = here.search.get();
        let search = search.trim_start_matches('?');
        if search.is_empty() { here.pathname.get() } else { format!("{}?{search}", here.pathname.get()) }
    };
    view! {
        <main class="content">
            <div class="notice error" role="alert" data-testid="chunk-unavailable">
                <span>"This page could not be loaded: part of the app did not arrive (the connection may have dropped). "</span>
                <a href=href rel="external">"Reload the page"</a>
            </div>
        </main>
    }
    .into_any()
}

/// What a tab shows when its code did not arrive, with a button that fetches it again.
pub fn tab_unavailable(retry: RwSignal<u32>) -> AnyView {
    view! {
        <div class="notice error" role="alert" data-testid="chunk-unavailable">
            <span>"This tab could not be loaded: part of the app did not arrive (the connection may have dropped). "</span>
            <button type="button" on:click=move |_| retry.update(|n| *n += 1)>"Try again"</button>
        </div>
    }
    .into_any()
}
