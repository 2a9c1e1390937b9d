//! Any address the app does not know: a 404 page in the patient's language.

use leptos::prelude::*;

use crate::components::StatusPage;
use crate::i18n::use_texts;
use crate::pages::page_status;

#[component]
pub fn NotFound() -> impl IntoView {
    page_status(404);
    let t = use_texts();
    view! {
        <StatusPage
            title=Signal::derive(move || t().not_found_title.to_owned())
            body=Signal::derive(move || t().not_found_body.to_owned())
        />
    }
}
