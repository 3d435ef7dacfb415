use leptos::prelude::*;

use super::api::list_users;
use crate::layout::{ErrorNotice, Shell};

#[component]
pub fn UsersPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| list_users());
    view! {
        <Shell>
            <h1>"Users"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(users) => view! {
                            <table class="table">
                                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th>"Since"</th></tr></thead>
                                <tbody>
                                    {users.into_iter().map(|u| view! {
                                        <tr>
                                            <td>{u.email}</td>
                                            <td>{u.role.as_str()}</td>
                                            <td>{if u.active { "active" } else { "deactivated" }}</td>
                                            <td>{u.created_on}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <p class="muted">"Add or update accounts from the command line: "
                                <code>"server user add --email E --password P [--admin]"</code></p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Shell>
    }
}
