//! Every page is a lazy route: in the browser, the pages' code is in chunks of the wasm
//! bundle fetched the first time a page of theirs is shown, so a browser loads the
//! framework and the pages it opens, not all of them. The server renders them as before,
//! and names the chunks a page needs so the browser fetches them beside the main module
//! (`HydrationScripts` reads the splitter's manifest). The build cuts the bundle
//! (`scripts/build.sh`, `tools/wasm-split`).
//!
//! Pages that are opened together share one split point, so that the splitter makes few
//! chunks (each set of split points that reaches a function is a chunk): the deals list
//! and its forms; the deal page; the admin pages; the sign-in page; my usage.

use leptos::prelude::*;
use leptos_router::LazyRoute;

use super::alerts::AlertsPage;
use super::audit::AuditPage;
use super::deal::DealPage;
use super::deal_budgets::DealBudgetsPage;
use super::deals::{DealsPage, EditDealPage, NewDealPage};
use super::limits::LimitsPage;
use super::my_usage::MyUsagePage;
use super::prices::PricesPage;
use super::tokens::TokensPage;
use super::users::UsersPage;
use crate::auth::view::LoginPage;

/// A page of the deals group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DealsGroup {
    List,
    New,
    Edit,
}

/// The deals list, a new deal and the edit form: one chunk.
#[lazy]
fn deals_pages(page: DealsGroup) -> AnyView {
    match page {
        DealsGroup::List => view! { <DealsPage/> }.into_any(),
        DealsGroup::New => view! { <NewDealPage/> }.into_any(),
        DealsGroup::Edit => view! { <EditDealPage/> }.into_any(),
    }
}

/// The deal page (its Chat tab; Report and Sales comps are chunks of their own).
#[lazy]
fn deal_page() -> AnyView {
    view! { <DealPage/> }.into_any()
}

/// An admin page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AdminGroup {
    Users,
    Tokens,
    DealBudgets,
    Limits,
    Prices,
    Audit,
    Alerts,
}

/// The admin pages: one chunk, fetched by admins only.
#[lazy]
fn admin_pages(page: AdminGroup) -> AnyView {
    match page {
        AdminGroup::Users => view! { <UsersPage/> }.into_any(),
        AdminGroup::Tokens => view! { <TokensPage/> }.into_any(),
        AdminGroup::DealBudgets => view! { <DealBudgetsPage/> }.into_any(),
        AdminGroup::Limits => view! { <LimitsPage/> }.into_any(),
        AdminGroup::Prices => view! { <PricesPage/> }.into_any(),
        AdminGroup::Audit => view! { <AuditPage/> }.into_any(),
        AdminGroup::Alerts => view! { <AlertsPage/> }.into_any(),
    }
}

#[lazy]
fn login_page() -> AnyView {
    view! { <LoginPage/> }.into_any()
}

#[lazy]
fn my_usage_page() -> AnyView {
    view! { <MyUsagePage/> }.into_any()
}

/// `Route => view, preload`: a route whose view is its group's lazy function (which
/// loads the group's chunk first in the browser, at once on the server). `preload` is the
/// function `#[lazy]` made to load that chunk: the router awaits it before it hydrates a
/// page the server rendered, so that the view is there to hydrate at once. The page loads
/// its own data, so the route's `data` holds nothing.
macro_rules! lazy_routes {
    ($($route:ident => $view:expr, $preload:ident);* $(;)?) => {$(
        #[doc = concat!("The lazy route whose view is `", stringify!($view), "`.")]
        pub struct $route;

        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            async fn view(_this: Self) -> AnyView {
                $view.await
            }

            async fn preload() {
                // The split (and its preload function) exists in the browser build only.
                #[cfg(target_arch = "wasm32")]
                $preload().await;
            }
        }
    )*};
}

lazy_routes! {
    LoginRoute => login_page(), __preload_login_page;
    DealsRoute => deals_pages(DealsGroup::List), __preload_deals_pages;
    NewDealRoute => deals_pages(DealsGroup::New), __preload_deals_pages;
    EditDealRoute => deals_pages(DealsGroup::Edit), __preload_deals_pages;
    DealRoute => deal_page(), __preload_deal_page;
    MyUsageRoute => my_usage_page(), __preload_my_usage_page;
    UsersRoute => admin_pages(AdminGroup::Users), __preload_admin_pages;
    TokensRoute => admin_pages(AdminGroup::Tokens), __preload_admin_pages;
    DealBudgetsRoute => admin_pages(AdminGroup::DealBudgets), __preload_admin_pages;
    LimitsRoute => admin_pages(AdminGroup::Limits), __preload_admin_pages;
    PricesRoute => admin_pages(AdminGroup::Prices), __preload_admin_pages;
    AuditRoute => admin_pages(AdminGroup::Audit), __preload_admin_pages;
    AlertsRoute => admin_pages(AdminGroup::Alerts), __preload_admin_pages;
}
