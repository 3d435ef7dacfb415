//! Account administration on screen: the add-user form and the accounts table with each
//! account's actions (role, activation, password, daily budget).

use leptos::prelude::*;

use super::UserSummary;
use super::api::{CreateUser, ResetPassword, SetUserActive, SetUserRole, list_users, user_defaults};
use crate::budget::api::{SetUserBudget, SetUserModelChoice, SetUserMonthlyBudget};
use crate::format::{format_dollars, format_tokens};
use crate::ui::ErrorNotice;

/// Every admin action on this page, so any of them refreshes the list.
#[derive(Clone, Copy)]
struct Actions {
    create: ServerAction<CreateUser>,
    role: ServerAction<SetUserRole>,
    active: ServerAction<SetUserActive>,
    password: ServerAction<ResetPassword>,
    budget: ServerAction<SetUserBudget>,
    monthly: ServerAction<SetUserMonthlyBudget>,
    model: ServerAction<SetUserModelChoice>,
}

impl Actions {
    fn version(&self) -> usize {
        self.create.version().get() + self.role.version().get() + self.active.version().get()
            + self.password.version().get() + self.budget.version().get() + self.monthly.version().get()
            + self.model.version().get()
    }

    /// The most recent failure of any action, to show at the top.
    fn error(&self) -> Option<crate::error::AppError> {
        [
            self.create.value().get().and_then(Result::err),
            self.role.value().get().and_then(Result::err),
            self.active.value().get().and_then(Result::err),
            self.password.value().get().and_then(Result::err),
            self.budget.value().get().and_then(Result::err),
            self.monthly.value().get().and_then(Result::err),
            self.model.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    }
}

/// The add-user form and every account, refreshed after any action.
#[component]
pub fn UsersAdmin() -> impl IntoView {
    let actions = Actions {
        create: ServerAction::new(),
        role: ServerAction::new(),
        active: ServerAction::new(),
        password: ServerAction::new(),
        budget: ServerAction::new(),
        monthly: ServerAction::new(),
        model: ServerAction::new(),
    };
    let users = Resource::new(move || actions.version(), |_| list_users());
    let defaults = Resource::new(|| (), |_| user_defaults());
    // Each account added: the form starts afresh (no password left in it) and says so.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = actions.create.value().get() {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    view! {
            {move || actions.error().map(|error| view! { <ErrorNotice error/> })}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let d = defaults.await.unwrap_or_default();
                    let daily = format!("default: {}", format_tokens(d.daily_tokens));
                    let monthly = match d.monthly_microusd {
                        0 => "default: no monthly budget".to_string(),
                        m => format!("default: {}", format_dollars(m as i64)),
                    };
                    view! {
                        <ActionForm action=actions.create node_ref=form attr:class="card form inline-form" attr:data-testid="create-user">
                            <h2>"Add a user"</h2>
                            <label>"Email"<input type="email" name="email" required/></label>
                            <label>"Password"<input type="password" name="password" required minlength="8" autocomplete="new-password"/></label>
                            <label>"Role"<select name="role"><option value="analyst">"analyst"</option><option value="admin">"admin"</option></select></label>
                            <label>"Daily budget (tokens)"<input name="daily_tokens" placeholder=daily/></label>
                            <label>"Monthly budget (USD)"<input name="monthly_usd" placeholder=monthly inputmode="decimal"/></label>
                            <button type="submit" class="button primary">"Add user"</button>
                        </ActionForm>
                    }
                })}
            </Transition>
            {move || matches!(actions.create.value().get(), Some(Ok(_))).then(|| view! {
                <p class="notice ok" role="status" data-testid="user-added">"User added: the form is ready for the next one."</p>
            })}
            <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(users) => view! {
                            <div class="table-scroll"><table class="table" data-testid="users">
                                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th class="num">"Daily budget"</th><th class="num">"Monthly budget"</th><th class="num">"Spent this month"</th><th>"Last Claude use"</th><th>"Model choice"</th><th>"Since"</th><th>"Manage"</th></tr></thead>
                                <tbody>
                                    {users.into_iter().map(|u| view! { <UserRow u actions/> }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        
    }
}

#[component]
fn UserRow(u: UserSummary, actions: Actions) -> impl IntoView {
    let id = u.id;
    let other_role = if u.role == crate::auth::UserRole::Admin { "analyst" } else { "admin" };
    view! {
        <tr class=if u.active { "" } else { "inactive" } data-testid="user-row">
            <td>{u.email.clone()}</td>
            <td>{u.role.as_str()}</td>
            <td>{if u.active { "active" } else { "deactivated" }}</td>
            <td class="num">{u.daily_token_budget.map_or("default".to_string(), |b| format_tokens(b.max(0) as u64))}</td>
            <td class="num" data-testid="monthly-budget">{u.monthly_budget_microusd.map_or("default".to_string(), format_dollars)}</td>
            <td class="num">{format_dollars(u.spent_this_month_microusd as i64)}</td>
            <td class="nowrap">{u.last_used_on.clone().unwrap_or_else(|| "never".into())}</td>
            <td data-testid="model-choice-setting">{match u.model_choice { None => "as the firm", Some(true) => "on", Some(false) => "off" }}</td>
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
                        <ActionForm action=actions.monthly>
                            <input type="hidden" name="user_id" value=id/>
                            <input name="monthly_usd" aria-label="Monthly budget (USD)" placeholder="default" inputmode="decimal"
                                value=u.monthly_budget_microusd.map(|m| format!("{:.2}", m as f64 / 1e6)).unwrap_or_default()/>
                            <button type="submit" class="button">"Set monthly budget"</button>
                        </ActionForm>
                        <ActionForm action=actions.model>
                            <input type="hidden" name="user_id" value=id/>
                            <select name="choice" aria-label="Model choice">
                                <option value="firm" selected=u.model_choice.is_none()>"model choice as the firm"</option>
                                <option value="on" selected=u.model_choice == Some(true)>"model choice on"</option>
                                <option value="off" selected=u.model_choice == Some(false)>"model choice off"</option>
                            </select>
                            <button type="submit" class="button">"Set"</button>
                        </ActionForm>
                    </div>
                </details>
            </td>
        </tr>
    }
}
