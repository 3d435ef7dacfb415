//! Account administration on screen: the add-user form and the accounts table with each
//! account's actions (role, activation, password, budgets, model choice); each action's
//! error or success is said right below its account's row.

use leptos::prelude::*;

use super::UserSummary;
use super::api::{CreateUser, ResetPassword, SetUserActive, SetUserRole, list_users, user_defaults};
use crate::budget::api::{SetUserBudget, SetUserModelChoice, SetUserMonthlyBudget};
use crate::format::{format_dollars, format_tokens};
use crate::error::AppError;
use crate::ui::ErrorNotice;

/// How an account's last row action ended, said in the row right below the account.
#[derive(Clone, Debug, PartialEq)]
enum RowOutcome {
    /// What was done, e.g. "Role changed."
    Done(&'static str),
    Failed(AppError),
}

impl RowOutcome {
    fn of<T>(result: Result<T, AppError>, done: &'static str) -> RowOutcome {
        match result {
            Ok(_) => RowOutcome::Done(done),
            Err(error) => RowOutcome::Failed(error),
        }
    }
}

/// One account's row actions and how the last of them ended. Made once per account by
/// the page, not by the row: the rows are drawn anew whenever the list is read again,
/// and an outcome (or an action still on its way) must outlive that.
#[derive(Clone, Copy)]
struct RowActions {
    role: ServerAction<SetUserRole>,
    active: ServerAction<SetUserActive>,
    password: ServerAction<ResetPassword>,
    budget: ServerAction<SetUserBudget>,
    monthly: ServerAction<SetUserMonthlyBudget>,
    model: ServerAction<SetUserModelChoice>,
    outcome: RwSignal<Option<RowOutcome>>,
}

impl RowActions {
    /// The actions of one account; each success bumps `changed`, so the list is read
    /// again, and every ending replaces the row's outcome (a success clears an error).
    fn new(changed: RwSignal<usize>) -> RowActions {
        let actions = RowActions {
            role: ServerAction::new(),
            active: ServerAction::new(),
            password: ServerAction::new(),
            budget: ServerAction::new(),
            monthly: ServerAction::new(),
            model: ServerAction::new(),
            outcome: RwSignal::new(None),
        };
        let outcome = actions.outcome;
        let report = move |ended: Signal<Option<RowOutcome>>| {
            Effect::new(move |_| {
                if let Some(ended) = ended.get() {
                    if matches!(ended, RowOutcome::Done(_)) {
                        changed.update(|n| *n += 1);
                    }
                    outcome.set(Some(ended));
                }
            });
        };
        let a = actions;
        report(Signal::derive(move || a.role.value().get().map(|r| RowOutcome::of(r, "Role changed."))));
        report(Signal::derive(move || a.active.value().get().map(|r| RowOutcome::of(r, "Account status changed."))));
        report(Signal::derive(move || a.password.value().get().map(|r| RowOutcome::of(r, "Password reset: their sessions are ended."))));
        report(Signal::derive(move || a.budget.value().get().map(|r| RowOutcome::of(r, "Daily budget saved."))));
        report(Signal::derive(move || a.monthly.value().get().map(|r| RowOutcome::of(r, "Monthly budget saved."))));
        report(Signal::derive(move || a.model.value().get().map(|r| RowOutcome::of(r, "Model choice saved."))));
        actions
    }
}

/// Every account's row actions, by user id, owned by the page.
#[derive(Clone, Copy)]
struct Rows {
    owner: StoredValue<Owner>,
    by_user: StoredValue<std::collections::HashMap<i64, RowActions>>,
    changed: RwSignal<usize>,
}

impl Rows {
    fn new() -> Rows {
        let owner = Owner::current().expect("the users page has a reactive owner");
        Rows { owner: StoredValue::new(owner), by_user: StoredValue::new(Default::default()), changed: RwSignal::new(0) }
    }

    /// The actions of `user_id`'s row, made under the page's owner on first use.
    fn of(&self, user_id: i64) -> RowActions {
        if let Some(actions) = self.by_user.with_value(|m| m.get(&user_id).copied()) {
            return actions;
        }
        let changed = self.changed;
        let actions = self.owner.with_value(|owner| owner.with(|| RowActions::new(changed)));
        self.by_user.update_value(|m| {
            m.insert(user_id, actions);
        });
        actions
    }
}

/// The add-user form and every account, read again after each change.
#[component]
pub fn UsersAdmin() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let rows = Rows::new();
    let users = Resource::new(move || create.version().get() + rows.changed.get(), |_| list_users());
    let defaults = Resource::new(|| (), |_| user_defaults());
    // Each account added: the form starts afresh (no password left in it) and says so.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    view! {
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let d = defaults.await.unwrap_or_default();
                    let daily = format!("default: {}", format_tokens(d.daily_tokens));
                    let monthly = match d.monthly_microusd {
                        0 => "default: no monthly budget".to_string(),
                        m => format!("default: {}", format_dollars(m as i64)),
                    };
                    view! {
                        <ActionForm action=create node_ref=form attr:class="card form inline-form" attr:data-testid="create-user">
                            <h2>"Add a user"</h2>
                            <label>"Email"<input type="email" name="email" required/></label>
                            <label>"Password"<input type="password" name="password" required minlength="8" autocomplete="new-password"/></label>
                            <label>"Role"<select name="role"><option value="analyst">"analyst"</option><option value="admin">"admin"</option></select></label>
                            <label>"Daily budget (tokens)"<input name="daily_tokens" placeholder=daily/></label>
                            <label>"Monthly budget (USD)"<input name="monthly_usd" placeholder=monthly inputmode="decimal"/></label>
                            <button type="submit" class="button primary">"Add user"</button>
                            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                        </ActionForm>
                    }
                })}
            </Transition>
            {move || matches!(create.value().get(), Some(Ok(_))).then(|| view! {
                <p class="notice ok" role="status" data-testid="user-added">"User added: the form is ready for the next one."</p>
            })}
            <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(users) => view! {
                            <div class="table-scroll"><table class="table" data-testid="users">
                                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th class="num">"Daily budget"</th><th class="num">"Monthly budget"</th><th class="num">"Spent this month"</th><th>"Last Claude use"</th><th>"Model choice"</th><th>"Since"</th><th>"Manage"</th></tr></thead>
                                {users.into_iter().map(|u| {
                                    let actions = rows.of(u.id);
                                    view! { <UserRow u actions/> }.into_any()
                                }).collect_view()}
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        
    }
}

#[component]
fn UserRow(u: UserSummary, actions: RowActions) -> impl IntoView {
    let id = u.id;
    let other_role = if u.role == crate::auth::UserRole::Admin { "analyst" } else { "admin" };
    let outcome_id = format!("user-{id}-outcome");
    // Boxed: the whole row in one type overflows the release build's query depth.
    let manage = view! {
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
    }
    .into_any();
    // The account and its outcome row share a `tbody`, so the message stays with its row.
    view! {
        <tbody class="account" data-testid="account">
        <tr aria-describedby={
            let outcome_id = outcome_id.clone();
            move || actions.outcome.with(Option::is_some).then(|| outcome_id.clone())
        } class=if u.active { "" } else { "inactive" } data-testid="user-row">
            <td>{u.email.clone()}</td>
            <td>{u.role.as_str()}</td>
            <td>{if u.active { "active" } else { "deactivated" }}</td>
            <td class="num">{u.daily_token_budget.map_or("default".to_string(), |b| format_tokens(b.max(0) as u64))}</td>
            <td class="num" data-testid="monthly-budget">{u.monthly_budget_microusd.map_or("default".to_string(), format_dollars)}</td>
            <td class="num">{format_dollars(u.spent_this_month_microusd as i64)}</td>
            <td class="nowrap">{u.last_used_on.clone().unwrap_or_else(|| "never".into())}</td>
            <td data-testid="model-choice-setting">{match u.model_choice { None => "as the firm", Some(true) => "on", Some(false) => "off" }}</td>
            <td>{u.created_on}</td>
            <td>{manage}</td>
        </tr>
        {view! { <RowOutcomeView outcome=actions.outcome id=outcome_id/> }.into_any()}
        </tbody>
    }
    .into_any()
}

/// The row below an account: its last action's error (an alert, until one of its actions
/// succeeds) or a short word on what was done.
#[component]
fn RowOutcomeView(outcome: RwSignal<Option<RowOutcome>>, id: String) -> impl IntoView {
    move || {
        outcome.get().map(|ended| {
            let message = match ended {
                RowOutcome::Failed(error) => view! { <ErrorNotice error/> }.into_any(),
                RowOutcome::Done(text) => view! { <p class="notice ok" role="status">{text}</p> }.into_any(),
            };
            view! {
                <tr class="row-outcome" id=id.clone() data-testid="row-outcome">
                    <td colspan="10">{message}</td>
                </tr>
            }
        })
    }
}
