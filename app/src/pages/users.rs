//! `/admin/users`: accounts, roles, passwords and daily budgets.

use leptos::prelude::*;

use super::shell::Shell;
use crate::users::view::UsersAdmin;

#[component]
pub fn UsersPage() -> impl IntoView {
    view! {
        <Shell>
            <div class="page-head"><h1>"Users"</h1><a href="/admin/deals">"Deal budgets"</a></div>
            <UsersAdmin/>
        </Shell>
    }
}
