//! DealDesk's application crate: the Leptos components and server functions shared by
//! the server (`ssr`) and the browser (`hydrate`) builds. Server-only code (database,
//! passwords, settings) sits in `#[cfg(feature = "ssr")]` modules so it never reaches
//! the wasm bundle.

pub mod auth;
pub mod budget;
pub mod chat;
pub mod claude;
pub mod comps;
pub mod deals;
pub mod error;
pub mod layout;
pub mod reports;
pub mod usage;
pub mod users;

#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod session_store;
#[cfg(feature = "ssr")]
pub mod settings;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::auth::api::get_me;
use crate::auth::view::LoginPage;
use crate::deals::view::{DealPage, DealsPage, EditDealPage, NewDealPage};
use crate::layout::{CurrentUser, NotFound};
use crate::usage::view::TokensPage;
use crate::users::view::{DealBudgetsPage, UsersPage};

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
                <Route path=path!("/admin/users") view=UsersPage/>
                <Route path=path!("/admin/tokens") view=TokensPage/>
                <Route path=path!("/admin/deals") view=DealBudgetsPage/>
            </Routes>
        </Router>
    }
}
