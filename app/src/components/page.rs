//! The frame of every patient screen: a top bar with the product name and the language switch,
//! an optional demo banner, and the content.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::i18n::{remember_lang, use_lang, use_texts};

#[component]
pub fn Page(
    /// The document title, reactive so it follows the language.
    #[prop(into)]
    title: Signal<String>,
    /// Shows the demo banner.
    #[prop(optional, into)]
    demo: Signal<bool>,
    children: Children,
) -> impl IntoView {
    let t = use_texts();
    // The server writes the <title> only after the body has streamed, when the request's
    // signals may already be disposed (seen under concurrent requests: a panic in the render
    // task and a response that never finishes). On the server the title is therefore fixed
    // text computed now; in the browser it follows the language.
    #[cfg(feature = "ssr")]
    let text = {
        let fixed = format!("{} | {}", title.get_untracked(), t().product);
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
        <Show when=move || demo.get()>
            <p class="demo-banner" role="note">
                <span class="demo-tag">"DEMO"</span>
                {move || t().demo_banner}
            </p>
        </Show>
        <main id="main" class="content">{children()}</main>
    }
}

/// A link that works without JavaScript (`?lang=`), and switches in place once hydrated.
#[component]
fn LanguageSwitch() -> impl IntoView {
    let lang = use_lang();
    let target = move || lang.get().other();
    view! {
        <a
            class="lang-switch"
            data-testid="lang-switch"
            href=move || format!("?lang={}", target().code())
            hreflang=move || target().code()
            lang=move || target().code()
            aria-label=move || target().texts().switch_language_label
            on:click=move |ev| {
                ev.prevent_default();
                let next = target();
                lang.set(next);
                remember_lang(next);
            }
        >
            {move || target().texts().language_name}
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
