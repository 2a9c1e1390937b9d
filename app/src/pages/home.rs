//! `/`: people arrive here without a clinic's link; tell them where to start.

use leptos::prelude::*;

use crate::components::StatusPage;
use crate::i18n::use_texts;

#[component]
pub fn Home() -> impl IntoView {
    let t = use_texts();
    view! {
        <StatusPage
            title=Signal::derive(move || t().home_title.to_owned())
            body=Signal::derive(move || t().home_body.to_owned())
        />
    }
}
