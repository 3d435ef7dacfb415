//! `/admin/deals`: every deal's budget, and the form to set or clear its override.

use leptos::prelude::*;

use super::shell::Shell;
use crate::budget::BudgetState;
use crate::budget::api::SetDealBudget;
use crate::deals::DealSummary;
use crate::deals::api::list_deals;
use crate::format::format_tokens;
use crate::ui::ErrorNotice;

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
                            <div class="table-scroll"><table class="table" data-testid="deal-budgets">
                                <thead><tr><th>"Deal"</th><th class="num">"Used"</th><th class="num">"Limit"</th><th>"State"</th><th>"Set budget"</th></tr></thead>
                                <tbody>
                                    {deals.into_iter().map(|DealSummary { deal: d, budget }| {
                                        let state = match budget.state { BudgetState::Ok => "ok", BudgetState::Warning => "warning", BudgetState::Blocked => "blocked" };
                                        view! {
                                            <tr data-testid="deal-budget-row">
                                                <td>{d.name}</td>
                                                <td class="num">{format_tokens(budget.used)}</td>
                                                <td class="num">{format_tokens(budget.limit)}</td>
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
                            </table></div>
                            <p class="muted small">"Leave the field empty to go back to the default budget."</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}
