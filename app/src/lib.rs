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
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::auth::api::get_me;
use crate::auth::view::LoginPage;
use crate::pages::alerts::AlertsPage;
use crate::pages::audit::AuditPage;
use crate::pages::deal::DealPage;
use crate::pages::deal_budgets::DealBudgetsPage;
use crate::pages::deals::{DealsPage, EditDealPage, NewDealPage};
use crate::pages::limits::LimitsPage;
use crate::pages::my_usage::MyUsagePage;
use crate::pages::prices::PricesPage;
use crate::pages::shell::{CurrentUser, NotFound};
use crate::pages::tokens::TokensPage;
use crate::pages::users::UsersPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
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
    provide_meta_context();
    let me = Resource::new(|| (), |_| get_me());
    provide_context(CurrentUser(me));

    view! {
        <Stylesheet id="leptos" href="/pkg/dealdesk.css"/>
        <Title text="DealDesk"/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/login") view=LoginPage/>
                <Route path=path!("/") view=DealsPage/>
                <Route path=path!("/deals") view=DealsPage/>
                <Route path=path!("/deals/new") view=NewDealPage/>
                <Route path=path!("/deals/:id") view=DealPage/>
                <Route path=path!("/deals/:id/edit") view=EditDealPage/>
                <Route path=path!("/deals/:id/chat/:thread") view=DealPage/>
                <Route path=path!("/admin/users") view=UsersPage/>
                <Route path=path!("/admin/tokens") view=TokensPage/>
                <Route path=path!("/admin/deals") view=DealBudgetsPage/>
                <Route path=path!("/admin/limits") view=LimitsPage/>
                <Route path=path!("/admin/prices") view=PricesPage/>
                <Route path=path!("/admin/audit") view=AuditPage/>
                <Route path=path!("/admin/alerts") view=AlertsPage/>
                <Route path=path!("/my-usage") view=MyUsagePage/>
            </Routes>
        </Router>
    }
}
