//! The chat tab: the deal's threads, the selected conversation, and the message box.

use leptos::prelude::*;

use super::api::{SendChatMessage, get_claude_status, get_thread, list_threads};
use super::{ChatMessage, ThreadSummary, ThreadView};
use crate::budget::api::get_budget_status;
use crate::budget::{BudgetState, BudgetStatus, Meter, format_tokens, reservation_tokens};
use crate::claude::Role;
use crate::claude::estimate::corrected;
use crate::claude::history::{Turn, WindowError, build_window};
use crate::claude::pricing::{TokenUsage, cost_microusd, format_usd};
use crate::error::AppError;
use crate::layout::ErrorNotice;

#[component]
pub fn ChatTab(deal_id: i64) -> impl IntoView {
    let selected = RwSignal::new(None::<i64>);
    let draft = RwSignal::new(String::new());
    // The message on its way, shown until the reply arrives.
    let in_flight = RwSignal::new(None::<String>);
    let dropped = RwSignal::new(0usize);
    let send = ServerAction::<SendChatMessage>::new();
    let status = Resource::new(|| (), |_| get_claude_status());
    let threads = Resource::new(move || send.version().get(), move |_| list_threads(deal_id));
    let thread = Resource::new(
        move || (selected.get(), send.version().get()),
        |(selected, _)| async move {
            match selected {
                Some(id) => get_thread(id).await.map(Some),
                None => Ok(None),
            }
        },
    );

    let budget = Resource::new(move || send.version().get(), move |_| get_budget_status(deal_id));
    // The cooldown as a deadline (ms since the epoch) and a clock ticking towards it;
    // setting the deadline again is harmless, unlike a second countdown.
    let cooldown_until = RwSignal::new(0.0f64);
    let clock = RwSignal::new(0.0f64);
    Effect::new(move |_| {
        clock.set(js_sys::Date::now());
        if let Ok(ticker) = set_interval_with_handle(move || clock.set(js_sys::Date::now()), std::time::Duration::from_millis(200)) {
            on_cleanup(move || ticker.clear());
        }
    });
    let cooldown_left = Memo::new(move |_| ((cooldown_until.get() - clock.get()) / 1000.0).ceil().max(0.0) as u64);

    Effect::new(move |_| {
        match send.value().get() {
            Some(Ok(result)) => {
                selected.set(Some(result.thread_id));
                dropped.set(result.dropped);
                in_flight.set(None);
                let seconds = budget.get_untracked().and_then(Result::ok).map_or(2, |b| b.cooldown_seconds);
                let now = js_sys::Date::now();
                cooldown_until.set(now + seconds as f64 * 1000.0);
                clock.set(now);
            }
            Some(Err(_)) => in_flight.set(None),
            None => {}
        }
    });

    let blocked = move || budget.get().and_then(Result::ok).is_some_and(|b| b.deal_state == BudgetState::Blocked);
    let can_send = move || {
        !send.pending().get() && cooldown_left.get() == 0 && !blocked() && draft.with(|d| !d.trim().is_empty())
    };
    let submit = move || {
        let message = draft.get_untracked();
        if !can_send() {
            return;
        }
        in_flight.set(Some(message.clone()));
        draft.set(String::new());
        send.dispatch(SendChatMessage { deal_id, thread_id: selected.get_untracked(), message });
    };
    let pick = move |id: Option<i64>| {
        selected.set(id);
        dropped.set(0);
        send.clear();
    };

    view! {
        <div class="chat">
            <aside class="threads">
                <button type="button" class="button" on:click=move |_| pick(None)>"New conversation"</button>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match threads.await {
                            Err(error) => view! { <ErrorNotice error/> }.into_any(),
                            Ok(list) => view! { <ThreadList list selected on_pick=pick/> }.into_any(),
                        }
                    })}
                </Transition>
            </aside>
            <section class="conversation">
                <div class="conversation-head">
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            status.await.ok().map(|s| if s.offline {
                                view! { <span class="badge offline" title="No ANTHROPIC_API_KEY is set: replies are simulated">"offline model"</span> }.into_any()
                            } else {
                                view! { <span class="badge">{s.model}</span> }.into_any()
                            })
                        })}
                    </Transition>
                </div>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        budget.await.ok().map(|status| view! { <BudgetPanel status/> })
                    })}
                </Transition>
                <Show when=move || { dropped.get() > 0 }>
                    <p class="notice warn" data-testid="window-note">
                        {move || match dropped.get() {
                            1 => "1 earlier message was not sent to Claude (it is still saved here).".to_string(),
                            n => format!("{n} earlier messages were not sent to Claude (they are still saved here)."),
                        }}
                    </p>
                </Show>
                <div class="messages" data-testid="messages">
                    <Transition fallback=|| view! { <p class="muted">"Loading conversation…"</p> }>
                        {move || Suspend::new(async move {
                            match thread.await {
                                Err(error) => view! { <ErrorNotice error/> }.into_any(),
                                Ok(None) => view! {
                                    <Show when=move || in_flight.get().is_none()>
                                        <p class="muted empty">"Ask Claude anything about this deal: the cap rate, \
                                            the risks, how to price an offer. The deal's facts are sent with every question."</p>
                                    </Show>
                                }.into_any(),
                                Ok(Some(t)) => {
                                    let read_only = (!t.mine).then(|| t.author.clone());
                                    view! {
                                        {read_only.map(|author| view! {
                                            <p class="notice">"Read only: this conversation belongs to " {author} "."</p>
                                        })}
                                        {t.messages.into_iter().map(|m| view! { <MessageBubble message=m/> }).collect_view()}
                                    }.into_any()
                                }
                            }
                        })}
                    </Transition>
                    {move || in_flight.get().map(|text| view! {
                        <div class="message user pending-message"><div class="bubble">{text}</div></div>
                        <div class="message assistant"><div class="bubble thinking" data-testid="pending">"Claude is thinking…"</div></div>
                    })}
                </div>
                {move || send.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                <form class="composer" on:submit=move |ev| { ev.prevent_default(); submit(); }>
                    <textarea
                        name="message"
                        rows="3"
                        aria-label="Message"
                        placeholder="Ask about this deal… (Enter sends, Shift+Enter for a new line)"
                        prop:value=move || draft.get()
                        on:input=move |ev| draft.set(event_target_value(&ev))
                        on:keydown=move |ev| {
                            if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                                ev.prevent_default();
                                submit();
                            }
                        }
                    ></textarea>
                    <button
                        type="submit"
                        class="button primary"
                        data-testid="send"
                        disabled=move || !can_send()
                    >{move || match (send.pending().get(), cooldown_left.get()) {
                        (true, _) => "Sending…".to_string(),
                        (false, 0) => "Send".to_string(),
                        (false, n) => format!("Send ({n})"),
                    }}</button>
                </form>
                <p class="preflight muted small" data-testid="preflight">
                    {move || preflight(&draft.get(), || thread.get(), || budget.get())}
                </p>
            </section>
        </div>
    }
}

#[component]
fn ThreadList(list: Vec<ThreadSummary>, selected: RwSignal<Option<i64>>, on_pick: impl Fn(Option<i64>) + Copy + Send + Sync + 'static) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted">"No conversations yet."</p> }.into_any();
    }
    view! {
        <ul class="thread-list">
            {list.into_iter().map(|t| {
                let id = t.id;
                view! {
                    <li>
                        <button
                            type="button"
                            class="thread"
                            aria-current=move || (selected.get() == Some(id)).then_some("true")
                            on:click=move |_| on_pick(Some(id))
                        >
                            <span class="thread-title">{t.title}</span>
                            <span class="muted small">{t.updated_at} " · " {t.messages} " messages · " {t.author}</span>
                        </button>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn MessageBubble(message: ChatMessage) -> impl IntoView {
    let class = match message.role {
        Role::User => "message user",
        Role::Assistant => "message assistant",
    };
    let usage = message.usage.map(|u| {
        let cached = u.cache_creation_input_tokens + u.cache_read_input_tokens;
        format!(
            "{} in{} · {} out · {} · {}",
            u.input_tokens,
            if cached > 0 { format!(" (+{cached} cached)") } else { String::new() },
            u.output_tokens,
            format_usd(u.cost_microusd),
            u.model
        )
    });
    view! {
        <div class=class>
            <div class="bubble">{message.content}</div>
            <div class="meta muted small">{message.sent_at}{usage.map(|u| view! { " · " {u} })}</div>
        </div>
    }
}

/// The live estimate under the box, computed in the browser with the server's own
/// estimator and window: input tokens, cost, and the share of the remaining budgets.
fn preflight(
    draft: &str,
    thread: impl Fn() -> Option<Result<Option<ThreadView>, AppError>>,
    budget: impl Fn() -> Option<Result<BudgetStatus, AppError>>,
) -> String {
    if draft.trim().is_empty() {
        return String::new();
    }
    let Some(Ok(status)) = budget() else { return String::new() };
    let mut turns: Vec<Turn> = match thread() {
        Some(Ok(Some(view))) => view.messages.into_iter().map(|m| Turn { role: m.role, content: m.content }).collect(),
        _ => Vec::new(),
    };
    turns.push(Turn { role: Role::User, content: draft.to_string() });
    let window = match build_window(status.system_tokens, &turns, status.max_messages as usize, status.max_input_tokens) {
        Ok(window) => window,
        Err(WindowError::TooLong { estimated, limit }) => {
            return format!("Too long: about {} tokens, over the {}-token limit per call.", format_tokens(estimated), format_tokens(limit));
        }
        Err(WindowError::NoUserMessage) => return String::new(),
    };
    let input = corrected(window.estimated_input_tokens, status.calibration);
    let cost = cost_microusd(&TokenUsage { input_tokens: input, ..Default::default() }, &status.rates);
    let reserve = reservation_tokens(input, status.max_output_tokens);
    let share = |meter: &Meter| match meter.remaining() {
        0 => "none left".to_string(),
        left => format!("{:.1}%", reserve as f64 * 100.0 / left as f64),
    };
    let daily = status.daily.as_ref().map_or("no daily limit".to_string(), |d| format!("{} of your remaining daily budget", share(d)));
    format!(
        "≈ {} input tokens · ≈ {} · reserves up to {} tokens: {}, {} of the deal's",
        format_tokens(input),
        format_usd(cost),
        format_tokens(reserve),
        daily,
        share(&status.deal),
    )
}

#[component]
fn BudgetPanel(status: BudgetStatus) -> impl IntoView {
    let deal_pct = (status.deal.ratio() * 100.0).floor();
    let banner = match status.deal_state {
        BudgetState::Blocked => Some(view! {
            <p class="notice error" role="status" data-testid="deal-blocked">
                "This deal's token budget is used up: no more Claude calls for it. An admin can raise it."
            </p>
        }.into_any()),
        BudgetState::Warning => Some(view! {
            <p class="notice warn" role="status" data-testid="deal-warning">
                {format!("This deal has used {deal_pct}% of its {}-token budget.", format_tokens(status.deal.limit))}
            </p>
        }.into_any()),
        BudgetState::Ok => None,
    };
    let daily_out = status.daily.filter(|d| d.remaining() < u64::from(status.max_output_tokens)).map(|_| view! {
        <p class="notice error" role="status">{format!("You have reached your daily limit. It resets at {}.", status.daily_resets)}</p>
    });
    view! {
        <div class="meters">
            {match status.daily {
                Some(meter) => view! { <BudgetMeter label="Your budget today" meter warn_ratio=status.warn_ratio/> }.into_any(),
                None => view! { <div class="meter"><span class="meter-label">"Your budget today"</span><span class="muted small">"no daily limit (admin)"</span></div> }.into_any(),
            }}
            <BudgetMeter label="This deal" meter=status.deal warn_ratio=status.warn_ratio/>
        </div>
        {banner}
        {daily_out}
    }
}

#[component]
fn BudgetMeter(label: &'static str, meter: Meter, warn_ratio: f64) -> impl IntoView {
    let class = match meter.state(warn_ratio) {
        BudgetState::Ok => "meter",
        BudgetState::Warning => "meter warning",
        BudgetState::Blocked => "meter blocked",
    };
    view! {
        <div class=class data-testid=format!("meter-{}", if label == "This deal" { "deal" } else { "daily" })>
            <span class="meter-label">{label}</span>
            <progress max=meter.limit.to_string() value=meter.committed().min(meter.limit).to_string()></progress>
            <span class="small">{format!("{} / {} tokens", format_tokens(meter.committed()), format_tokens(meter.limit))}</span>
        </div>
    }
}
