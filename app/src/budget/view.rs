//! Budgets on screen: the meters and banners of a deal's page (every limit that applies
//! to the caller's calls there), and a deal's badge in lists.

use leptos::prelude::*;

use super::{BudgetState, BudgetStatus, BudgetUse, DealBudget, FirmLevel, FirmMonthBudget, Limit, LimitKind, Unit, wording};
use crate::format::{format_dollars, format_tokens};
use crate::usage::Window;

/// The meters of every limit on the caller's calls on this deal, and the banners of
/// those that stop or slow them, as every tab of a deal shows them.
#[component]
pub fn BudgetPanel(status: BudgetStatus) -> impl IntoView {
    let is_admin = status.limit(LimitKind::UserDailyTokens).is_none();
    let deal = status.limit(LimitKind::DealTokens).cloned();
    let banner = match (status.deal_state, deal) {
        (BudgetState::Blocked, Some(deal)) => Some(view! {
            <p class="notice error" role="status" data-testid="deal-blocked">{wording::deal_used_up(&deal)}</p>
        }.into_any()),
        (BudgetState::Warning, Some(deal)) => Some(view! {
            <p class="notice warn" role="status" data-testid="deal-warning">{wording::deal_warning(&deal)}</p>
        }.into_any()),
        _ => None,
    };
    // (The states that stop every call, in the words `BudgetStatus::blocked_reason` gives
    // the buttons they disable.)
    let spent = |kind: LimitKind, threshold: u64| status.limit(kind).filter(|l| l.meter.remaining() < threshold).cloned();
    let daily_out = spent(LimitKind::UserDailyTokens, status.smallest_call_tokens).map(|l| view! {
        <p class="notice error" role="status" data-testid="daily-out">{wording::daily_used_up(&l, l.resets.as_deref().unwrap_or_default())}</p>
    });
    let monthly_out = spent(LimitKind::UserMonthlyUsd, 1_000).map(|l| view! {
        <p class="notice error" role="status" data-testid="monthly-out">{wording::monthly_used_up(&l, l.resets.as_deref().unwrap_or_default())}</p>
    });
    let firm_banners: Vec<_> = status
        .limits
        .iter()
        .filter(|l| l.kind.is_firm())
        .filter_map(|l| firm_banner(l, status.firm.level(&l.meter), status.firm.critical_max_request_tokens, is_admin))
        .collect();
    let alert = status.alert.clone().map(|text| view! { <p class="notice warn" role="status" data-testid="budget-alert">{text}</p> });
    let warn_ratio = status.warn_ratio;
    view! {
        <div class="meters" data-testid="meters">
            {is_admin.then(|| view! {
                <div class="meter"><span class="meter-label">"Your budgets"</span><span class="muted small">"no personal limits (admin)"</span></div>
            })}
            {status.limits.into_iter().map(|limit| view! { <BudgetMeter limit warn_ratio/> }).collect_view()}
        </div>
        {banner}
        {daily_out}
        {monthly_out}
        {alert}
        {firm_banners}
    }
}

/// The banner of a firm-wide cap past its warning level: for everyone when it refuses
/// calls, for admins from the warning level.
fn firm_banner(limit: &Limit, level: FirmLevel, critical_max: u64, is_admin: bool) -> Option<AnyView> {
    if level == FirmLevel::Warning && !is_admin {
        return None;
    }
    let text = wording::firm(limit, level, critical_max, limit.resets.as_deref().unwrap_or_default())?;
    let class = if level == FirmLevel::Stop { "notice error" } else { "notice warn" };
    Some(view! { <p class=class role="status" data-testid="firm-cap">{text}</p> }.into_any())
}

/// One limit's meter, named for assistive technology.
#[component]
pub fn BudgetMeter(limit: Limit, warn_ratio: f64) -> impl IntoView {
    let meter = limit.meter;
    let class = match meter.state(warn_ratio) {
        BudgetState::Ok => "meter",
        BudgetState::Warning => "meter warning",
        BudgetState::Blocked => "meter blocked",
    };
    let (label, testid) = meter_names(limit.kind);
    let amount = |v: u64| match limit.kind.unit() {
        Unit::Tokens => format_tokens(v),
        Unit::MicroUsd => format_dollars(v as i64),
    };
    let unit = if limit.kind.unit() == Unit::Tokens { " tokens" } else { "" };
    // Dollars beside tokens: what the tokens counted so far cost.
    let cost = limit.cost_microusd.map_or(String::new(), |c| format!(" · {}", format_dollars(c as i64)));
    let text = format!("{} / {}{unit}{cost}", amount(meter.committed()), amount(meter.limit));
    let period = match limit.kind {
        LimitKind::FirmTokens(Window::Day) | LimitKind::FirmUsd(Window::Day) | LimitKind::UserDailyTokens => "the day",
        LimitKind::FirmTokens(Window::Hour) | LimitKind::FirmUsd(Window::Hour) => "the hour",
        _ => "the month",
    };
    let forecast = limit.forecast.map(|f| f.describe(amount, period));
    let (bar_max, bar_value) = bar_of(&meter);
    view! {
        <div class=class data-testid=testid>
            <span class="meter-label">{label.clone()}</span>
            <progress aria-label=label max=bar_max.to_string() value=bar_value.to_string()></progress>
            <span class="small">{text}</span>
            {forecast.map(|text| view! { <span class="forecast small muted" data-testid="forecast">{text}</span> })}
        </div>
    }
}

/// A meter's bar as `<progress>` takes it (`max`, `value`). A limit of nothing is all
/// used: a `max` of 0 is invalid, and browsers would draw it as an empty bar.
fn bar_of(meter: &super::Meter) -> (u64, u64) {
    match meter.limit {
        0 => (1, 1),
        limit => (limit, meter.committed().min(limit)),
    }
}

/// A meter's label and test id.
fn meter_names(kind: LimitKind) -> (String, String) {
    let window = |w: Window| match w {
        Window::Hour => "this hour",
        Window::Day => "today",
        Window::Month => "this month",
    };
    match kind {
        LimitKind::DealTokens => ("This deal".into(), "meter-deal".into()),
        LimitKind::UserDailyTokens => ("Your budget today".into(), "meter-daily".into()),
        LimitKind::UserMonthlyUsd => ("Your budget this month".into(), "meter-monthly".into()),
        LimitKind::FirmTokens(w) => (format!("Firm tokens {}", window(w)), format!("meter-firm-{}-tokens", w.as_str())),
        LimitKind::FirmUsd(w) => (format!("Firm spend {}", window(w)), format!("meter-firm-{}-usd", w.as_str())),
    }
}

/// A deal's budget standing in the list: nothing while it is fine.
#[component]
pub fn BudgetBadge(budget: DealBudget) -> impl IntoView {
    let pct = if budget.limit == 0 { 100 } else { budget.used * 100 / budget.limit };
    match budget.state {
        BudgetState::Ok => view! { <span class="muted small">{format!("{pct}%")}</span> }.into_any(),
        BudgetState::Warning => view! { <span class="badge warn" data-testid="budget-warning">{format!("Warning · {pct}% used")}</span> }.into_any(),
        BudgetState::Blocked => view! { <span class="badge blocked" data-testid="budget-blocked">"Blocked · budget used up"</span> }.into_any(),
    }
}

/// The firm's monthly spending cap against the month's spend, as a card among the usage
/// dashboard's totals: what is left of it, by how much it is overrun, or that none is set.
#[component]
pub fn FirmMonthCard(budget: FirmMonthBudget) -> impl IntoView {
    let (headline, detail) = budget.describe();
    let over = budget.cap_microusd.is_some_and(|cap| budget.spent_microusd > cap);
    let bar = budget.share_spent().map(|share| view! {
        <progress aria-label="Firm spend this month against its cap" max="1000" value=((share * 1000.0).round() as u64).to_string()></progress>
    });
    view! {
        <div class=if over { "firm-budget over" } else { "firm-budget" } data-testid="firm-budget">
            <dt>"Remaining firm budget"</dt>
            <dd>{headline}</dd>
            {bar}
            <span class="small muted">{detail}</span>
        </div>
    }
}

/// The firm's caps past their warning level, for admins (the usage dashboard).
#[component]
pub fn FirmCapsBanner(caps: Vec<(Limit, FirmLevel)>, critical_max: u64) -> impl IntoView {
    caps.into_iter().filter_map(|(limit, level)| firm_banner(&limit, level, critical_max, true)).collect_view()
}

/// The firm's limits: money budget per user, firm-wide caps and their levels, rate
/// limits and the per-request cap, saved at once for every instance.
#[component]
pub fn LimitsAdmin(view: super::LimitsView, save: ServerAction<super::api::SaveLimits>, reset: ServerAction<super::api::ResetLimits>) -> impl IntoView {
    let f = view.form;
    let field = |label: &'static str, name: &'static str, value: String, hint: &'static str| view! {
        <label>{label}<input name=name value=value inputmode="decimal" autocomplete="off"/><span class="hint">{hint}</span></label>
    };
    let outcome = move || {
        let saved = save.value().get().map(|r| r.map(|()| "Limits saved: they apply to every call from now on."));
        let reset = reset.value().get().map(|r| r.map(|()| "Back to the limits in Leptos.toml."));
        saved.or(reset).map(|result| match result {
            Ok(text) => view! { <p class="notice ok" role="status" data-testid="limits-saved">{text}</p> }.into_any(),
            Err(error) => view! { <crate::ui::ErrorNotice error/> }.into_any(),
        })
    };
    view! {
        <p class="muted">
            {if view.saved { "These limits were set here and apply on every instance." } else { "These are the limits from Leptos.toml; saving here overrides them on every instance, without a restart." }}
        </p>
        {outcome}
        <ActionForm action=save attr:class="card form limits-form" attr:data-testid="limits-form">
            <fieldset>
                <legend>"Each analyst"</legend>
                <div class="form-grid">
                    {field("Monthly budget per user (USD)", "user_monthly_usd", f.user_monthly_usd, "empty: none; per-user amounts on Users")}
                    {field("Alerts at (% of the monthly budget)", "user_monthly_alert_percents", f.user_monthly_alert_percents, "e.g. 50, 75, 90")}
                    {field("Requests per minute", "user_requests_per_minute", f.user_requests_per_minute, "empty or 0: no limit")}
                    {field("Requests per day", "user_requests_per_day", f.user_requests_per_day, "empty or 0: no limit")}
                </div>
            </fieldset>
            <fieldset>
                <legend>"The firm (everyone's calls, admins' too)"</legend>
                <div class="form-grid">
                    {field("Tokens per hour", "firm_hourly_tokens", f.firm_hourly_tokens, "empty: no cap")}
                    {field("Tokens per day", "firm_daily_tokens", f.firm_daily_tokens, "empty: no cap")}
                    {field("Tokens per month", "firm_monthly_tokens", f.firm_monthly_tokens, "empty: no cap")}
                    {field("Spend per hour (USD)", "firm_hourly_usd", f.firm_hourly_usd, "empty: no cap")}
                    {field("Spend per day (USD)", "firm_daily_usd", f.firm_daily_usd, "empty: no cap")}
                    {field("Spend per month (USD)", "firm_monthly_usd", f.firm_monthly_usd, "empty: no cap")}
                    {field("Enforce caps at (%)", "firm_enforce_percent", f.firm_enforce_percent, "70 stops at 70% of each cap")}
                    {field("Warning level (%)", "firm_warning_percent", f.firm_warning_percent, "admins see a banner")}
                    {field("Critical level (%)", "firm_critical_percent", f.firm_critical_percent, "large requests refused")}
                    {field("Largest request at the critical level (tokens)", "firm_critical_max_request_tokens", f.firm_critical_max_request_tokens, "input and reply")}
                    {field("Stop level (%)", "firm_stop_percent", f.firm_stop_percent, "every call refused")}
                </div>
            </fieldset>
            <fieldset>
                <legend>"Budget-aware model choice"</legend>
                <div class="form-grid">
                    <label>"For every analyst"
                        <select name="model_choice">
                            <option value="off" selected=f.model_choice == "off">"off: the configured model"</option>
                            <option value="on" selected=f.model_choice == "on">"on: the budgets pick the tier"</option>
                        </select>
                        <span class="hint">"each user may be set otherwise on Users"</span>
                    </label>
                    {field("Models, best first", "model_tiers", f.model_tiers, "e.g. claude-opus-5-5, claude-sonnet-5-5, claude-haiku-5-5")}
                    {field("Use a tier while the tightest budget has more than (%)", "model_tier_percents", f.model_tier_percents, "one per tier, falling: 70, 30, 10")}
                </div>
            </fieldset>
            <fieldset>
                <legend>"Every request"</legend>
                <div class="form-grid">
                    {field("Largest request (tokens)", "max_request_tokens", f.max_request_tokens, "input and reply")}
                    {field("Smallest useful reply (tokens)", "min_useful_output_tokens", f.min_useful_output_tokens, "a budget's last tokens are spent down to this")}
                </div>
            </fieldset>
            <button type="submit" class="button primary">"Save limits"</button>
        </ActionForm>
        {view.saved.then(|| view! {
            <ActionForm action=reset attr:class="inline">
                <button type="submit" class="button">"Go back to the limits in Leptos.toml"</button>
            </ActionForm>
        })}
    }
}

/// Spend against budget, one table per kind (analysts this month, deals over their life):
/// a bar per row with its budget as the end of the bar, most used first, sortable by
/// share used or by name.
#[component]
pub fn BudgetUseTable(title: String, rows: Vec<BudgetUse>, warn_ratio: f64, testid: &'static str) -> impl IntoView {
    let by_name = RwSignal::new(false);
    let rows = StoredValue::new(rows);
    let sorted = move || {
        let mut list = rows.get_value();
        if by_name.get() {
            list.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()));
        }
        list
    };
    let sort_button = move |name: bool, label: &'static str| view! {
        <button type="button" class="link-button" aria-pressed=move || (by_name.get() == name).to_string() on:click=move |_| by_name.set(name)>{label}</button>
    };
    view! {
        <section class="usage-table" data-testid=testid>
            <div class="table-head">
                <h2>{title}</h2>
                <span class="small muted">"Sort: " {sort_button(false, "% used")} " · " {sort_button(true, "name")}</span>
            </div>
            {move || {
                let list = sorted();
                if list.is_empty() {
                    return view! { <p class="muted">"Nothing to show yet."</p> }.into_any();
                }
                view! {
                    <ul class="budget-uses">
                        {list.into_iter().map(|u| {
                            let amount = |v: u64| match u.unit {
                                Unit::Tokens => format!("{} tokens", format_tokens(v)),
                                Unit::MicroUsd => format_dollars(v as i64),
                            };
                            let share = u.share();
                            let (text, state) = match u.limit {
                                None => (format!("{} (no budget)", amount(u.used)), "ok"),
                                Some(limit) => {
                                    let state = if share >= 1.0 { "blocked" } else if share >= warn_ratio { "warning" } else { "ok" };
                                    (format!("{} of {} ({:.0}%)", amount(u.used), amount(limit), share * 100.0), state)
                                }
                            };
                            let label = format!("{}: {text}", u.name);
                            // A bar only against a budget: full for a budget of nothing.
                            let bar = match u.limit {
                                Some(_) => view! {
                                    <progress aria-label=label max="1000" value=((share.min(1.0) * 1000.0).round() as u64).to_string()></progress>
                                }
                                .into_any(),
                                None => view! { <span class="small muted">"—"</span> }.into_any(),
                            };
                            view! {
                                <li class=format!("budget-use {state}")>
                                    <span class="name">{u.name.clone()}</span>
                                    {bar}
                                    <span class="small num">{text}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::bar_of;
    use crate::budget::Meter;

    #[test]
    fn a_meter_bar_is_full_when_used_up_and_for_a_limit_of_nothing() {
        assert_eq!(bar_of(&Meter { used: 30, reserved: 10, limit: 100 }), (100, 40));
        assert_eq!(bar_of(&Meter { used: 300, reserved: 0, limit: 100 }), (100, 100), "an overrun is a full bar");
        assert_eq!(bar_of(&Meter { used: 0, reserved: 0, limit: 0 }), (1, 1), "a $0 budget is used up, never an empty bar");
    }
}
