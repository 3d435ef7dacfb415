//! `/admin/users`: accounts and their budgets, and `/admin/deals`: deal budgets.

use leptos::prelude::*;

use super::UserSummary;
use super::api::{CreateUser, ResetPassword, SetUserActive, SetUserRole, list_users};
use crate::budget::api::{SetDealBudget, SetUserBudget};
use crate::budget::{BudgetState, format_tokens};
use crate::deals::api::list_deals;
use crate::layout::{ErrorNotice, Shell};

/// Every admin action on this page, so any of them refreshes the list.
#[derive(Clone, Copy)]
struct Actions {
    create: ServerAction<CreateUser>,
    role: ServerAction<SetUserRole>,
    active: ServerAction<SetUserActive>,
    password: ServerAction<ResetPassword>,
    budget: ServerAction<SetUserBudget>,
}

impl Actions {
    fn version(&self) -> usize {
        self.create.version().get() + self.role.version().get() + self.active.version().get()
            + self.password.version().get() + self.budget.version().get()
    }

    /// The most recent failure of any action, to show at the top.
    fn error(&self) -> Option<crate::error::AppError> {
        [
            self.create.value().get().and_then(Result::err),
            self.role.value().get().and_then(Result::err),
            self.active.value().get().and_then(Result::err),
            self.password.value().get().and_then(Result::err),
            self.budget.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let actions = Actions {
        create: ServerAction::new(),
        role: ServerAction::new(),
        active: ServerAction::new(),
        password: ServerAction::new(),
        budget: ServerAction::new(),
    };
    let users = Resource::new(move || actions.version(), |_| list_users());
    view! {
        <Shell>
            <div class="page-head"><h1>"Users"</h1><a href="/admin/deals">"Deal budgets"</a></div>
            {move || actions.error().map(|error| view! { <ErrorNotice error/> })}
            <ActionForm action=actions.create attr:class="card form inline-form" attr:data-testid="create-user">
                <h2>"Add a user"</h2>
                <label>"Email"<input type="email" name="email" required/></label>
                <label>"Password"<input type="password" name="password" required minlength="8" autocomplete="new-password"/></label>
                <label>"Role"<select name="role"><option value="analyst">"analyst"</option><option value="admin">"admin"</option></select></label>
                <label>"Daily budget (tokens)"<input name="daily_tokens" placeholder="default"/></label>
                <button type="submit" class="button primary">"Add user"</button>
            </ActionForm>
            <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(users) => view! {
                            <table class="table" data-testid="users">
                                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th class="num">"Daily budget"</th><th>"Since"</th><th>"Manage"</th></tr></thead>
                                <tbody>
                                    {users.into_iter().map(|u| view! { <UserRow u actions/> }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
fn UserRow(u: UserSummary, actions: Actions) -> impl IntoView {
    let id = u.id;
    let other_role = if u.role == crate::auth::Role::Admin { "analyst" } else { "admin" };
    view! {
        <tr class=if u.active { "" } else { "inactive" } data-testid="user-row">
            <td>{u.email.clone()}</td>
            <td>{u.role.as_str()}</td>
            <td>{if u.active { "active" } else { "deactivated" }}</td>
            <td class="num">{u.daily_token_budget.map_or("default".to_string(), |b| format_tokens(b.max(0) as u64))}</td>
            <td>{u.created_on}</td>
            <td>
                <details>
                    <summary>"Manage"</summary>
                    <div class="manage">
                        <ActionForm action=actions.role>
                            <input type="hidden" name="user_id" value=id/>
                            <input type="hidden" name="role" value=other_role/>
                            <button type="submit" class="link-button">{format!("Make {other_role}")}</button>
                        </ActionForm>
                        <ActionForm action=actions.active>
                            <input type="hidden" name="user_id" value=id/>
                            <input type="hidden" name="active" value=(!u.active).to_string()/>
                            <button type="submit" class="link-button">{if u.active { "Deactivate" } else { "Reactivate" }}</button>
                        </ActionForm>
                        <ActionForm action=actions.password>
                            <input type="hidden" name="user_id" value=id/>
                            <input type="password" name="password" aria-label="New password" placeholder="new password" minlength="8" autocomplete="new-password" required/>
                            <button type="submit" class="button">"Reset password"</button>
                        </ActionForm>
                        <ActionForm action=actions.budget>
                            <input type="hidden" name="user_id" value=id/>
                            <input name="daily_tokens" aria-label="Daily budget" placeholder="default" value=u.daily_token_budget.map(|b| b.to_string()).unwrap_or_default()/>
                            <button type="submit" class="button">"Set daily budget"</button>
                        </ActionForm>
                    </div>
                </details>
            </td>
        </tr>
    }
}

#[component]
pub fn DealBudgetsPage() -> impl IntoView {
    let set = ServerAction::<SetDealBudget>::new();
    let deals = Resource::new(move || set.version().get(), |_| list_deals());
    view! {
        <Shell>
            <div class="page-head"><h1>"Deal budgets"</h1><a href="/admin/users">"Users"</a></div>
            {move || set.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading deals…"</p> }>
                {move || Suspend::new(async move {
                    match deals.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(deals) => view! {
                            <table class="table" data-testid="deal-budgets">
                                <thead><tr><th>"Deal"</th><th class="num">"Used"</th><th class="num">"Limit"</th><th>"State"</th><th>"Set budget"</th></tr></thead>
                                <tbody>
                                    {deals.into_iter().map(|d| {
                                        let state = match d.budget.state { BudgetState::Ok => "ok", BudgetState::Warning => "warning", BudgetState::Blocked => "blocked" };
                                        view! {
                                            <tr data-testid="deal-budget-row">
                                                <td>{d.name}</td>
                                                <td class="num">{format_tokens(d.budget.used)}</td>
                                                <td class="num">{format_tokens(d.budget.limit)}</td>
                                                <td>{state}</td>
                                                <td>
                                                    <ActionForm action=set attr:class="inline">
                                                        <input type="hidden" name="deal_id" value=d.id/>
                                                        <input name="tokens" aria-label="Deal budget" placeholder="default"/>
                                                        <button type="submit" class="button">"Set"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <p class="muted small">"Leave the field empty to go back to the default budget."</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}
