//! Alerts on screen: an analyst's own list, and the admins' table with acknowledgement.

use leptos::prelude::*;

use super::AlertView;
use super::api::AcknowledgeAlert;

/// An analyst's alerts, newest first.
#[component]
pub fn AlertList(alerts: Vec<AlertView>) -> impl IntoView {
    if alerts.is_empty() {
        return view! { <p class="muted">"No alerts this month."</p> }.into_any();
    }
    view! {
        <ul class="alert-list" data-testid="my-alerts">
            {alerts.into_iter().map(|a| view! { <li><span class="muted small">{a.at}</span> " " {a.message}</li> }).collect_view()}
        </ul>
    }
    .into_any()
}

/// Every alert, with its webhook delivery and an Acknowledge button while unacknowledged.
#[component]
pub fn AlertsTable(alerts: Vec<AlertView>, acknowledge: ServerAction<AcknowledgeAlert>) -> impl IntoView {
    if alerts.is_empty() {
        return view! { <p class="muted">"No alerts yet."</p> }.into_any();
    }
    view! {
        <div class="table-scroll">
            <table class="table" data-testid="alerts">
                <thead><tr><th>"When (UTC)"</th><th>"Level"</th><th>"Alert"</th><th>"Webhook"</th><th>"Acknowledged"</th></tr></thead>
                <tbody>
                    {alerts.into_iter().map(|a| {
                        let id = a.id;
                        let class = if a.acknowledged.is_some() { "acknowledged" } else { "open" };
                        let delivery = a.delivery.map(|d| match (d.status.as_str(), d.last_error) {
                            ("pending", Some(error)) => format!("retrying ({} tries): {error}", d.attempts),
                            ("failed", error) => format!("failed after {} tries: {}", d.attempts, error.unwrap_or_default()),
                            (status, _) => status.to_string(),
                        });
                        view! {
                            <tr class=class data-testid="alert-row">
                                <td class="nowrap">{a.at}</td>
                                <td><span class=format!("badge level-{}", a.level.trim_end_matches('%'))>{a.level.replace('_', " ")}</span></td>
                                <td>{a.message}</td>
                                <td class="small">{delivery.unwrap_or_else(|| "—".into())}</td>
                                <td>{match a.acknowledged {
                                    Some((who, when)) => view! { <span class="small muted">{format!("{who}, {when}")}</span> }.into_any(),
                                    None => view! {
                                        <ActionForm action=acknowledge attr:class="inline">
                                            <input type="hidden" name="id" value=id/>
                                            <button type="submit" class="button">"Acknowledge"</button>
                                        </ActionForm>
                                    }.into_any(),
                                }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
