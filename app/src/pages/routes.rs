//! Every page is a lazy route: in the browser, the pages' code is in chunks of the wasm
//! bundle fetched the first time a page of theirs is shown, so a browser loads the
//! framework and the pages it opens, not all of them. The server renders them as before,
//! and names the chunks a page needs so the browser fetches them beside the main module
//! (`HydrationScripts` reads the splitter's manifest). The build cuts the bundle
//! (`scripts/build.sh`, `tools/wasm-bundle`).
//!
//! Pages that are opened together share one split point, so that the splitter makes few
//! chunks (each set of split points that reaches a function is a chunk): the deals list
//! and its forms; the deal page; the admin pages; the sign-in page; my usage. A page
//! whose chunk does not arrive says so and offers a reload (`split::split_view`).

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
use super::split::{ChunkUnavailable, page_unavailable, split_view};
use super::users::UsersPage;
use crate::auth::view::LoginPage;

/// A page of the deals group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DealsGroup {
    List,
    New,
    Edit,
}

split_view! {
    /// The deals list, a new deal and the edit form: one chunk.
    fn deals_pages, preload __preload_deals_pages (page: DealsGroup) {
        match page {
            DealsGroup::List => view! { <DealsPage/> }.into_any(),
            DealsGroup::New => view! { <NewDealPage/> }.into_any(),
            DealsGroup::Edit => view! { <EditDealPage/> }.into_any(),
        }
    }
}

split_view! {
    /// The deal page (its Chat tab; Report and Sales comps are chunks of their own).
    fn deal_page, preload __preload_deal_page () {
        view! { <DealPage/> }.into_any()
    }
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

split_view! {
    /// The admin pages: one chunk, fetched by admins only.
    fn admin_pages, preload __preload_admin_pages (page: AdminGroup) {
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
}

split_view! {
    fn login_page, preload __preload_login_page () {
        view! { <LoginPage/> }.into_any()
    }
}

split_view! {
    fn my_usage_page, preload __preload_my_usage_page () {
        view! { <MyUsagePage/> }.into_any()
    }
}

/// `Route => view, preload`: a route whose view is its group's split function (which
/// loads the group's chunk first in the browser, at once on the server). `preload` is the
/// function that loads that chunk: the router awaits it before it hydrates a page the
/// server rendered, so that the view is there to hydrate at once. The page loads its own
/// data, so the route's `data` holds nothing. A chunk that does not arrive leaves the
/// route showing `page_unavailable`.
macro_rules! lazy_routes {
    ($($route:ident => $view:expr, $preload:ident);* $(;)?) => {$(
        #[doc = concat!("The lazy route whose view is `", stringify!($view), "`.")]
        pub struct $route;

        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            async fn view(_this: Self) -> AnyView {
                $view.await.unwrap_or_else(|ChunkUnavailable| page_unavailable())
            }

            async fn preload() {
                // The split (and its preload function) exists in the browser build only.
                // A failure is met again by `view`, which fetches anew and says so.
                #[cfg(target_arch = "wasm32")]
                let _ = $preload().await;
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
