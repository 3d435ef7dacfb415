//! Small pieces every view uses: the error notice, the text of a `<textarea>`, copying
//! to the clipboard, and the header of a sortable table column.

use leptos::prelude::*;

use crate::error::{AppError, ErrorKind};

/// A friendly error; an expired session gets a way back to the sign-in page.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let sign_in = error.kind == ErrorKind::Unauthorized;
    view! {
        <div class="notice error" role="alert" data-kind=error.kind.as_str()>
            <span>{error.message}</span>
            {sign_in.then(|| view! { " " <a href="/login">"Sign in"</a> })}
        </div>
    }
}

/// A column header that orders its table by `column`: ascending on the first press, then
/// each press turns the order round. `aria-sort` tells assistive technology which column
/// orders the rows and which way; `numeric` right-aligns it over figures.
#[component]
pub fn SortHeader<C>(column: C, label: &'static str, sort: RwSignal<(C, bool)>, #[prop(optional)] numeric: bool) -> impl IntoView
where
    C: Copy + PartialEq + Send + Sync + 'static,
{
    view! {
        <th class=if numeric { "num" } else { "" } aria-sort=move || aria_sort(sort.get(), column)>
            <button type="button" class="sort" on:click=move |_| sort.update(|current| *current = next_sort(*current, column))>{label}</button>
        </th>
    }
}

/// The order after pressing `column`'s header: another column sorts ascending first; the
/// column in force turns round.
pub fn next_sort<C: PartialEq>((current, descending): (C, bool), column: C) -> (C, bool) {
    let descending = current == column && !descending;
    (column, descending)
}

/// `aria-sort` of `column`'s header while the table is ordered by `current`.
pub fn aria_sort<C: PartialEq>((current, descending): (C, bool), column: C) -> &'static str {
    match (current == column, descending) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    }
}

/// The text of a `<textarea>`, as its child. Leptos 0.8 writes the children of raw-text
/// elements (`textarea`, `script`, `style`, `noscript`) into server-rendered HTML
/// unescaped, so text such as `</textarea><img onerror=…>` would end the element and
/// inject markup. The server escapes it here (the browser decodes entities inside a
/// textarea, so the analyst sees their text exactly); in the browser the child becomes a
/// DOM text node, never parsed as HTML, and needs no escaping.
pub fn textarea_text(text: String) -> String {
    #[cfg(feature = "ssr")]
    {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        out
    }
    #[cfg(not(feature = "ssr"))]
    {
        text
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::{aria_sort, next_sort, textarea_text};

    #[test]
    fn a_sort_header_sorts_ascending_first_then_turns_round() {
        assert_eq!(next_sort(("name", false), "price"), ("price", false));
        assert_eq!(next_sort(("name", true), "price"), ("price", false));
        assert_eq!(next_sort(("price", false), "price"), ("price", true));
        assert_eq!(next_sort(("price", true), "price"), ("price", false));
        assert_eq!(aria_sort(("price", true), "price"), "descending");
        assert_eq!(aria_sort(("price", false), "price"), "ascending");
        assert_eq!(aria_sort(("price", true), "name"), "none");
    }

    #[test]
    fn textarea_text_cannot_close_its_element() {
        let hostile = "</textarea><img src=x onerror=alert(1)> & </TEXTAREA >".to_string();
        let safe = textarea_text(hostile);
        assert!(!safe.to_ascii_lowercase().contains("</textarea"), "{safe}");
        assert!(!safe.contains('<'), "{safe}");
        assert_eq!(safe, "&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &lt;/TEXTAREA &gt;");
    }
}

/// Puts `text` on the clipboard (in the browser) and says in `said` whether it worked:
/// `done` if it did.
pub fn copy_text(text: String, done: &'static str, said: RwSignal<Option<String>>) {
    #[cfg(feature = "hydrate")]
    {
        let Some(clipboard) = web_sys::window().map(|w| w.navigator().clipboard()) else { return };
        leptos::task::spawn_local(async move {
            let outcome = wasm_bindgen_futures::JsFuture::from(clipboard.write_text(&text)).await;
            said.set(Some(match outcome {
                Ok(_) => done.to_string(),
                Err(_) => "The browser did not allow copying.".to_string(),
            }));
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (text, done, said);
}
