//! The frame around every signed-in page: navigation, the user menu, the 404 page.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::auth::UserView;
use crate::auth::api::Logout;
use crate::error::AppError;

/// The signed-in user, loaded once per page load and shared through context.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<UserView>, AppError>>);

#[component]
pub fn Shell(children: Children) -> impl IntoView {
    view! {
        <NavBar/>
        <main class="content">{children()}</main>
    }
}

#[component]
fn NavBar() -> impl IntoView {
    let CurrentUser(me) = expect_context::<CurrentUser>();
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            crate::auth::reload_to("/login");
        }
    });
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">"DealDesk"</A>
            <nav class="nav">
                <A href="/deals">"Deals"</A>
                <A href="/my-usage">"My usage"</A>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let user = me.await.ok().flatten();
                        let admin = user.as_ref().is_some_and(UserView::is_admin);
                        view! {
                            <Show when=move || admin>
                                <A href="/admin/tokens" attr:class="admin-link">"Usage"</A>
                                <A href="/admin/users" attr:class="admin-link">"Users"</A>
                                <A href="/admin/deals" attr:class="admin-link">"Deal budgets"</A>
                                <A href="/admin/limits" attr:class="admin-link">"Limits"</A>
                                <A href="/admin/prices" attr:class="admin-link">"Prices"</A>
                                <A href="/admin/alerts" attr:class="admin-link">"Alerts"</A>
                                <A href="/admin/audit" attr:class="admin-link">"Audit"</A>
                            </Show>
                            <span class="spacer"></span>
                            {user.map(|u| view! {
                                <span class="who" data-testid="current-user">
                                    {u.email.clone()} " · " {u.role.as_str()}
                                </span>
                            })}
                        }
                    })}
                </Transition>
                <ActionForm action=logout attr:class="inline">
                    <button type="submit" class="link-button">"Sign out"</button>
                </ActionForm>
            </nav>
        </header>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Shell>
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the deals"</a></p>
        </Shell>
    }
}
