//! Pieces shared by several screens.

mod page;

pub use page::{Page, StatusPage};

use leptos::prelude::*;

use crate::i18n::use_flow_texts;

/// Loads the page again: the cure offered when a separately loaded part of the page (the
/// practice card's chunk) could not be fetched, since the browser keeps that failure for the
/// life of the page. The session cookie keeps the patient's choices; a page whose input came in
/// the address's fragment (and took it out of the address bar) passes it as `fragment`
/// (without `#`) to have it back after the reload.
#[component]
pub fn ReloadButton(#[prop(optional)] fragment: Option<Signal<Option<String>>>) -> impl IntoView {
    let f = use_flow_texts();
    let reload = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let location = window().location();
            if let Some(fragment) = fragment.and_then(|f| f.get_untracked()) {
                let _ = location.set_hash(&fragment);
            }
            let _ = location.reload();
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = fragment;
    };
    view! {
        <button type="button" class="button secondary" data-testid="reload-page" on:click=reload>
            {move || f().reload_page}
        </button>
    }
}
