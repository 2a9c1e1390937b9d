//! `/r/{link}`: the first screen a patient sees after scanning a clinic's QR code. It names the
//! institution and the reception, lists what is needed, and says how the data will be used and
//! for how long. Unknown, expired and revoked links get a clear page with 404/410.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use uketsuke_domain::{ReceptionKind, kind::Device};

use crate::address::use_query;
use crate::api::{InvalidLink, LandingView, LinkState, VisitDateUse, landing};
use crate::components::{Page, StatusPage};
use crate::i18n::{
    Lang, Texts, flow::code_message, format_date, use_flow_texts, use_lang, use_texts,
};
use crate::pages::page_status;

#[component]
pub fn Landing(link: String) -> impl IntoView {
    let state = Resource::new(
        {
            let link = link.clone();
            move || link.clone()
        },
        landing,
    );
    let t = use_texts();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || t().loading}</p> }>
            {move || { let link = link.clone(); Suspend::new(async move {
                match state.await {
                    Ok(LinkState::Open(landing)) => {
                        EitherOf3::A(view! { <LandingOpen landing link/> })
                    }
                    Ok(LinkState::Invalid(reason)) => EitherOf3::B(link_unusable(reason)),
                    Err(_) => EitherOf3::C(server_error()),
                }
            })}}
        </Suspense>
    }
}

/// One text of the page's language.
type TextOf = fn(&Texts) -> &'static str;

#[component]
fn LandingOpen(landing: LandingView, link: String) -> impl IntoView {
    let t = use_texts();
    // A kind switched off still leads to 同意照会・取消: withdrawal never depends on the clinic.
    let f = use_flow_texts();
    let lang = use_lang();
    let kind = landing.kind;
    let name = {
        let landing = landing.clone();
        Signal::derive(move || match lang.get() {
            Lang::Ja => landing.institution_name_ja.clone(),
            Lang::En => landing.institution_name_en.clone(),
        })
    };
    let visit_date = landing.visit_date.clone();
    let accepting = landing.accepting;
    let date_use = landing.date_use.clone();
    view! {
        <Page title=name demo=landing.demo>
            <section class="card intro" aria-labelledby="institution-name">
                <p class="kind-label" data-testid="kind">{move || t().kind(kind).title}</p>
                <h1 id="institution-name">{move || name.get()}</h1>
                <p class="lead">{move || t().landing_lead}</p>
                {visit_date.map(|date| view! {
                    <p class="visit-date">
                        <span class="label">{move || t().landing_visit_date}</span>
                        <strong>{move || format_date(lang.get(), &date)}</strong>
                    </p>
                })}
            </section>
            {if accepting && date_use == VisitDateUse::Today {
                Either::Left(view! { <LandingDetails kind link/> })
            } else {
                let (title, body): (TextOf, TextOf) =
                    match (&date_use, accepting) {
                        (_, false) => (|t| t.landing_not_accepting_title, |t| t.landing_not_accepting_body),
                        (VisitDateUse::Passed, _) => (|t| t.landing_passed_title, |t| t.landing_passed_body),
                        _ => (|t| t.landing_not_yet_title, |t| t.landing_not_yet_body),
                    };
                let from = match (&date_use, accepting) {
                    (VisitDateUse::From(date), true) => Some(date.clone()),
                    _ => None,
                };
                Either::Right(view! {
                    <section class="card notice" role="alert" data-testid="landing-closed">
                        <h2>{move || title(t())}</h2>
                        {from.map(|date| view! {
                            <p class="visit-date" data-testid="usable-from">
                                <span class="label">{move || t().landing_not_yet_from}</span>
                                <strong>{move || format_date(lang.get(), &date)}</strong>
                            </p>
                        })}
                        <p>{move || body(t())}</p>
                    </section>
                    <p class="manage-link">
                        <a href=format!("/r/{link}/manage") data-testid="manage-link">{move || f().manage_link}</a>
                    </p>
                })
            }}
        </Page>
    }
}

#[component]
fn LandingDetails(kind: ReceptionKind, link: String) -> impl IntoView {
    let t = use_texts();
    let f = use_flow_texts();
    let lang = use_lang();
    let error = use_query("error");
    let on_institution_device = kind.device() == Device::InstitutionOnly;
    let medical = kind.offers_medical_information();
    view! {
        {on_institution_device.then(|| view! {
            <p class="card hint" data-testid="institution-device">
                {move || t().landing_on_institution_device}
            </p>
        })}
        <section class="card" aria-labelledby="needed-heading">
            <h2 id="needed-heading">{move || t().landing_needed_heading}</h2>
            <ul class="checklist">
                <li>{move || t().landing_needed_card}</li>
                <li>{move || t().landing_needed_pin}</li>
                <li>{move || t().landing_needed_reader}</li>
            </ul>
        </section>
        <section class="card" aria-labelledby="use-heading">
            <h2 id="use-heading">{move || t().landing_use_heading}</h2>
            <ul class="plain">
                <li>{move || t().landing_use_eligibility}</li>
                {if medical {
                    Either::Left(view! {
                        <li>{move || t().landing_use_medical}</li>
                        <li>
                            {move || t().landing_use_window}
                            " "
                            <strong data-testid="window">{move || t().kind(kind).window}</strong>
                        </li>
                    })
                } else {
                    Either::Right(view! { <li>{move || t().landing_use_no_medical}</li> })
                }}
                <li>{move || t().landing_use_pin}</li>
            </ul>
        </section>
        <details class="card more">
            <summary>{move || t().landing_how_read_heading}</summary>
            <p>{move || t().landing_how_read_body}</p>
        </details>
        {error.map(|code| view! {
            <p class="card notice" role="alert" data-testid="form-error">
                {move || code_message(lang.get(), &code)}
            </p>
        })}
        <form class="start" method="post" action=format!("/r/{link}/start")>
            <button type="submit" class="button wide" data-testid="start">{move || f().start}</button>
        </form>
        <p class="manage-link">
            <a href=format!("/r/{link}/manage") data-testid="manage-link">{move || f().manage_link}</a>
        </p>
    }
}

/// The page for a link that cannot be used: 404 for unknown ids, 410 for revoked or expired.
pub(crate) fn link_unusable(reason: InvalidLink) -> impl IntoView {
    page_status(if reason == InvalidLink::Unknown {
        404
    } else {
        410
    });
    view! { <InvalidLinkPage reason/> }
}

/// The page for a failure on the server's side, with 500.
pub(crate) fn server_error() -> impl IntoView {
    page_status(500);
    view! { <ServerErrorPage/> }
}

#[component]
pub(crate) fn InvalidLinkPage(reason: InvalidLink) -> impl IntoView {
    let t = use_texts();
    let detail = match reason {
        InvalidLink::Unknown => None,
        InvalidLink::Expired => Some(Signal::derive(move || t().invalid_link_expired.to_owned())),
        InvalidLink::Revoked => Some(Signal::derive(move || t().invalid_link_revoked.to_owned())),
    };
    view! {
        <StatusPage
            title=Signal::derive(move || t().invalid_link_title.to_owned())
            body=Signal::derive(move || t().invalid_link_body.to_owned())
            detail=detail
        />
    }
}

#[component]
pub(crate) fn ServerErrorPage() -> impl IntoView {
    let t = use_texts();
    view! {
        <StatusPage
            title=Signal::derive(move || t().server_error_title.to_owned())
            body=Signal::derive(move || t().server_error_body.to_owned())
        />
    }
}
