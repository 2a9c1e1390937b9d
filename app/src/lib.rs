//! The Uketsuke user interface, one crate for both sides: rendered to HTML by the server
//! (feature `ssr`) and hydrated in the browser (feature `hydrate`).
//!
//! - `pages/` — one module per screen a person sees
//! - `components/` — pieces shared by several screens
//! - `i18n/` — every text, in Japanese and English
//! - `data` — the data both sides share (plain types)
//! - `api` — the server functions the pages call (and `data` re-exported)
//! - `ssr` — server-only glue: the storage interface and request details

pub mod api;
pub mod card;
pub mod components;
#[cfg(feature = "ssr")]
mod cookie;
pub mod data;
pub mod i18n;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{Html, MetaTags, Stylesheet, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::i18n::{LangSignal, initial_lang};
use crate::pages::{
    flow::{Cancel, FlowScreen, Manage, Step},
    home::Home,
    landing::Landing,
    not_found::NotFound,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::provide_request_nonce();
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let lang = RwSignal::new(initial_lang());
    provide_context(LangSignal(lang));

    // Marks the page as interactive once the WASM has taken over (used by tests and styles).
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Html {..} lang=move || lang.get().code()/>
        <Stylesheet id="uketsuke" href="/pkg/uketsuke.css"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=Home/>
                <Route path=path!("/r/:link") view=Landing ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/date") view=|| view! { <FlowScreen step=Step::Date/> } ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/consent") view=|| view! { <FlowScreen step=Step::Consent/> } ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/review") view=|| view! { <FlowScreen step=Step::Review/> } ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/card") view=|| view! { <FlowScreen step=Step::Card/> } ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/eid-return") view=|| view! { <FlowScreen step=Step::AppReturn/> } ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/eid-app") view=crate::pages::eid::PracticeApp ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/done") view=|| view! { <FlowScreen step=Step::Done/> } ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/manage") view=Manage ssr=SsrMode::Async/>
                <Route path=path!("/r/:link/insurance-use") view=crate::pages::insurance_use::InsuranceUseScreen ssr=SsrMode::Async/>
                <Route path=path!("/cancel/:token") view=Cancel ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// Entry point of the browser build: attaches the app to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
