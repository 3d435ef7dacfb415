//! The chat tab: the deal's threads, the selected conversation, and the message box.

use leptos::prelude::*;

use super::api::{DeleteThread, RenameThread, SummariseThread, count_chat_tokens, get_chat_context, get_thread, list_threads, open_thread, pin_message, stop_chat_reply, stream_chat_message, title_thread};
use super::{CallPlan, ChatContext, ChatMessage, MAX_MESSAGE_CHARS, MIN_SUMMARY_SAVING_TOKENS, SUMMARY_MAX_TOKENS, SendEvent, SendResult, ThreadSummary, ThreadView, WindowTurn, plan_call, summary_prompt};
use crate::budget::{BudgetState, BudgetStatus, CallSize, describe_admission};
use crate::claude::Speaker;
use crate::claude::estimate::{corrected, estimate_request_tokens, estimate_text_tokens};
use crate::claude::history::{Turn, WindowError};
use crate::claude::pricing::{TokenUsage, cost_microusd};
use crate::error::{AppError, ErrorKind};
use crate::format::{format_tokens, format_usd};
use crate::ui::{ErrorNotice, copy_text};

/// The chat tab. Its resources are created here, once per deal (the deal page renders
/// this keyed by the deal id, outside any Suspense), and each is awaited in exactly one
/// `<Transition>`, through `Suspend`: a resource awaited by two boundaries can leave one
/// of them waiting for ever, and the page's stream with it. `budget` is the page's
/// latest budget status, known in the browser once it has hydrated; each reply bumps
/// `calls` so the page reads the budget again.
/// Which conversation the chat tab shows, kept by the deal page so it survives switching
/// tabs: the one in the page's address (`/deals/{id}/chat/{thread}`), else the
/// analyst's most recent one on the deal (`resume`), until they pick another or start a
/// new one.
#[derive(Clone, Copy)]
pub struct ChatSelection {
    thread: RwSignal<Option<i64>>,
    resume: RwSignal<bool>,
}

impl ChatSelection {
    pub fn new(from_address: Option<i64>) -> Self {
        ChatSelection { thread: RwSignal::new(from_address), resume: RwSignal::new(from_address.is_none()) }
    }
}

#[component]
pub fn ChatTab(deal_id: i64, budget: Signal<Option<BudgetStatus>>, calls: RwSignal<u64>, selection: ChatSelection) -> impl IntoView {
    let ChatSelection { thread: selected, resume } = selection;
    // The conversation deleted last, until it is restored or another is picked; after a
    // delete the tab shows a new conversation, not the next most recent one.
    let deleted = RwSignal::new(None::<(i64, String)>);
    Effect::new(move |_| {
        if deleted.with(Option::is_some) {
            resume.set(false);
        }
    });
    let send = Sender::new();
    // Bumped when a conversation is renamed, titled, deleted, restored, summarised or a
    // message is pinned.
    let changed = RwSignal::new(0u64);
    // Bumped when Claude retitles a conversation: only the list is read again (the open
    // conversation is not rendered anew under the analyst's cursor); `retitled` carries
    // the new title to the open conversation's heading.
    let listed = RwSignal::new(0u64);
    let retitled = RwSignal::new(None::<(i64, String)>);
    let search = RwSignal::new(String::new());
    let context = Resource::new(move || send.version().get(), move |_| get_chat_context(deal_id));
    let threads = Resource::new(
        move || (send.version().get(), changed.get(), listed.get(), search.get()),
        move |(_, _, _, search)| list_threads(deal_id, (!search.trim().is_empty()).then_some(search)),
    );
    let thread = Resource::new(
        move || (selected.get(), resume.get(), send.version().get(), changed.get()),
        move |(selected, resume, _, _)| async move {
            match (selected, resume) {
                (Some(id), _) => open_thread(deal_id, Some(id)).await,
                (None, true) => open_thread(deal_id, None).await,
                (None, false) => Ok(None),
            }
        },
    );
    // The conversation resumed becomes the selected one (in the browser, once loaded),
    // and the address always names the conversation shown, so a reload reopens it.
    Effect::new(move |_| {
        if let Some(Ok(Some(view))) = thread.get()
            && resume.get_untracked()
            && selected.get_untracked().is_none()
        {
            selected.set(Some(view.id));
        }
    });
    Effect::new(move |_| {
        let address = match selected.get() {
            Some(id) => format!("/deals/{deal_id}/chat/{id}"),
            None => format!("/deals/{deal_id}"),
        };
        replace_address(&address);
    });
    let composer = ComposerState::new(send, selected, context, calls, listed, retitled, changed);
    let pick = move |id: Option<i64>| {
        resume.set(false);
        deleted.set(None);
        selected.set(id);
        composer.dropped.set(0);
        send.clear();
    };

    let restore = ServerAction::<DeleteThread>::new();
    Effect::new(move |_| {
        if let Some(Ok(id)) = restore.value().get() {
            deleted.set(None);
            selected.set(Some(id));
            changed.update(|n| *n += 1);
        }
    });

    view! {
        <div class="chat">
            <aside class="threads">
                <button type="button" class="button" on:click=move |_| pick(None)>"New conversation"</button>
                <input
                    type="search"
                    class="thread-search"
                    aria-label="Search conversations"
                    placeholder="Search conversations"
                    maxlength=super::MAX_SEARCH_CHARS.to_string()
                    prop:value=move || search.get()
                    on:input=move |ev| search.set(event_target_value(&ev))
                />
                {move || deleted.get().map(|(id, title)| view! {
                    <p class="notice" role="status" data-testid="thread-deleted">
                        {format!("Deleted “{title}”. ")}
                        <button type="button" class="link-button" on:click=move |_| { restore.dispatch(DeleteThread { thread_id: id, restore: Some(true) }); }>"Undo"</button>
                    </p>
                })}
                {move || restore.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match threads.await {
                            Err(error) => view! { <ErrorNotice error/> }.into_any(),
                            Ok(list) if list.is_empty() && !search.with_untracked(|s| s.trim().is_empty()) => view! {
                                <p class="muted">{format!("No conversation mentions “{}”.", search.get_untracked().trim())}</p>
                            }.into_any(),
                            Ok(list) => view! { <ThreadList list selected on_pick=pick/> }.into_any(),
                        }
                    })}
                </Transition>
            </aside>
            <section class="conversation">
                <Transition fallback=|| view! { <p class="muted">"Loading conversation…"</p> }>
                    {move || Suspend::new(async move {
                        let context = context.await;
                        let thread = thread.await;
                        view! { <Conversation deal_id budget context thread composer deleted changed retitled/> }
                    })}
                </Transition>
            </section>
        </div>
    }
}

/// What a send carries.
#[derive(Clone, Debug)]
struct Outgoing {
    deal_id: i64,
    thread_id: Option<i64>,
    message: String,
    best_model: Option<bool>,
    from_message: Option<i64>,
}

/// A send whose reply streams in (`/api/chat/stream`): what a `ServerAction` offers —
/// pending, the last result, a version bumped when a send ends — and the reply as Claude
/// writes it, and the conversation it can be stopped through.
#[derive(Clone, Copy)]
struct Sender {
    pending: RwSignal<bool>,
    value: RwSignal<Option<Result<SendResult, AppError>>>,
    version: RwSignal<usize>,
    /// Claude's reply so far.
    streamed: RwSignal<String>,
    /// The conversation the reply streams in and the question it answers, once the
    /// message is stored.
    streaming_in: RwSignal<Option<(i64, i64)>>,
    stopping: RwSignal<bool>,
}

impl Sender {
    fn new() -> Self {
        Sender {
            pending: RwSignal::new(false),
            value: RwSignal::new(None),
            version: RwSignal::new(0),
            streamed: RwSignal::new(String::new()),
            streaming_in: RwSignal::new(None),
            stopping: RwSignal::new(false),
        }
    }

    fn pending(&self) -> RwSignal<bool> {
        self.pending
    }

    fn value(&self) -> RwSignal<Option<Result<SendResult, AppError>>> {
        self.value
    }

    fn version(&self) -> RwSignal<usize> {
        self.version
    }

    fn clear(&self) {
        self.value.set(None);
    }

    fn dispatch(&self, outgoing: Outgoing) {
        let this = *self;
        this.streamed.set(String::new());
        this.streaming_in.set(None);
        this.pending.set(true);
        leptos::task::spawn_local(async move {
            let result = this.run(outgoing).await;
            this.value.set(Some(result));
            this.version.update(|v| *v += 1);
            this.pending.set(false);
            this.stopping.set(false);
            this.streaming_in.set(None);
        });
    }

    /// Reads the send's events as they come: one JSON `SendEvent` per line.
    async fn run(self, o: Outgoing) -> Result<SendResult, AppError> {
        use futures::StreamExt;
        let stream = stream_chat_message(o.deal_id, o.thread_id, o.message, o.best_model, o.from_message).await?;
        let mut stream = std::pin::pin!(stream.into_inner());
        let mut buffer = String::new();
        let mut outcome = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(text) => buffer.push_str(&text),
                Err(error) => return Err(error),
            }
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                match serde_json::from_str::<SendEvent>(line.trim_end()) {
                    Ok(SendEvent::Started { thread_id, message_id }) => self.streaming_in.set(Some((thread_id, message_id))),
                    Ok(SendEvent::Delta { text }) => self.streamed.update(|s| s.push_str(&text)),
                    Ok(SendEvent::Done { result }) => outcome = Some(Ok(result)),
                    Ok(SendEvent::Failed { error }) => outcome = Some(Err(error)),
                    // A kind of event this page does not know yet.
                    Err(_) => {}
                }
            }
        }
        outcome.unwrap_or_else(|| {
            Err(AppError::new(ErrorKind::UpstreamError, "The reply was cut off on its way here. Reload the conversation to see what was saved."))
        })
    }

    /// Asks the server to stop the reply: what Claude wrote until then is kept.
    fn stop(&self) {
        if let Some((thread_id, message_id)) = self.streaming_in.get_untracked() {
            self.stopping.set(true);
            leptos::task::spawn_local(async move {
                if let Err(err) = stop_chat_reply(thread_id, message_id).await {
                    leptos::logging::warn!("could not stop the reply: {}", err.message);
                }
            });
        }
    }
}

/// What the message box keeps across re-renders of the conversation: the draft, the
/// message on its way, the cooldown clock.
#[derive(Clone, Copy)]
struct ComposerState {
    send: Sender,
    /// Bumped to read the conversation again (a summary, a pin), and the budget.
    changed: RwSignal<u64>,
    calls: RwSignal<u64>,
    selected: RwSignal<Option<i64>>,
    draft: RwSignal<String>,
    /// The message on its way, shown until the reply arrives.
    in_flight: RwSignal<Option<String>>,
    /// Stored messages the last call left out of its window.
    dropped: RwSignal<usize>,
    /// Seconds until the cooldown allows the next send.
    cooldown_left: Memo<u64>,
    /// Why the last reply was shorter than asked (a budget's last tokens), and which
    /// cheaper model answered it.
    limited: RwSignal<Option<String>>,
    model_note: RwSignal<Option<String>>,
    /// The message list follows the newest message unless the reader scrolled up.
    follow: RwSignal<bool>,
    /// The message box gets the focus back once the send is done.
    refocus: RwSignal<bool>,
    /// What screen readers are told when a reply arrives.
    announce: RwSignal<String>,
}

/// Margin on the browser's cooldown clock: the server counts from receiving the send,
/// a little after the browser sent it.
const COOLDOWN_SLACK_MS: f64 = 150.0;

impl ComposerState {
    fn new(
        send: Sender,
        selected: RwSignal<Option<i64>>,
        context: Resource<Result<ChatContext, AppError>>,
        calls: RwSignal<u64>,
        listed: RwSignal<u64>,
        retitled: RwSignal<Option<(i64, String)>>,
        changed: RwSignal<u64>,
    ) -> Self {
        let draft = RwSignal::new(String::new());
        let in_flight = RwSignal::new(None::<String>);
        let dropped = RwSignal::new(0usize);
        let limited = RwSignal::new(None::<String>);
        let model_note = RwSignal::new(None::<String>);
        // The cooldown as a deadline (ms since the epoch) and a clock ticking towards it;
        // setting the deadline again is harmless, unlike a second countdown. The server
        // claims the cooldown at the send, so it is counted from the send, not the reply.
        let cooldown_until = RwSignal::new(0.0f64);
        let clock = RwSignal::new(0.0f64);
        Effect::new(move |_| {
            clock.set(js_sys::Date::now());
            if let Ok(ticker) = set_interval_with_handle(move || clock.set(js_sys::Date::now()), std::time::Duration::from_millis(100)) {
                on_cleanup(move || ticker.clear());
            }
        });
        let cooldown_left = Memo::new(move |_| ((cooldown_until.get() - clock.get()) / 1000.0).ceil().max(0.0) as u64);
        // Each send may have used budget: the page reads it again.
        Effect::new(move |_| {
            if send.version().get() > 0 {
                calls.update(|n| *n += 1);
            }
        });
        // The cooldown starts at each send (see `submit`); effects run in the browser
        // only, after hydration: an untracked read of `context` here registers nothing
        // with any Suspense boundary.
        Effect::new(move |_| {
            if send.pending().get() {
                let seconds = context.get_untracked().and_then(Result::ok).map_or(2, |c| c.cooldown_seconds);
                let now = js_sys::Date::now();
                cooldown_until.set(now + seconds as f64 * 1000.0 + COOLDOWN_SLACK_MS);
                clock.set(now);
            }
        });
        let announce = RwSignal::new(String::new());
        Effect::new(move |_| match send.value().get() {
            Some(Ok(result)) => {
                selected.set(Some(result.thread_id));
                dropped.set(result.dropped);
                limited.set(result.limited);
                model_note.set(result.model_note);
                in_flight.set(None);
                announce.set(format!("Claude replied: {}", spoken(&result.reply.content)));
                // Claude titles the conversation when it is due; a failure only keeps
                // the old title. A title call spends budget: the page reads it again.
                let thread_id = result.thread_id;
                leptos::task::spawn_local(async move {
                    if let Ok(Some(title)) = title_thread(thread_id).await {
                        retitled.set(Some((thread_id, title)));
                        listed.update(|n| *n += 1);
                        calls.update(|n| *n += 1);
                    }
                });
            }
            Some(Err(_)) => {
                // A refused or failed send gives the analyst their text back (unless they
                // have started typing another).
                if let Some(message) = in_flight.get_untracked()
                    && draft.with_untracked(|d| d.trim().is_empty())
                {
                    draft.set(message);
                }
                in_flight.set(None);
            }
            None => {}
        });
        ComposerState {
            send,
            changed,
            calls,
            selected,
            draft,
            in_flight,
            dropped,
            cooldown_left,
            limited,
            model_note,
            follow: RwSignal::new(true),
            refocus: RwSignal::new(false),
            announce,
        }
    }
}

/// The selected conversation and the message box, rendered from loaded data (no
/// resources of its own).
#[component]
fn Conversation(
    deal_id: i64,
    budget: Signal<Option<BudgetStatus>>,
    context: Result<ChatContext, AppError>,
    thread: Result<Option<ThreadView>, AppError>,
    composer: ComposerState,
    deleted: RwSignal<Option<(i64, String)>>,
    changed: RwSignal<u64>,
    retitled: RwSignal<Option<(i64, String)>>,
) -> impl IntoView {
    let head = match &thread {
        Ok(Some(t)) if t.mine => Some(view! { <ThreadHead thread_id=t.id title=t.title.clone() selected=composer.selected deleted changed retitled/> }.into_any()),
        Ok(Some(t)) => Some(view! { <h3 class="thread-heading">{t.title.clone()}</h3> }.into_any()),
        _ => None,
    };
    let (thread_id, pins) = match &thread {
        Ok(Some(t)) if t.mine => (Some(t.id), Some(PinControl { thread_id: t.id, changed: composer.changed })),
        Ok(Some(t)) => (Some(t.id), None),
        _ => (None, None),
    };
    // What the next call would carry: the turns after the latest summary, the summary,
    // and the pinned messages (for the pre-flight, as the server plans the call).
    let (turns, summary, pinned) = match &thread {
        Ok(Some(view)) => {
            let after = view.summary.as_ref().map_or(i64::MIN, |s| s.summary_through);
            let turns: Vec<WindowTurn> = view
                .messages
                .iter()
                .filter(|m| !m.summary && m.id > after)
                .map(|m| WindowTurn { id: m.id, turn: Turn { role: m.role, content: m.content.clone() }, pinned: m.pinned })
                .collect();
            let pinned = view.pinned.iter().map(|m| (m.id, Turn { role: m.role, content: m.content.clone() })).collect();
            (turns, view.summary.as_ref().map(|s| s.content.clone()), pinned)
        }
        _ => (Vec::new(), None, Vec::new()),
    };
    let badge = context.as_ref().ok().map(|c| {
        if c.offline {
            view! { <span class="badge offline" title="No ANTHROPIC_API_KEY is set: replies are simulated">"offline model"</span> }.into_any()
        } else {
            view! { <span class="badge">{c.model.clone()}</span> }.into_any()
        }
    });
    let estimate_inputs = context.ok().map(|context| EstimateInputs { context, thread_id, turns, summary, pinned });
    let dropped = composer.dropped;
    view! {
        <div class="conversation-head">{head}{badge}</div>
        <Show when=move || { dropped.get() > 0 }>
            <p class="notice warn" data-testid="window-note">
                {move || match dropped.get() {
                    1 => "1 earlier message was not sent to Claude (it is still saved here).".to_string(),
                    n => format!("{n} earlier messages were not sent to Claude (they are still saved here)."),
                }}
            </p>
        </Show>
        <Messages thread in_flight=composer.in_flight streamed=composer.send.streamed follow=composer.follow pins/>
        <p class="sr-only" role="status" aria-live="polite">{move || composer.announce.get()}</p>
        {move || composer.limited.get().map(|text| view! { <p class="notice warn" role="status" data-testid="reply-limited">{text}</p> })}
        {move || composer.model_note.get().map(|text| view! { <p class="notice" role="status" data-testid="model-note">{text}</p> })}
        <Composer deal_id composer budget estimate_inputs/>
    }
}

/// The conversation's messages (a page of them, earlier ones on request) and the
/// message on its way.
#[component]
fn Messages(
    thread: Result<Option<ThreadView>, AppError>,
    in_flight: RwSignal<Option<String>>,
    streamed: RwSignal<String>,
    follow: RwSignal<bool>,
    pins: Option<PinControl>,
) -> impl IntoView {
    // Scrolled to the newest message when shown and when a send starts, unless the
    // reader has scrolled up to read earlier ones.
    let list = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        in_flight.track();
        streamed.track();
        if let Some(el) = list.get()
            && follow.get_untracked()
        {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = list.get_untracked() {
            follow.set(el.scroll_top() + el.client_height() >= el.scroll_height() - 40);
        }
    };
    let messages = match thread {
        Err(error) => view! { <ErrorNotice error/> }.into_any(),
        Ok(None) => view! {
            <Show when=move || in_flight.get().is_none()>
                <p class="muted empty">"Ask Claude anything about this deal: the cap rate, \
                    the risks, how to price an offer. The deal's facts are sent with every question."</p>
            </Show>
        }
        .into_any(),
        Ok(Some(t)) => {
            let read_only = (!t.mine).then(|| t.author.clone());
            view! {
                {read_only.map(|author| view! {
                    <p class="notice">"Read only: this conversation belongs to " {author} "."</p>
                })}
                <EarlierMessages thread_id=t.id oldest=t.messages.first().map(|m| m.id) has_earlier=t.has_earlier pins/>
                {t.messages.into_iter().map(|m| view! { <MessageBubble message=m pins/> }.into_any()).collect_view()}
            }
            .into_any()
        }
    };
    view! {
        <div class="messages" data-testid="messages" node_ref=list on:scroll=on_scroll>
            {messages}
            {move || in_flight.get().map(|text| view! {
                <div class="message user pending-message"><div class="bubble">{text}</div></div>
                // Not `.assistant` until stored: only saved replies count as replies.
                <div class="message pending-reply" data-testid="pending-reply">
                    // The reply as Claude writes it (plain text until it is whole, then
                    // shown rendered from what the server stored).
                    {move || streamed.with(String::is_empty).then(|| view! {
                        <div class="bubble thinking" data-testid="pending">"Claude is thinking…"</div>
                    })}
                    <Show when=move || !streamed.with(String::is_empty)>
                        <div class="bubble streaming" data-testid="streaming">{move || streamed.get()}</div>
                    </Show>
                </div>
            }.into_any())}
        </div>
    }
}

/// The message box: Enter sends (Shift+Enter is a new line), Send waits for the reply
/// and the cooldown, and the pre-flight estimate follows the draft.
#[component]
fn Composer(
    deal_id: i64,
    composer: ComposerState,
    budget: Signal<Option<BudgetStatus>>,
    estimate_inputs: Option<EstimateInputs>,
) -> impl IntoView {
    let ComposerState { send, selected, draft, in_flight, cooldown_left, refocus, changed, calls, .. } = composer;
    // The box takes the focus back when a send is done (this component is rendered
    // again with the conversation, so the effect also runs on its new element).
    let message_box = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = message_box.get()
            && !send.pending().get()
            && refocus.get_untracked()
        {
            refocus.set(false);
            let _ = el.focus();
        }
    });
    let estimate_inputs = StoredValue::new(estimate_inputs);
    // Asks for the best model for the next send only.
    let best = RwSignal::new(false);
    // Older turns the analyst may leave out of the next send, and whether they do.
    let saving = Memo::new(move |_| {
        let draft = draft.get();
        estimate_inputs.with_value(|inputs| inputs.as_ref().and_then(|i| leave_out_suggestion(&draft, i)))
    });
    // Or summarise the conversation so far and continue from the summary.
    let summary_offer = Memo::new(move |_| {
        let draft = draft.get();
        estimate_inputs.with_value(|inputs| inputs.as_ref().and_then(|i| summary_suggestion(&draft, i)))
    });
    let summarise = ServerAction::<SummariseThread>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = summarise.value().get() {
            changed.update(|n| *n += 1);
            calls.update(|n| *n += 1);
        }
    });
    let leave_out = RwSignal::new(false);
    // The pre-flight of the draft: its estimate, and whether every budget can take it.
    let plan = Memo::new(move |_| {
        let draft = draft.get();
        let best = best.get();
        let skip = if leave_out.get() { saving.with(|s| s.as_ref().map_or(0, |s| s.from_index)) } else { 0 };
        budget.with(|status| {
            estimate_inputs.with_value(|inputs| status.as_ref().zip(inputs.as_ref()).and_then(|(status, i)| preflight(&draft, i, skip, status, best)))
        })
    });
    // Claude's exact count of the draft as it would be sent, when an API key is
    // configured: asked once the analyst has stopped typing for COUNT_AFTER_MS, and shown
    // only while the draft, the conversation (as of its last reply, summary or pin) and
    // the left-out messages are the ones counted.
    let online = estimate_inputs.with_value(|inputs| inputs.as_ref().is_some_and(|i| !i.context.offline));
    let counting = Memo::new(move |_| CountKey {
        draft: draft.get(),
        thread_id: selected.get(),
        revision: (send.version().get(), changed.get()),
        from_message: if leave_out.get() { saving.with(|s| s.as_ref().map(|s| s.from_id)) } else { None },
    });
    let exact = RwSignal::new(None::<(CountKey, u64)>);
    Effect::new(move |_| {
        let key = counting.get();
        let countable = online && !key.draft.trim().is_empty() && key.draft.chars().count() <= MAX_MESSAGE_CHARS;
        if !countable || exact.with_untracked(|e| e.as_ref().is_some_and(|(counted, _)| *counted == key)) {
            return;
        }
        let asked = set_timeout_with_handle(
            move || {
                leptos::task::spawn_local(async move {
                    let CountKey { draft, thread_id, from_message, .. } = key.clone();
                    // A failed count leaves the estimate alone: it is only a refinement.
                    // One that comes back after the draft moved on, or after this box was
                    // rendered anew (another conversation, a pin), is dropped.
                    if let Ok(Some(tokens)) = count_chat_tokens(deal_id, thread_id, draft, from_message).await
                        && counting.try_with_untracked(|now| *now == key) == Some(true)
                    {
                        exact.try_set(Some((key, tokens)));
                    }
                });
            },
            std::time::Duration::from_millis(COUNT_AFTER_MS),
        );
        // Not asked at all if the draft changes, or the box goes, before it rests.
        if let Ok(handle) = asked {
            on_cleanup(move || handle.clear());
        }
    });
    let exact_line = move || exact.with(|e| e.as_ref().and_then(|(key, tokens)| counting.with(|now| exact_count_line(key, now, *tokens))));
    let blocked = move || {
        budget.with(|b| b.as_ref().is_some_and(|b| b.deal_state == BudgetState::Blocked)) || plan.with(|p| p.as_ref().is_some_and(|p| !p.sendable))
    };
    let chars = Memo::new(move |_| draft.with(|d| d.chars().count()));
    let too_long = move || chars.get() > MAX_MESSAGE_CHARS;
    let can_send = move || !send.pending().get() && cooldown_left.get() == 0 && !blocked() && !too_long() && draft.with(|d| !d.trim().is_empty());
    let submit = move || {
        if !can_send() {
            return;
        }
        let message = draft.get_untracked();
        // Read before the draft is cleared (the suggestion follows the draft).
        let from_message = if leave_out.get_untracked() { saving.with_untracked(|s| s.as_ref().map(|s| s.from_id)) } else { None };
        in_flight.set(Some(message.clone()));
        draft.set(String::new());
        refocus.set(true);
        let best_model = best.get_untracked().then_some(true);
        best.set(false);
        leave_out.set(false);
        send.dispatch(Outgoing { deal_id, thread_id: selected.get_untracked(), message, best_model, from_message });
    };
    view! {
        {move || send.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); submit(); }>
            <textarea
                node_ref=message_box
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
            <Show when=move || send.pending().get()>
                <button type="button" class="button" data-testid="stop"
                    title="Stop the reply here: what Claude has written is kept, and only that is billed"
                    disabled=move || send.streaming_in.get().is_none() || send.stopping.get()
                    on:click=move |_| send.stop()
                >{move || if send.stopping.get() { "Stopping…" } else { "Stop" }}</button>
            </Show>
        </form>
        // The length, once the draft nears the most one message may hold.
        {move || (chars.get() * 10 > MAX_MESSAGE_CHARS * 9).then(|| view! {
            <p class=move || if too_long() { "char-count small over" } else { "char-count small muted" } data-testid="char-count" aria-live="polite">
                {move || {
                    let (n, most) = (format_tokens(chars.get() as u64), format_tokens(MAX_MESSAGE_CHARS as u64));
                    if too_long() { format!("{n} / {most} characters: too long to send; shorten it.") } else { format!("{n} / {most} characters") }
                }}
            </p>
        })}
        <p class="preflight muted small" data-testid="preflight">{move || plan.with(|p| p.as_ref().map(|p| p.text.clone()))}</p>
        {move || exact_line().map(|line| view! { <p class="preflight muted small" data-testid="preflight-exact">{line}</p> })}
        {move || saving.get().map(|s| view! {
            <p class="saving small" data-testid="leave-out">
                {format!(
                    "The {} oldest messages sent with this one cost about {} tokens. ",
                    s.count, format_tokens(s.tokens)
                )}
                <label>
                    <input type="checkbox" prop:checked=move || leave_out.get() on:change=move |ev| leave_out.set(event_target_checked(&ev))/>
                    " Leave them out of this send"
                </label>
            </p>
        }.into_any())}
        {move || summary_offer.get().map(|offer| view! {
            <p class="saving small" data-testid="summarise-offer">
                {format!(
                    "The {} earlier messages sent with this one cost about {} tokens. Summarise the conversation so far \
                     (one call, about {} tokens, ≤ {}) and continue from the summary. ",
                    offer.messages, format_tokens(offer.earlier_tokens), format_tokens(offer.call_tokens), format_usd(offer.most_microusd as i64)
                )}
                <button type="button" class="button small" data-testid="summarise"
                    disabled=move || summarise.pending().get() || send.pending().get()
                    on:click=move |_| { summarise.dispatch(SummariseThread { thread_id: offer.thread_id }); }
                >{move || if summarise.pending().get() { "Summarising…" } else { "Summarise" }}</button>
            </p>
        }.into_any())}
        {move || summarise.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error/> })}
        {move || plan.with(|p| p.as_ref().and_then(|p| p.model_line.clone().map(|line| (line, p.upgrade_to.clone())))).map(|(line, upgrade)| view! {
            <p class="model-line small" data-testid="model-choice">
                {line}
                {upgrade.map(|model| view! {
                    " "
                    <label class="upgrade">
                        <input type="checkbox" data-testid="best-model" prop:checked=move || best.get() on:change=move |ev| best.set(event_target_checked(&ev))/>
                        {format!(" Use {model} for this send")}
                    </label>
                })}
            </p>
        })}
    }
}

/// The open conversation's title, with Rename (in place) and Delete (undone from the list).
#[component]
fn ThreadHead(
    thread_id: i64,
    title: String,
    selected: RwSignal<Option<i64>>,
    deleted: RwSignal<Option<(i64, String)>>,
    changed: RwSignal<u64>,
    retitled: RwSignal<Option<(i64, String)>>,
) -> impl IntoView {
    let renaming = RwSignal::new(false);
    let rename = ServerAction::<RenameThread>::new();
    let delete = ServerAction::<DeleteThread>::new();
    let typed = RwSignal::new(title.clone());
    let loaded = StoredValue::new(title);
    // The title as loaded, or as Claude has since rewritten it.
    let title = move || retitled.with(|r| r.as_ref().filter(|(id, _)| *id == thread_id).map(|(_, t)| t.clone())).unwrap_or_else(|| loaded.get_value());
    Effect::new(move |_| {
        if let Some(Ok(_)) = rename.value().get() {
            renaming.set(false);
            retitled.set(None);
            changed.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = delete.value().get() {
            deleted.set(Some((id, title())));
            selected.set(None);
            changed.update(|n| *n += 1);
        }
    });
    view! {
        <div class="thread-head">
            {move || if renaming.get() {
                view! {
                    <form class="rename" on:submit=move |ev| {
                        ev.prevent_default();
                        rename.dispatch(RenameThread { thread_id, title: typed.get_untracked() });
                    }>
                        <input aria-label="Conversation title" maxlength=super::MAX_TITLE_CHARS.to_string()
                            prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev))/>
                        <button type="submit" class="button primary" disabled=move || rename.pending().get()>"Save title"</button>
                        <button type="button" class="button" on:click=move |_| renaming.set(false)>"Cancel"</button>
                    </form>
                }.into_any()
            } else {
                view! {
                    <h3 class="thread-heading" data-testid="thread-title">{title}</h3>
                    <button type="button" class="link-button" on:click=move |_| { typed.set(title()); renaming.set(true); }>"Rename"</button>
                    <button type="button" class="link-button" on:click=move |_| { delete.dispatch(DeleteThread { thread_id, restore: None }); }>"Delete"</button>
                }.into_any()
            }}
            {move || rename.value().get().and_then(Result::err).or_else(|| delete.value().get().and_then(Result::err)).map(|error| view! { <ErrorNotice error/> })}
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

/// Older pages of a long conversation, loaded on request above the newest page.
#[component]
fn EarlierMessages(thread_id: i64, oldest: Option<i64>, has_earlier: bool, pins: Option<PinControl>) -> impl IntoView {
    let earlier = RwSignal::new(Vec::<ChatMessage>::new());
    let more = RwSignal::new(has_earlier);
    let oldest = RwSignal::new(oldest);
    let failed = RwSignal::new(None::<AppError>);
    let load = move |_| {
        let Some(before) = oldest.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            match get_thread(thread_id, Some(before), None).await {
                Ok(page) => {
                    oldest.set(page.messages.first().map(|m| m.id));
                    more.set(page.has_earlier);
                    earlier.update(|shown| {
                        let mut page = page.messages;
                        page.append(shown);
                        *shown = page;
                    });
                }
                Err(error) => failed.set(Some(error)),
            }
        });
    };
    view! {
        <Show when=move || more.get()>
            <button type="button" class="link-button" on:click=load>"Show earlier messages"</button>
        </Show>
        {move || failed.get().map(|error| view! { <ErrorNotice error/> })}
        {move || earlier.get().into_iter().map(|m| view! { <MessageBubble message=m pins/> }.into_any()).collect_view()}
    }
    .into_any()
}

/// Pinning, for the author of the open conversation: reads it again once done.
#[derive(Clone, Copy)]
struct PinControl {
    thread_id: i64,
    changed: RwSignal<u64>,
}

#[component]
fn MessageBubble(message: ChatMessage, pins: Option<PinControl>) -> impl IntoView {
    let class = match (message.summary, message.role) {
        (true, _) => "message summary",
        (false, Speaker::User) => "message user",
        (false, Speaker::Assistant) => "message assistant",
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
    let copied = RwSignal::new(None::<String>);
    let content = StoredValue::new(message.content.clone());
    // A very long message shows its start until the reader asks for the rest.
    let long = is_long(&message.content);
    let expanded = RwSignal::new(false);
    let collapsed = move || long && !expanded.get();
    let bubble = match message.html {
        // Sanitised on the server (crate::markdown): raw HTML and unsafe links removed.
        Some(html) => view! {
            <div class="bubble markdown" class:collapsed=collapsed data-testid="reply" inner_html=html></div>
        }.into_any(),
        None => view! { <div class="bubble" class:collapsed=collapsed>{message.content}</div> }.into_any(),
    };
    let is_reply = message.role == Speaker::Assistant;
    let heading = message.summary.then(|| view! {
        <p class="summary-head small" data-testid="summary">
            <strong>"Summary of the conversation so far."</strong>
            " Claude continues from it: the messages above are no longer sent."
        </p>
    }.into_any());
    let (id, pinned) = (message.id, message.pinned);
    let pin_failed = RwSignal::new(None::<AppError>);
    let pin = pins.filter(|_| !message.summary).map(|control| {
        let toggle = move |_| {
            leptos::task::spawn_local(async move {
                match pin_message(control.thread_id, id, !pinned).await {
                    Ok(()) => control.changed.update(|n| *n += 1),
                    Err(error) => pin_failed.set(Some(error)),
                }
            });
        };
        view! {
            " · "
            <button type="button" class="link-button" data-testid="pin" aria-pressed=pinned.to_string()
                title="A pinned message is sent with every later message of this conversation"
                on:click=toggle>{if pinned { "Unpin" } else { "Pin" }}</button>
        }.into_any()
    });
    view! {
        <div class=class class:pinned=pinned>
            {heading}
            {bubble}
            {long.then(|| view! {
                <button type="button" class="link-button show-more" aria-expanded=move || expanded.get().to_string()
                    on:click=move |_| expanded.update(|e| *e = !*e)>
                    {move || if expanded.get() { "Show less" } else { "Show more" }}
                </button>
            }.into_any())}
            <div class="meta muted small">
                {message.sent_at}{usage.map(|u| view! { " · " {u} })}
                {message.stopped.then(|| view! { " · " <span class="badge stopped" data-testid="stopped">"Stopped"</span> }.into_any())}
                {pinned.then(|| view! { " · " <span class="badge pinned" data-testid="pinned">"Pinned"</span> }.into_any())}
                {is_reply.then(|| view! {
                    " · "
                    <button type="button" class="link-button" on:click=move |_| copy_text(content.get_value(), "Copied.", copied)>"Copy"</button>
                    <span role="status">{move || copied.get().map(|s| format!(" {s}"))}</span>
                }.into_any())}
                {pin}
            </div>
            {move || pin_failed.get().map(|error| view! { <ErrorNotice error/> })}
        </div>
    }
    .into_any()
}

/// Shows `address` in the browser's address bar without navigating (the router keeps its
/// own location; a reload of the new address renders the same page).
fn replace_address(address: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let same = web_sys::window().and_then(|w| w.location().pathname().ok()).is_some_and(|p| p == address);
        if !same {
            let state = history.state().unwrap_or(wasm_bindgen::JsValue::NULL);
            let _ = history.replace_state_with_url(&state, "", Some(address));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = address;
}

/// A reply as a screen reader should hear it: Markdown's marks dropped, at most 300
/// characters (the reply itself is on the page).
fn spoken(markdown: &str) -> String {
    let plain: String = markdown.chars().filter(|c| !matches!(c, '*' | '#' | '|' | '`' | '_' | '>')).collect();
    let plain = plain.split_whitespace().filter(|w| !w.chars().all(|c| c == '-' || c == ':')).collect::<Vec<_>>().join(" ");
    if plain.chars().count() > 300 { format!("{}…", plain.chars().take(300).collect::<String>()) } else { plain }
}

/// Messages longer than this many characters or lines start collapsed.
const LONG_MESSAGE_CHARS: usize = 1_500;
const LONG_MESSAGE_LINES: usize = 24;

fn is_long(text: &str) -> bool {
    text.lines().count() > LONG_MESSAGE_LINES || text.chars().count() > LONG_MESSAGE_CHARS
}

/// What the pre-flight estimates from: the chat context, and what the next call of the
/// open conversation would carry — its turns after the latest summary, the summary, and
/// its pinned messages (id and turn).
struct EstimateInputs {
    context: ChatContext,
    thread_id: Option<i64>,
    turns: Vec<WindowTurn>,
    summary: Option<String>,
    pinned: Vec<(i64, Turn)>,
}

impl EstimateInputs {
    /// The call `draft` would make, leaving out the first `skip` turns, planned as the
    /// server plans it: the newest turns one window can hold, and the pinned messages
    /// before them.
    fn plan(&self, draft: &str, skip: usize) -> Result<CallPlan, WindowError> {
        let c = &self.context;
        let after = &self.turns[skip.min(self.turns.len())..];
        let read = &after[after.len().saturating_sub((c.max_messages as usize).saturating_sub(1))..];
        let first = read.first().map_or(i64::MAX, |t| t.id);
        let older: Vec<Turn> = self.pinned.iter().filter(|(id, _)| *id < first).map(|(_, t)| t.clone()).collect();
        let mut turns = read.to_vec();
        turns.push(WindowTurn { id: i64::MAX, turn: Turn { role: Speaker::User, content: draft.to_string() }, pinned: false });
        plan_call(c.system_tokens, self.summary.as_deref(), &older, &turns, c.max_messages as usize, c.max_input_tokens)
    }
}

/// Older turns the next send could leave out: all the window would send before the last
/// exchange, when they are at least `MIN_SAVING_TOKENS`.
#[derive(Clone, Debug, PartialEq)]
struct LeaveOut {
    /// How many stored messages, and about how many tokens.
    count: usize,
    tokens: u64,
    /// The first message kept (a user turn) and its place among the turns.
    from_id: i64,
    from_index: usize,
}

/// Least saving worth suggesting, in tokens.
const MIN_SAVING_TOKENS: u64 = 300;

fn leave_out_suggestion(draft: &str, inputs: &EstimateInputs) -> Option<LeaveOut> {
    if draft.trim().is_empty() {
        return None;
    }
    let turns = &inputs.turns;
    let window = inputs.plan(draft, 0).ok()?.window;
    // The window sends the newest turns; keep only the last exchange (from its user
    // turn on).
    let read_from = turns.len().saturating_sub((inputs.context.max_messages as usize).saturating_sub(1));
    let start = (read_from + window.dropped).min(turns.len());
    let keep_from = turns.iter().rposition(|t| t.turn.role == Speaker::User)?;
    if keep_from <= start {
        return None;
    }
    let tokens: u64 = turns[start..keep_from].iter().map(|t| estimate_text_tokens(&t.turn.content)).sum();
    (tokens >= MIN_SAVING_TOKENS).then(|| LeaveOut { count: keep_from - start, tokens, from_id: turns[keep_from].id, from_index: keep_from })
}

/// The offer to summarise the conversation: when the earlier turns the next send would
/// carry cost at least `MIN_SUMMARY_SAVING_TOKENS`, one summary call (its estimate, and
/// the most it may cost) replaces them from then on.
#[derive(Clone, Debug, PartialEq)]
struct SummaryOffer {
    thread_id: i64,
    messages: usize,
    earlier_tokens: u64,
    call_tokens: u64,
    most_microusd: u64,
}

fn summary_suggestion(draft: &str, inputs: &EstimateInputs) -> Option<SummaryOffer> {
    let thread_id = inputs.thread_id?;
    if draft.trim().is_empty() || inputs.turns.len() < 2 {
        return None;
    }
    let window = inputs.plan(draft, 0).ok()?.window;
    let earlier = &window.messages[..window.messages.len().saturating_sub(1)];
    let earlier_tokens: u64 = earlier.iter().map(|t| estimate_text_tokens(&t.content)).sum();
    if earlier_tokens < MIN_SUMMARY_SAVING_TOKENS {
        return None;
    }
    // The summary call reads the turns since the last summary (the deal's name, not
    // known here, is a few tokens).
    let turns: Vec<Turn> = inputs.turns.iter().map(|t| t.turn.clone()).collect();
    let (system, transcript) = summary_prompt("", inputs.summary.as_deref(), &turns);
    let call_tokens = estimate_request_tokens(&system, [transcript.as_str()]);
    let c = &inputs.context;
    let input = corrected(call_tokens, c.calibration).max(call_tokens);
    let most = cost_microusd(&TokenUsage { input_tokens: input, output_tokens: u64::from(SUMMARY_MAX_TOKENS), ..Default::default() }, &c.rates).max(0) as u64;
    Some(SummaryOffer { thread_id, messages: earlier.len(), earlier_tokens, call_tokens: input, most_microusd: most })
}

/// The pre-flight of a draft: what the box shows under it, whether it can be sent, and
/// with budget-aware model choice which model answers and the better one it may ask for.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    text: String,
    sendable: bool,
    /// "Answered by claude-sonnet-5-5: your monthly budget has 45% left."
    model_line: Option<String>,
    /// The best tier, when a cheaper one answers (the analyst may ask for it once).
    upgrade_to: Option<String>,
}

/// How long the draft must rest before Claude is asked to count it.
const COUNT_AFTER_MS: u64 = 700;

/// What Claude's count was asked for: the draft, its conversation and that
/// conversation's revision (replies; summaries and pins), and where its window starts. A
/// count is shown only while all of them are unchanged.
#[derive(Clone, Debug, PartialEq)]
struct CountKey {
    draft: String,
    thread_id: Option<i64>,
    revision: (usize, u64),
    from_message: Option<i64>,
}

/// The line under the estimate with Claude's exact count, while it still counts `now`.
fn exact_count_line(counted: &CountKey, now: &CountKey, tokens: u64) -> Option<String> {
    (counted == now).then(|| format!("Claude counts exactly {} tokens of input for this send.", format_tokens(tokens)))
}

/// The live estimate under the box, computed in the browser with the server's own
/// estimator, window, prices, budget rules and model choice: input tokens, cost, the
/// share of each remaining budget the call reserves — or why it cannot be sent now. None
/// for an empty draft. `best`: the analyst asks for the best model for this send.
fn preflight(draft: &str, inputs: &EstimateInputs, skip: usize, status: &BudgetStatus, best: bool) -> Option<Plan> {
    if draft.trim().is_empty() {
        return None;
    }
    let context = &inputs.context;
    let (window, context_tokens) = match inputs.plan(draft, skip) {
        Ok(plan) => (plan.window, plan.context_tokens),
        Err(WindowError::TooLong { estimated, limit }) => {
            let text = format!("Too long: about {} tokens, over the {}-token limit per call.", format_tokens(estimated), format_tokens(limit));
            return Some(Plan { text, sendable: false, model_line: None, upgrade_to: None });
        }
        Err(WindowError::NoUserMessage) => return None,
    };
    let input = corrected(window.estimated_input_tokens, context.calibration).max(window.estimated_input_tokens);
    let call_at = |rates: &crate::claude::pricing::Rates| {
        let input_cost = cost_microusd(&TokenUsage { input_tokens: input, ..Default::default() }, rates).max(0) as u64;
        CallSize { input_tokens: input, output_tokens: u64::from(context.max_output_tokens), input_microusd: input_cost, output_rate: rates.output }
    };
    // As the gateway decides: the tier the budgets allow (the best on request), then each
    // cheaper one before refusing.
    let (call, admitted, model_line, upgrade_to) = match &status.model_choice {
        None => {
            let call = call_at(&context.rates);
            (call, status.admits(&call), None, None)
        }
        Some(choice) => {
            let (tier, deciding) = choice.pick(&status.limits);
            let rates_of = |model: &str| context.tier_rates.iter().find(|(m, _)| m == model).map_or(context.rates, |(_, r)| *r);
            let first = if best { 0 } else { tier.min(choice.tiers.len().saturating_sub(1)) };
            let last = if best { 0 } else { choice.tiers.len().saturating_sub(1) };
            let mut tried = (first, call_at(&rates_of(&choice.tiers[first])));
            let mut admitted = status.admits(&tried.1);
            for i in first + 1..=last {
                if admitted.is_ok() {
                    break;
                }
                let call = call_at(&rates_of(&choice.tiers[i]));
                if let Ok(a) = status.admits(&call) {
                    tried = (i, call);
                    admitted = Ok(a);
                }
            }
            let (index, call) = tried;
            let why = match (best, deciding) {
                (true, _) => "your choice for this send".to_string(),
                (false, Some(kind)) => {
                    let left = status.limit(kind).map_or(0.0, |l| if l.meter.limit == 0 { 0.0 } else { l.meter.remaining() as f64 / l.meter.limit as f64 });
                    format!("{} has {:.0}% left", kind.describe(), left * 100.0)
                }
                (false, None) => "no budget limits this call".to_string(),
            };
            let line = format!("Answered by {}: {why}.", choice.tiers[index]);
            (call, admitted, Some(line), (index > 0 || best).then(|| choice.tiers[0].clone()))
        }
    };
    // Where the input goes: the deal's facts, the summary and pinned messages, the
    // earlier turns sent, the new message. (Each message's framing counts with the new one.)
    let sent_turns = window.messages.len().saturating_sub(1);
    let earlier: u64 = window.messages[..sent_turns].iter().map(|t| estimate_text_tokens(&t.content)).sum();
    let message = window.estimated_input_tokens.saturating_sub(context.system_tokens + context_tokens + earlier);
    let carried = match (inputs.summary.is_some(), context_tokens) {
        (_, 0) => String::new(),
        (true, n) => format!(" · summary and pinned {}", format_tokens(n)),
        (false, n) => format!(" · pinned {}", format_tokens(n)),
    };
    let estimate = format!(
        "≈ {} input tokens (deal facts {}{carried} · {} earlier {} {} · this message {}) · ≈ {}",
        format_tokens(input),
        format_tokens(context.system_tokens),
        sent_turns,
        if sent_turns == 1 { "turn" } else { "turns" },
        format_tokens(earlier),
        format_tokens(message),
        format_usd(call.input_microusd as i64)
    );
    let (text, sendable) = describe_admission(&estimate, "sent", &call, admitted, status);
    Some(Plan { text, sendable, model_line, upgrade_to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_s_count_is_shown_only_for_the_draft_it_counted() {
        let counted = CountKey { draft: "What is the cap rate?".into(), thread_id: Some(4), revision: (2, 0), from_message: None };
        let line = exact_count_line(&counted, &counted.clone(), 1234).unwrap();
        assert_eq!(line, "Claude counts exactly 1,234 tokens of input for this send.");
        let typed_on = CountKey { draft: "What is the cap rate? And".into(), ..counted.clone() };
        let other_thread = CountKey { thread_id: None, ..counted.clone() };
        let left_out = CountKey { from_message: Some(9), ..counted.clone() };
        let replied_since = CountKey { revision: (3, 0), ..counted.clone() };
        let summarised_since = CountKey { revision: (2, 1), ..counted.clone() };
        for now in [typed_on, other_thread, left_out, replied_since, summarised_since] {
            assert_eq!(exact_count_line(&counted, &now, 1234), None, "{now:?}");
        }
    }

    fn context() -> ChatContext {
        ChatContext {
            offline: true,
            model: "m".into(),
            system_tokens: 150,
            max_messages: 20,
            max_input_tokens: 100_000,
            max_output_tokens: 1024,
            calibration: 1.0,
            rates: Default::default(),
            tier_rates: Vec::new(),
            cooldown_seconds: 2,
        }
    }

    /// A conversation of turns of these many words, ids from 100.
    fn inputs(lengths: &[usize]) -> EstimateInputs {
        let turns = lengths
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let role = if i % 2 == 0 { Speaker::User } else { Speaker::Assistant };
                WindowTurn { id: 100 + i as i64, turn: Turn { role, content: "word ".repeat(*n) }, pinned: false }
            })
            .collect();
        EstimateInputs { context: context(), thread_id: Some(7), turns, summary: None, pinned: Vec::new() }
    }

    #[test]
    fn older_turns_worth_leaving_out_are_suggested_up_to_the_last_exchange() {
        let long = inputs(&[400, 400, 400, 400, 20, 20]);
        let s = leave_out_suggestion("next?", &long).expect("a saving");
        assert_eq!((s.count, s.from_index, s.from_id), (4, 4, 104));
        let expected: u64 = long.turns[..4].iter().map(|t| estimate_text_tokens(&t.turn.content)).sum();
        assert_eq!(s.tokens, expected);
        // Short history, a single exchange, or an empty draft: nothing to suggest.
        assert_eq!(leave_out_suggestion("next?", &inputs(&[20, 20, 20, 20])), None);
        assert_eq!(leave_out_suggestion("next?", &inputs(&[900, 900])), None);
        assert_eq!(leave_out_suggestion("  ", &long), None);
    }

    #[test]
    fn summarising_is_offered_when_the_earlier_turns_cost_enough() {
        let long = inputs(&[400, 400, 400, 400]);
        let offer = summary_suggestion("next?", &long).expect("an offer");
        assert_eq!((offer.thread_id, offer.messages), (7, 4));
        assert!(offer.earlier_tokens >= MIN_SUMMARY_SAVING_TOKENS);
        assert!(offer.call_tokens > offer.earlier_tokens, "the call reads them all, with its prompt");
        assert_eq!(summary_suggestion("next?", &inputs(&[20, 20])), None, "too little to save");
        let mut new = inputs(&[400, 400, 400, 400]);
        new.thread_id = None;
        assert_eq!(summary_suggestion("next?", &new), None, "no conversation yet");
    }

    #[test]
    fn the_preflight_counts_the_summary_and_pinned_messages() {
        let mut i = inputs(&[30, 30]);
        let status = BudgetStatus {
            limits: Vec::new(),
            deal_state: BudgetState::Ok,
            warn_ratio: 0.8,
            firm: crate::budget::FirmLevels { warning: 0.8, critical: 0.95, stop: 1.0, critical_max_request_tokens: 10_000 },
            min_useful_output_tokens: 256,
            smallest_call_tokens: 1024,
            alert: None,
            model_choice: None,
        };
        let plain = preflight("next?", &i, 0, &status, false).unwrap();
        assert!(!plain.text.contains("summary and pinned"), "{}", plain.text);
        i.summary = Some("NOI is $4.1M. ".repeat(20));
        i.pinned = vec![(50, Turn { role: Speaker::User, content: "Use a 6.25% exit cap".into() })];
        let carried = preflight("next?", &i, 0, &status, false).unwrap();
        assert!(carried.text.contains("summary and pinned"), "{}", carried.text);
        let tokens = |text: &str| text.trim_start_matches("≈ ").split(' ').next().unwrap().replace(',', "").parse::<u64>().unwrap();
        assert!(tokens(&carried.text) > tokens(&plain.text));
    }

    #[test]
    fn long_messages_are_told_by_characters_or_lines() {
        assert!(!is_long("What is the cap rate?"));
        assert!(is_long(&"x".repeat(1_501)));
        assert!(!is_long(&"é".repeat(1_500)), "characters, not bytes");
        assert!(is_long(&"line\n".repeat(25)));
    }
}
