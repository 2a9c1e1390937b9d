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
/// `data-hydrated="true"` once every island is live (at once on a page without islands), and on
/// a page with islands the language switch then works in place, keeping the islands' state
/// ([`switch_lang`]). The script is `hydrate_after_load.js`.
/// `hydrate_after_load.js` as pages carry it: without its comment lines and indentation (it is
/// in every page's head; its comments are for the reader of the file).
#[cfg(feature = "ssr")]
static HYDRATE_AFTER_LOAD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    include_str!("hydrate_after_load.js")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
});
#[cfg(not(feature = "ssr"))]
static HYDRATE_AFTER_LOAD: &str = "";

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
    // sent it, and the page says so in its language.
    let failed = |lang| format!("{:?}", crate::i18n::flow::texts(lang).wasm_failed);
    let script = HYDRATE_AFTER_LOAD
        .replace("__JS__", &format!("{:?}", format!("{pkg}.js")))
        .replace(
            "__WASM__",
            &format!("{:?}", format!("{pkg}{wasm_suffix}.wasm")),
        )
        .replace("__FAILED_JA__", &failed(crate::i18n::Lang::Ja))
        .replace("__FAILED_EN__", &failed(crate::i18n::Lang::En));
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
    let lang = RwSignal::new(initial_lang());
    PAGE_LANG.with(|page| page.set(Some(lang)));
    provide_context(LangSignal(lang));
    provide_context(Address::current());
}

#[cfg(feature = "hydrate")]
thread_local! {
    /// The islands' language, provided at the root by [`hydrate`].
    static PAGE_LANG: std::cell::Cell<Option<RwSignal<crate::i18n::Lang>>> =
        const { std::cell::Cell::new(None) };
}

/// Switches the islands to the language `code` (`ja` or `en`; anything else is ignored) once
/// the page's script has put the server's text in that language around them.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn switch_lang(code: &str) {
    if let (Some(lang), Some(signal)) = (
        crate::i18n::Lang::from_code(code),
        PAGE_LANG.with(|page| page.get()),
    ) {
        signal.set(lang);
    }
}
