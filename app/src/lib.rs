//! The Uketsuke user interface, one crate for both sides: rendered to HTML by the server
//! (feature `ssr`), with the few parts that need the browser hydrated there as islands
//! (feature `hydrate`; Leptos islands mode). A `#[component]` is server-only; an `#[island]`
//! (the card step, 同意照会's list, the insurance-use consent, the hand-off's return page and
//! the demo's practice app) is also compiled to WASM and gets its props from the page. Every
//! other screen is plain HTML whose links and forms work without scripts. The WASM comes in
//! two builds ([`ALL_ISLANDS_DIR`]): the reception's islands only, and every island.
//!
//! - `pages/` — one module per screen a person sees
//! - `components/` — pieces shared by several screens
//! - `i18n/` — every text, in Japanese and English
//! - `data` — the data both sides share (plain types)
//! - `api` — the page data the server fetches while rendering (and `data` re-exported)
//! - `address` — which screen an address shows (no client-side router: each screen is a page load)
//! - `ssr` — server-only glue: the storage interface and request details

pub mod address;
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

use leptos::either::EitherOf8;
use leptos::prelude::*;
use leptos_meta::{Html, MetaTags, Stylesheet, provide_meta_context};

use crate::address::{Address, Screen};
use crate::i18n::{LangSignal, initial_lang};
use crate::pages::{
    eid::PracticeApp,
    flow::{Cancel, FlowScreen, Manage},
    home::Home,
    insurance_use::InsuranceUseScreen,
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
                <HydrateAfterLoad options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The folder, under the site's `pkg`, of the WASM with every island (feature `all-islands`),
/// which the screens off the reception's path load (同意照会, 健康保険証利用登録, the practice
/// app). The reception's screens (`/r/{link}/…`: the card step, the hand-off's return page) load
/// `pkg/uketsuke.*`, which has only their islands: what every patient downloads stays small.
/// `scripts/build-site.sh` builds both.
pub const ALL_ISLANDS_DIR: &str = "all";

/// The script that starts the WASM, on a page that has islands only (`#[island]`: the parts of a
/// screen that need the browser, such as the card step). Everything else is server-rendered
/// HTML whose links and forms work without it, so pages such as the landing page download no
/// WASM at all. The WASM starts once the page has loaded and the browser is idle, with no
/// preload hints: on a slow connection the text paints first and the WASM (the largest
/// download) does not share the bandwidth with it. Leptos's `HydrationScripts` preloads it from
/// the head instead, which delays the largest paint on a slow mobile connection (issue 13;
/// `scripts/lighthouse.sh`). Each `<leptos-island>` is then hydrated by the WASM function its
/// `data-component` names; islands are not nested here. The body is marked
/// `data-hydrated="true"` once every island is live (at once on a page without islands).
#[component]
fn HydrateAfterLoad(options: LeptosOptions) -> impl IntoView {
    let pkg = match Address::current().screen {
        Screen::Flow(..) => format!("/{}/{}", options.site_pkg_dir, options.output_name),
        _ => format!(
            "/{}/{ALL_ISLANDS_DIR}/{}",
            options.site_pkg_dir, options.output_name
        ),
    };
    // cargo-leptos names the WASM after the package; a plain wasm-bindgen build adds `_bg`.
    let wasm_suffix = if option_env!("LEPTOS_OUTPUT_NAME").is_some() {
        ""
    } else {
        "_bg"
    };
    // A WASM that cannot be fetched or started (a lost connection) leaves the page as the server
    // sent it: the card step's "checking…" line then says so, in the page's language, and the
    // body is marked `data-wasm="failed"`.
    let failed = |lang| crate::i18n::flow::texts(lang).wasm_failed;
    let script = format!(
        "const failed=()=>{{document.body.dataset.wasm=\"failed\";\
         const text=document.documentElement.lang===\"en\"?{en:?}:{ja:?};\
         for(const line of document.querySelectorAll('[data-testid=\"card-loading\"]')){{line.textContent=text;line.setAttribute(\"role\",\"alert\");}}}};\
         const done=()=>{{document.body.dataset.hydrated=\"true\";}};\
         const islands=()=>document.querySelectorAll(\"leptos-island\");\
         const start=()=>import({js:?}).then((m)=>m.default({{module_or_path:{wasm:?}}}).then(()=>{{m.hydrate();\
         for(const el of islands()){{const island=m[el.dataset.component];if(island)island(el);else throw new Error(\"no island \"+el.dataset.component);}}done();}})).catch(failed);\
         const idle=()=>(\"requestIdleCallback\" in window)?requestIdleCallback(start,{{timeout:1000}}):setTimeout(start,0);\
         const begin=()=>islands().length?idle():done();\
         if(document.readyState===\"complete\")begin();else addEventListener(\"load\",begin,{{once:true}});",
        js = format!("{pkg}.js"),
        wasm = format!("{pkg}{wasm_suffix}.wasm"),
        ja = failed(crate::i18n::Lang::Ja),
        en = failed(crate::i18n::Lang::En),
    );
    let nonce = leptos::nonce::use_nonce();
    view! { <script type="module" nonce=nonce>{script}</script> }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let lang = RwSignal::new(initial_lang());
    provide_context(LangSignal(lang));
    // The screen is chosen by the address alone: every screen is a page load of its own.
    let address = Address::current();
    let screen = address.screen.clone();
    provide_context(address);

    view! {
        <Html {..} lang=move || lang.get().code()/>
        <Stylesheet id="uketsuke" href="/pkg/uketsuke.css"/>
        {match screen {
            Screen::Home => EitherOf8::A(view! { <Home/> }),
            Screen::Landing(link) => EitherOf8::B(view! { <Landing link/> }),
            Screen::Flow(link, step) => EitherOf8::C(view! { <FlowScreen link step/> }),
            Screen::PracticeApp(link) => EitherOf8::D(view! { <PracticeApp link/> }),
            Screen::Manage(link) => EitherOf8::E(view! { <Manage link/> }),
            Screen::InsuranceUse(link) => EitherOf8::F(view! { <InsuranceUseScreen link/> }),
            Screen::Cancel(token) => EitherOf8::G(view! { <Cancel token/> }),
            Screen::NotFound => EitherOf8::H(view! { <NotFound/> }),
        }}
    }
}

/// Entry point of the browser build, run before the page's islands are hydrated (see
/// [`HydrateAfterLoad`]): starts the reactive system and provides, at its root, what the
/// server's [`App`] provides to every island: the page's language (as rendered into
/// `<html lang>`) and its address.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    provide_context(LangSignal(RwSignal::new(initial_lang())));
    provide_context(Address::current());
}
