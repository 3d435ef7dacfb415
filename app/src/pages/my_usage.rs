//! `/my-usage`: an analyst's own month — spend, tokens, the limits on their calls and
//! when each resets, where the pace leads, and their alerts.

use leptos::prelude::*;

use super::shell::Shell;
use crate::alerts::api::my_alerts;
use crate::alerts::view::AlertList;
use crate::budget::MyUsage;
use crate::budget::api::get_my_usage;
use crate::budget::view::BudgetMeter;
use crate::format::{format_dollars, format_tokens};
use crate::ui::ErrorNotice;

#[component]
pub fn MyUsagePage() -> impl IntoView {
    let usage = Resource::new(|| (), |_| get_my_usage());
    let alerts = Resource::new(|| (), |_| my_alerts());
    view! {
        <Shell>
            <div class="page-head"><h1>"My usage"</h1></div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match usage.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(u) => {
                            let warn_ratio = u.warn_ratio;
                            view! {
                                <dl class="totals" data-testid="my-month">
                                    <div><dt>{format!("Spent in {}", u.month)}</dt><dd>{format_dollars(u.spent_microusd as i64)}</dd></div>
                                    <div><dt>"Tokens"</dt><dd>{format_tokens(u.tokens)}</dd></div>
                                    <div><dt>"Calls"</dt><dd>{format_tokens(u.calls)}</dd></div>
                                </dl>
                                <p class="projection" data-testid="my-projection">{projection(&u)}</p>
                                <h2>"Your limits"</h2>
                                <div class="meters" data-testid="my-limits">
                                    {u.limits.into_iter().map(|limit| {
                                        let resets = limit.resets.clone().map(|r| format!("resets {r}"));
                                        view! {
                                            <div>
                                                <BudgetMeter limit warn_ratio/>
                                                {resets.map(|r| view! { <span class="small muted">{r}</span> })}
                                            </div>
                                        }
                                    }).collect_view()}
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
            <h2>"Your alerts"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match alerts.await {
                        Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        Ok(alerts) => view! { <AlertList alerts/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}

/// "At the pace of the last 7 days ($1.20 and 12,000 tokens a day): about $31.00 and
/// 300,000 tokens by the end of the month."
fn projection(u: &MyUsage) -> String {
    let (usd, tokens) = (&u.month_usd, &u.month_tokens);
    if usd.per_day == 0 && tokens.per_day == 0 {
        return format!("No use in the last {} days: at this pace the month ends at {}.", u.window_days, format_dollars(u.spent_microusd as i64));
    }
    let end = |f: &crate::forecast::Forecast, now: u64| f.at_period_end.unwrap_or(now);
    format!(
        "At the pace of the last {} days ({} and {} tokens a day): about {} and {} tokens by the end of the month.",
        u.window_days,
        format_dollars(usd.per_day as i64),
        format_tokens(tokens.per_day),
        format_dollars(end(usd, u.spent_microusd) as i64),
        format_tokens(end(tokens, u.tokens)),
    )
}
