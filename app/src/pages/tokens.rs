//! `/admin/tokens`: who spent what, on which deal, when, and what it cost — the usage
//! dashboard, with the users and deals in budget trouble marked and what is left of the
//! firm's monthly cap among its totals.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::shell::Shell;
use crate::budget::api::{get_budget_flags, get_budget_uses};
use crate::budget::view::{BudgetUseTable, FirmCapsBanner, FirmMonthCard};
use crate::budget::{BudgetFlags, BudgetState};
use crate::error::ErrorKind;
use crate::ui::ErrorNotice;
use crate::usage::DashboardRange;
use crate::usage::api::get_usage_dashboard;
use crate::usage::view::{DashboardView, RowMark};

#[component]
pub fn TokensPage() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default();
        (get("range"), get("from"), get("to"), get("user"), get("deal"))
    };
    let dashboard = Resource::new(params, |(range, from, to, user, deal)| get_usage_dashboard(range, from, to, user, deal));
    let flags = Resource::new(|| (), |_| get_budget_flags());
    let uses = Resource::new(|| (), |_| get_budget_uses());
    let current = move || DashboardRange::parse(&params().0);
    view! {
        <Shell>
            <div class="page-head"><h1>"Token usage"</h1></div>
            <nav class="ranges" aria-label="Date range">
                {DashboardRange::PRESETS.into_iter().map(|(range, label)| view! {
                    <a href=format!("/admin/tokens?range={}", range.as_str())
                        aria-current=move || (current() == Some(range)).then_some("page")>{label}</a>
                }).collect_view()}
                <form method="get" action="/admin/tokens" class="custom-range">
                    <input type="hidden" name="range" value="custom"/>
                    <label>"From"<input type="date" name="from" value=move || params().1/></label>
                    <label>"To"<input type="date" name="to" value=move || params().2/></label>
                    <button type="submit" class="button">"Show"</button>
                </form>
            </nav>
            <Suspense fallback=|| view! { <p class="muted">"Loading usage…"</p> }>
                {move || Suspend::new(async move {
                    let flags = flags.await.unwrap_or_default();
                    match dashboard.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(d) => {
                            let (caps, critical_max) = (flags.firm.clone(), flags.firm_critical_max_request_tokens);
                            let firm_month = flags.firm_month.clone().map(|budget| view! { <FirmMonthCard budget/> }.into_any());
                            let (user_marks, deal_marks) = marks(flags);
                            view! { <FirmCapsBanner caps critical_max/> <DashboardView d user_marks deal_marks more_totals=firm_month/> }.into_any()
                        }
                    }
                })}
            </Suspense>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match uses.await {
                        // Someone who may not see the dashboard is told so once, above.
                        Err(error) if matches!(error.kind, ErrorKind::Forbidden | ErrorKind::Unauthorized) => ().into_any(),
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(uses) => {
                            let warn_ratio = uses.warn_ratio;
                            view! {
                            <div class="budget-use-tables">
                                <BudgetUseTable title=format!("Analysts' spend against their monthly budget, {}", uses.month) rows=uses.users warn_ratio testid="budget-users"/>
                                <BudgetUseTable title="Deals against their budget".to_string() rows=uses.deals warn_ratio testid="budget-deals"/>
                            </div>
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
        </Shell>
    }
}

/// Budget trouble as row marks: users over or near today's budget, deals over or near
/// their lifetime budget.
fn marks(flags: BudgetFlags) -> (Vec<(String, RowMark)>, Vec<(String, RowMark)>) {
    let mark = |state: BudgetState| match state {
        BudgetState::Blocked => Some(RowMark { row_class: "row-blocked", badge_class: "badge blocked", label: "over budget" }),
        BudgetState::Warning => Some(RowMark { row_class: "row-warning", badge_class: "badge warn", label: "budget warning" }),
        BudgetState::Ok => None,
    };
    let convert = |list: Vec<(String, BudgetState)>| list.into_iter().filter_map(|(key, state)| Some((key, mark(state)?))).collect();
    (convert(flags.users), convert(flags.deals))
}
