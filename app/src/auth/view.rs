use leptos::prelude::*;

use super::api::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            super::reload_to("/");
        }
    });
    let error = move || login.value().get().and_then(Result::err);
    view! {
        <main class="login">
            <h1 class="brand">"DealDesk"</h1>
            <p class="muted">"Deal analysis with Claude, on a budget you can see."</p>
            <ActionForm action=login attr:class="card form">
                <label>"Email"
                    <input type="email" name="email" required autocomplete="username" autofocus/>
                </label>
                <label>"Password"
                    <input type="password" name="password" required autocomplete="current-password"/>
                </label>
                {move || error().map(|e| view! {
                    <p class="notice error" role="alert" data-kind=e.kind.as_str()>{e.message}</p>
                })}
                <button type="submit" class="button primary" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </main>
    }
}
