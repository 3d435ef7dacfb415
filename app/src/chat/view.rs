//! The chat tab: the deal's threads, the selected conversation, and the message box.

use leptos::prelude::*;

use super::api::{SendChatMessage, get_claude_status, get_thread, list_threads};
use super::{ChatMessage, ThreadSummary};
use crate::claude::Role;
use crate::claude::pricing::format_usd;
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

    Effect::new(move |_| {
        match send.value().get() {
            Some(Ok(result)) => {
                selected.set(Some(result.thread_id));
                dropped.set(result.dropped);
                in_flight.set(None);
            }
            Some(Err(_)) => in_flight.set(None),
            None => {}
        }
    });

    let submit = move || {
        let message = draft.get_untracked();
        if message.trim().is_empty() || send.pending().get_untracked() {
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
                        disabled=move || send.pending().get() || draft.with(|d| d.trim().is_empty())
                    >{move || if send.pending().get() { "Sending…" } else { "Send" }}</button>
                </form>
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
