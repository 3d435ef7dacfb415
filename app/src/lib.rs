//! DealDesk's application crate: the Leptos components and server functions shared by
//! the server (`ssr`) and the browser (`hydrate`) builds. Server-only code (database,
//! passwords, settings, the ledger) sits in `#[cfg(feature = "ssr")]` modules so it never
//! reaches the wasm bundle.
//!
//! Layers, lowest first (`scripts/check_layers.py` keeps them): base modules (`error`,
//! `time`, `format`, `ui`, `markdown`, `load`, `db`, `passwords`, `settings`, `state`) and the Claude client
//! (`claude`, a leaf); then the features — `auth`, `usage` (the ledger), `budget`,
//! `deals` and `users`, the `gateway` to Claude, `chat` and `comps`, `reports`; then
//! `pages`, which compose the features' views. A module uses only what is below it.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod chat;
pub mod claude;
pub mod comps;
pub mod deals;
pub mod error;
pub mod forecast;
pub mod format;
pub mod limits;
pub mod pages;
pub mod prices;
pub mod reports;
pub mod ui;
pub mod usage;
pub mod users;

#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod gateway;
#[cfg(feature = "ssr")]
pub mod load;
#[cfg(feature = "ssr")]
pub mod markdown;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod passwords;
#[cfg(feature = "ssr")]
pub mod settings;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod time;
#[cfg(all(test, feature = "ssr"))]
mod fuzz;

use leptos::prelude::*;
use leptos_meta::MetaTags;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, path};

use crate::auth::api::get_me;
use crate::pages::routes::{
    AlertsRoute, AuditRoute, DealBudgetsRoute, DealRoute, DealsRoute, EditDealRoute, LimitsRoute, LoginRoute,
    MyUsageRoute, NewDealRoute, PricesRoute, TokensRoute, UsersRoute,
};
use crate::pages::shell::{CurrentUser, NotFound};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <title>"DealDesk"</title>
                <link rel="stylesheet" id="leptos" href="/pkg/dealdesk.css"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    // The server's meta context collects the page's preload links (`MetaTags` in the
    // shell); the browser has no meta tags to manage, so its bundle leaves it out.
    #[cfg(feature = "ssr")]
    leptos_meta::provide_meta_context();
    let me = Resource::new(|| (), |_| get_me());
    provide_context(CurrentUser(me));

    view! {
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/login") view={Lazy::<LoginRoute>::new()}/>
                <Route path=path!("/") view={Lazy::<DealsRoute>::new()}/>
                <Route path=path!("/deals") view={Lazy::<DealsRoute>::new()}/>
                <Route path=path!("/deals/new") view={Lazy::<NewDealRoute>::new()}/>
                <Route path=path!("/deals/:id") view={Lazy::<DealRoute>::new()}/>
                <Route path=path!("/deals/:id/edit") view={Lazy::<EditDealRoute>::new()}/>
                <Route path=path!("/deals/:id/chat/:thread") view={Lazy::<DealRoute>::new()}/>
                <Route path=path!("/admin/users") view={Lazy::<UsersRoute>::new()}/>
                <Route path=path!("/admin/tokens") view={Lazy::<TokensRoute>::new()}/>
                <Route path=path!("/admin/deals") view={Lazy::<DealBudgetsRoute>::new()}/>
                <Route path=path!("/admin/limits") view={Lazy::<LimitsRoute>::new()}/>
                <Route path=path!("/admin/prices") view={Lazy::<PricesRoute>::new()}/>
                <Route path=path!("/admin/audit") view={Lazy::<AuditRoute>::new()}/>
                <Route path=path!("/admin/alerts") view={Lazy::<AlertsRoute>::new()}/>
                <Route path=path!("/my-usage") view={Lazy::<MyUsageRoute>::new()}/>
            </Routes>
        </Router>
    }
}
