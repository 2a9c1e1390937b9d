//! The frame of every patient screen: a top bar with the product name and the language switch,
//! an optional demo banner, and the content.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::i18n::{use_lang, use_texts};

#[component]
pub fn Page<C: IntoView + 'static>(
    /// The document title, reactive so it follows the language.
    #[prop(into)]
    title: Signal<String>,
    /// Shows the demo banner.
    #[prop(optional, into)]
    demo: Signal<bool>,
    children: TypedChildren<C>,
) -> impl IntoView {
    let t = use_texts();
    let children = children.into_inner();
    // The server writes the <title> only after the body has streamed, when the request's
    // signals may already be disposed (seen under concurrent requests: a panic in the render
    // task and a response that never finishes). On the server the title is therefore fixed
    // text computed now; in the browser it follows the language.
    //
    // leptos_meta (0.8.7, `ServerMetaContextOutput::inject_meta_context`) writes the title's
    // text into the streamed head as it is, without escaping: an institution name such as
    // `</title><meta http-equiv=refresh …>` would become markup in every patient's head. The
    // server therefore hands it text already escaped for HTML; in the browser the title is set
    // through `document.title`, which takes plain text.
    #[cfg(feature = "ssr")]
    let text = {
        let fixed = escape_html(&format!("{} | {}", title.get_untracked(), t().product));
        move || fixed.clone()
    };
    #[cfg(not(feature = "ssr"))]
    let text = move || format!("{} | {}", title.get(), t().product);
    view! {
        <Title text=text/>
        <header class="top-bar">
            <span class="brand">{move || t().product}</span>
            <LanguageSwitch/>
        </header>
        {move || demo.get().then(|| view! {
            <p class="demo-banner" role="note">
                <span class="demo-tag">"DEMO"</span>
                {move || t().demo_banner}
            </p>
        })}
        <main id="main" class="content">{children()}</main>
    }
}

/// `text` escaped for HTML text and attribute values: `&`, `<`, `>`, `"` and `'` as character
/// references.
#[cfg(any(feature = "ssr", test))]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn markup_becomes_text() {
        assert_eq!(
            escape_html(
                r#"</title><meta http-equiv=refresh content="0;url=https://evil.example"> & 'x'"#
            ),
            "&lt;/title&gt;&lt;meta http-equiv=refresh content=&quot;0;url=https://evil.example&quot;&gt; &amp; &#39;x&#39;"
        );
        assert_eq!(escape_html("山田医院 | Uketsuke"), "山田医院 | Uketsuke");
    }
}

/// The other language: a plain link to this page with `?lang=` set (its other query kept). The
/// server renders the page in that language and remembers it in a cookie for the next pages;
/// the screens are server-rendered, so the switch is a page load, with or without scripts.
#[component]
fn LanguageSwitch() -> impl IntoView {
    let target = use_lang().get_untracked().other();
    let href = crate::address::use_address().query_with("lang", target.code());
    view! {
        <a
            class="lang-switch"
            data-testid="lang-switch"
            href=href
            hreflang=target.code()
            lang=target.code()
            aria-label=target.texts().switch_language_label
        >
            {target.texts().language_name}
        </a>
    }
}

/// A page that only says what happened and what to do next (invalid link, not found, error).
#[component]
pub fn StatusPage(
    #[prop(into)] title: Signal<String>,
    #[prop(into)] body: Signal<String>,
    #[prop(optional_no_strip)] detail: Option<Signal<String>>,
) -> impl IntoView {
    view! {
        <Page title=title>
            <section class="card status" aria-labelledby="status-title">
                <h1 id="status-title">{move || title.get()}</h1>
                {detail.map(|d| view! { <p class="status-detail">{move || d.get()}</p> })}
                <p>{move || body.get()}</p>
            </section>
        </Page>
    }
}
