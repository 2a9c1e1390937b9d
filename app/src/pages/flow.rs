//! The reception flow after the landing page: visit date (online care) → consent → review →
//! card and PIN → progress and done; and the cancel page. Every screen is rendered on the
//! server from the session (a reload resumes where the patient was) and its forms post without
//! JavaScript (`server/src/http/patient_forms.rs`); only the card step needs the WASM, and says
//! so when it is missing.

use leptos::either::{Either, EitherOf3, EitherOf7};
use leptos::prelude::*;
use leptos_meta::Meta;
use uketsuke_domain::{ReceptionKind, kind::Device};

use crate::address::use_query;
use crate::api::{FlowState, FlowView, cancel_view, flow};
use crate::components::Page;
use crate::i18n::{
    Lang, flow::code_message, format_date, format_end, use_flow_texts, use_lang, use_texts,
};
use crate::pages::landing::{link_unusable, server_error};
use crate::pages::page_status;

/// Which screen of the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Date,
    Consent,
    Review,
    Card,
    /// The card-reading app's result arrives (`/r/{link}/eid-return`, part of the card step).
    AppReturn,
    Done,
}

fn steps(kind: ReceptionKind) -> usize {
    if kind.asks_visit_date() { 5 } else { 4 }
}

fn step_number(step: Step, kind: ReceptionKind) -> usize {
    let offset = usize::from(kind.asks_visit_date());
    match step {
        Step::Date => 1,
        Step::Consent => 1 + offset,
        Step::Review => 2 + offset,
        Step::Card | Step::AppReturn => 3 + offset,
        Step::Done => 4 + offset,
    }
}

/// Loads the session's state and shows the screen of `step`, or the screen the session is
/// really at (a finished reception always shows its result).
#[component]
pub fn FlowScreen(link: String, step: Step) -> impl IntoView {
    let state = Resource::new(
        {
            let link = link.clone();
            move || link.clone()
        },
        flow,
    );
    let t = use_texts();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || t().loading}</p> }>
            {move || {
                let link = link.clone();
                Suspend::new(async move {
                    match state.await {
                        Ok(FlowState::Open(view)) => EitherOf3::A(flow_step(link, step, *view)),
                        Ok(FlowState::Invalid(reason)) => EitherOf3::B(link_unusable(reason)),
                        Err(_) => EitherOf3::C(server_error()),
                    }
                })
            }}
        </Suspense>
    }
}

/// The screen of `step`, or the screen the session is really at.
fn flow_step(link: String, step: Step, view: FlowView) -> impl IntoView {
    let submitted = view.submitted.is_some();
    if !view.has_session {
        page_status(410);
        return EitherOf7::A(view! { <SessionGone link view/> });
    }
    if submitted || step == Step::Done {
        return EitherOf7::B(view! { <Done link view/> });
    }
    match step {
        Step::Date => EitherOf7::C(view! { <Date link view/> }),
        Step::Consent => EitherOf7::D(view! { <Consent link view/> }),
        Step::Review | Step::Card if view.choices.is_none() => {
            EitherOf7::D(view! { <Consent link view/> })
        }
        Step::Review => EitherOf7::E(view! { <Review link view/> }),
        Step::AppReturn => EitherOf7::F(view! {
            <Screen view step=Step::Card heading=Signal::derive(move || use_flow_texts()().card_title.to_owned())>
                <crate::pages::eid::AppReturn link/>
            </Screen>
        }),
        _ => EitherOf7::G(view! { <Card link view/> }),
    }
}

/// The institution's name in the current language.
pub(crate) fn institution_name(view: &FlowView) -> Signal<String> {
    let lang = use_lang();
    let (ja, en) = (
        view.landing.institution_name_ja.clone(),
        view.landing.institution_name_en.clone(),
    );
    Signal::derive(move || match lang.get() {
        Lang::Ja => ja.clone(),
        Lang::En => en.clone(),
    })
}

/// The frame of a flow screen: page, step counter, heading, error from `?error=`.
#[component]
fn Screen<C: IntoView + 'static>(
    view: FlowView,
    step: Step,
    #[prop(into)] heading: Signal<String>,
    children: TypedChildren<C>,
) -> impl IntoView {
    let f = use_flow_texts();
    let lang = use_lang();
    let error = use_query("error");
    let children = children.into_inner();
    let kind = view.landing.kind;
    let name = institution_name(&view);
    view! {
        <Page title=heading demo=view.landing.demo>
            <p class="step" data-testid="step">
                {move || (f().step_of)(step_number(step, kind), steps(kind))}
                " · "
                {move || name.get()}
            </p>
            <h1 id="screen-heading">{move || heading.get()}</h1>
            {error.map(|code| view! {
                <p class="card notice" role="alert" data-testid="form-error">
                    {move || code_message(lang.get(), &code)}
                </p>
            })}
            {children()}
        </Page>
    }
}

#[component]
pub(crate) fn SessionGone(link: String, view: FlowView) -> impl IntoView {
    let f = use_flow_texts();
    let name = institution_name(&view);
    view! {
        <Page title=Signal::derive(move || f().session_gone_title.to_owned()) demo=view.landing.demo>
            <section class="card" aria-labelledby="gone-heading">
                <p class="step">{move || name.get()}</p>
                <h1 id="gone-heading">{move || f().session_gone_title}</h1>
                <p>{move || f().session_gone_body}</p>
                <a class="button" href=format!("/r/{link}")>{move || f().start_again}</a>
            </section>
        </Page>
    }
}

/// The session's form token, as a hidden field of a form that changes the session (checked by
/// the server: `server/src/http/patient_forms.rs`).
#[component]
fn FormToken(token: Option<String>) -> impl IntoView {
    token.map(|token| view! { <input type="hidden" name="form_token" value=token/> })
}

#[component]
fn Date(link: String, view: FlowView) -> impl IntoView {
    let form_token = view.form_token.clone();
    let f = use_flow_texts();
    let chosen = view
        .choices
        .as_ref()
        .map(|c| c.visit_date.clone())
        .unwrap_or_else(|| view.today.clone());
    let (min, max) = (view.today.clone(), view.latest.clone());
    view! {
        <Screen view step=Step::Date heading=Signal::derive(move || f().date_title.to_owned())>
            <form class="card" method="post" action=format!("/r/{link}/date")>
                <FormToken token=form_token/>
                <label for="visit-date">{move || f().date_label}</label>
                <input
                    id="visit-date"
                    name="visit_date"
                    type="date"
                    required=true
                    min=min
                    max=max
                    value=chosen
                    aria-describedby="visit-date-hint"
                />
                <p id="visit-date-hint" class="hint-text">{move || f().date_hint}</p>
                <div class="actions">
                    <a class="button secondary" href=format!("/r/{link}")>{move || f().back}</a>
                    <button type="submit" class="button">{move || f().next}</button>
                </div>
            </form>
        </Screen>
    }
}

/// One 同意する / 同意しない question as a fieldset of two large radio buttons.
#[component]
fn YesNo(
    name: &'static str,
    #[prop(into)] legend: Signal<String>,
    #[prop(into)] hint: Signal<String>,
    checked: Option<bool>,
) -> impl IntoView {
    let f = use_flow_texts();
    let hint_id = format!("{name}-hint");
    let described = hint_id.clone();
    view! {
        <fieldset class="choice" aria-describedby=described>
            <legend>{move || legend.get()}</legend>
            <p id=hint_id class="hint-text">{move || hint.get()}</p>
            <label class="option">
                <input type="radio" name=name value="yes" required=true checked=checked == Some(true)/>
                <span>{move || f().agree}</span>
            </label>
            <label class="option">
                <input type="radio" name=name value="no" checked=checked == Some(false)/>
                <span>{move || f().disagree}</span>
            </label>
        </fieldset>
    }
}

#[component]
fn Consent(link: String, view: FlowView) -> impl IntoView {
    let form_token = view.form_token.clone();
    let f = use_flow_texts();
    let kind = view.landing.kind;
    let choices = view.choices.clone();
    // The date chosen on the previous screen (or fixed, or already stored).
    let visit_date = use_query("visit_date")
        .or_else(|| view.landing.visit_date.clone())
        .or_else(|| choices.as_ref().map(|c| c.visit_date.clone()));
    let back = if kind.asks_visit_date() && view.landing.visit_date.is_none() {
        format!("/r/{link}/date")
    } else {
        format!("/r/{link}")
    };
    let clinical = choices.as_ref().map(|c| c.clinical_medication);
    let checkups = choices.as_ref().map(|c| c.checkups);
    let prescription = choices.as_ref().and_then(|c| c.prescription_method.clone());
    view! {
        <Screen view step=Step::Consent heading=Signal::derive(move || f().consent_title.to_owned())>
            <form class="card" method="post" action=format!("/r/{link}/consent")>
                <FormToken token=form_token/>
                {visit_date.map(|d| view! { <input type="hidden" name="visit_date" value=d/> })}
                {if kind.offers_medical_information() {
                    Either::Left(view! {
                        <p>{move || f().consent_lead}</p>
                        <YesNo
                            name="clinical_medication"
                            legend=Signal::derive(move || f().consent_clinical.to_owned())
                            hint=Signal::derive(move || f().consent_clinical_hint.to_owned())
                            checked=clinical
                        />
                        <YesNo
                            name="checkups"
                            legend=Signal::derive(move || f().consent_checkups.to_owned())
                            hint=Signal::derive(move || f().consent_checkups_hint.to_owned())
                            checked=checkups
                        />
                    })
                } else {
                    Either::Right(view! { <p>{move || f().eligibility_only_note}</p> })
                }}
                {kind.asks_prescription_method().then(|| {
                    let electronic = prescription.as_deref() == Some("electronic");
                    let paper = prescription.as_deref() == Some("paper");
                    view! {
                        <fieldset class="choice">
                            <legend>{move || f().prescription}</legend>
                            <label class="option">
                                <input type="radio" name="prescription_method" value="electronic" required=true checked=electronic/>
                                <span>{move || f().prescription_electronic}</span>
                            </label>
                            <label class="option">
                                <input type="radio" name="prescription_method" value="paper" checked=paper/>
                                <span>{move || f().prescription_paper}</span>
                            </label>
                        </fieldset>
                    }
                })}
                <div class="actions">
                    <a class="button secondary" href=back>{move || f().back}</a>
                    <button type="submit" class="button">{move || f().next}</button>
                </div>
            </form>
        </Screen>
    }
}

#[component]
fn Review(link: String, view: FlowView) -> impl IntoView {
    let f = use_flow_texts();
    let t = use_texts();
    let lang = use_lang();
    let kind = view.landing.kind;
    let Some(choices) = view.choices.clone() else {
        return Either::Left(());
    };
    let date = choices.visit_date.clone();
    let window = view.window_preview.clone();
    let consent = move |yes: bool| if yes { f().agree } else { f().disagree };
    let prescription = choices.prescription_method.clone();
    Either::Right(view! {
        <Screen view step=Step::Review heading=Signal::derive(move || f().review_title.to_owned())>
            <section class="card">
                <p>{move || f().review_lead}</p>
                <dl class="review">
                    <dt>{move || f().review_kind}</dt>
                    <dd>{move || t().kind(kind).title}</dd>
                    <dt>{move || f().review_visit_date}</dt>
                    <dd data-testid="review-date">{move || format_date(lang.get(), &date)}</dd>
                    {kind.offers_medical_information().then(|| view! {
                        <dt>{move || f().consent_clinical}</dt>
                        <dd data-testid="review-clinical">{move || consent(choices.clinical_medication)}</dd>
                        <dt>{move || f().consent_checkups}</dt>
                        <dd data-testid="review-checkups">{move || consent(choices.checkups)}</dd>
                    })}
                    {prescription.map(|p| view! {
                        <dt>{move || f().prescription}</dt>
                        <dd>{move || if p == "paper" { f().prescription_paper } else { f().prescription_electronic }}</dd>
                    })}
                    <dt>{move || f().review_window}</dt>
                    <dd data-testid="review-window">
                        {move || match &window {
                            Some(end) => format_end(lang.get(), end),
                            None => f().review_no_window.to_owned(),
                        }}
                    </dd>
                </dl>
                <div class="actions">
                    <a class="button secondary" href=format!("/r/{link}/consent")>{move || f().change}</a>
                    <a class="button" href=format!("/r/{link}/card") data-testid="to-card">{move || f().to_card}</a>
                </div>
            </section>
        </Screen>
    })
}

#[component]
fn Card(link: String, view: FlowView) -> impl IntoView {
    let f = use_flow_texts();
    let demo = view.landing.demo;
    let staff = view.staff.clone();
    let visual = staff.is_some() && view.landing.kind.allows_visual_check();
    view! {
        <Screen view step=Step::Card heading=Signal::derive(move || f().card_title.to_owned())>
            <noscript>
                <p class="card notice" role="alert">{move || f().card_needs_js}</p>
            </noscript>
            {staff.clone().map(|staff| {
                let who = format!("{} ({})", staff.name, staff.login_id);
                view! { <p class="card hint" data-testid="staff-on-device">{move || (f().staff_on_device)(&who)}</p> }
            })}
            <crate::pages::card_step::CardStep link demo visual/>
            // On the institution's own device the "finish at the institution" advice is moot.
            {staff.is_none().then(|| view! {
                <section class="card" aria-labelledby="cannot-heading">
                    <h2 id="cannot-heading">{move || f().card_cannot_title}</h2>
                    <p>{move || f().card_cannot_body}</p>
                    <p class="hint-text">{move || f().card_eid_app}</p>
                </section>
            })}
        </Screen>
    }
}

#[component]
fn Done(link: String, view: FlowView) -> impl IntoView {
    let f = use_flow_texts();
    let lang = use_lang();
    let kind = view.landing.kind;
    let Some(submitted) = view.submitted.clone() else {
        // Done asked for before anything was sent: back to where the session is.
        return Either::Left(view! { <SessionGone link view/> });
    };
    let queued = submitted.status == "queued";
    let insurance = submitted.insurance_use.clone();
    // Reload while the registration for insurance use is on its way, as while queued.
    let insurance_busy = crate::pages::insurance_use::in_progress(insurance.as_ref());
    let heading = {
        let s = submitted.clone();
        Signal::derive(move || {
            let f = f();
            if s.withdrawn {
                f.withdrawn_title
            } else {
                match s.status.as_str() {
                    "confirmed" => f.done_title,
                    "refused" => f.refused_title,
                    _ => f.progress_title,
                }
            }
            .to_owned()
        })
    };
    // The photo-ID step is for a patient on their own device; at the institution's device the
    // staff member is there.
    let patient_device = kind.device() != Device::InstitutionOnly && view.staff.is_none();
    let body = match submitted.status.as_str() {
        "confirmed" => {
            let number = submitted.reception_number.clone().unwrap_or_default();
            let end = submitted.window_end.clone();
            let problem = submitted.eligibility_problem.clone();
            let problem_left = problem.is_some();
            // 健康保険証利用登録 on offer replaces the problem's words; under way, it hides them.
            let offer = insurance
                .as_ref()
                .filter(|u| u.state == "offered")
                .map(|u| u.refusal.clone());
            let problem =
                problem.filter(|_| insurance.as_ref().is_none_or(|u| u.state != "pending"));
            let progress = insurance.clone().filter(|u| u.state != "offered");
            let cancel = submitted
                .cancel_token
                .clone()
                .filter(|_| kind == ReceptionKind::OnlineCare && !submitted.withdrawn);
            EitherOf3::A(view! {
                <section class="card result" role="status">
                    <p class="label">{move || f().done_number}</p>
                    <p class="reception-number" data-testid="reception-number">{number}</p>
                    {match end {
                        Some(end) if !submitted.withdrawn => Either::Left(view! {
                            <p>{move || f().done_window}</p>
                            <p class="window-end" data-testid="window-end">{move || format_end(lang.get(), &end)}</p>
                        }),
                        _ => Either::Right(view! { <p data-testid="window-end">{move || f().done_no_medical}</p> }),
                    }}
                </section>
                {progress.map(|view| view! {
                    <crate::pages::insurance_use::Progress view problem_left/>
                })}
                {problem.map(|code| match offer.clone() {
                    Some(refusal) if code == crate::pages::insurance_use::OFFERED_FOR => Either::Left(view! {
                        <crate::pages::insurance_use::Offer link=link.clone() refusal/>
                    }),
                    _ => Either::Right(view! {
                        <section class="card notice" role="alert" data-testid="eligibility-problem">
                            <h2>{move || f().done_eligibility_problem}</h2>
                            <p>{move || code_message(lang.get(), &code)}</p>
                        </section>
                    }),
                })}
                {patient_device.then(|| view! {
                    <p class="card hint" data-testid="photo-id">{move || f().done_photo_id}</p>
                })}
                <crate::pages::manage::ReadsWhere link=Some(link.clone())/>
                {cancel.map(|token| view! {
                    <section class="card">
                        <a class="button secondary" href=format!("/cancel/{token}") data-testid="cancel-link">
                            {move || f().done_cancel}
                        </a>
                        <p class="hint-text">{move || f().done_cancel_hint}</p>
                    </section>
                })}
            })
        }
        "refused" => {
            let code = submitted.refusal.clone().unwrap_or_default();
            EitherOf3::B(view! {
                <section class="card notice" role="alert">
                    <p data-testid="refusal">{move || code_message(lang.get(), &code)}</p>
                    <p>{move || f().refused_next}</p>
                </section>
            })
        }
        _ => {
            let busy = submitted.backend_busy;
            EitherOf3::C(view! {
                <section class="card" role="status" aria-live="polite">
                    <p class="spinner" aria-hidden="true"></p>
                    <p data-testid="progress">
                        {move || if busy { f().progress_busy } else { f().progress_body }}
                    </p>
                </section>
            })
        }
    };
    Either::Right(view! {
        // While the backend has not answered, the page reloads itself (works without scripts).
        {(queued || insurance_busy).then(|| view! { <Meta http_equiv="refresh" content="2"/> })}
        <Screen view step=Step::Done heading>
            {body}
        </Screen>
    })
}

/// `/cancel/{token}`: withdraw all consents of one reception.
#[component]
pub fn Cancel(token: String) -> impl IntoView {
    let state = Resource::new(
        {
            let token = token.clone();
            move || token.clone()
        },
        cancel_view,
    );
    let t = use_texts();
    let f = use_flow_texts();
    let lang = use_lang();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || t().loading}</p> }>
            {move || { let token = token.clone(); Suspend::new(async move {
                match state.await {
                    Ok(Some(view)) => {
                        let (ja, en) = (view.institution_name_ja.clone(), view.institution_name_en.clone());
                        let name = Signal::derive(move || if lang.get() == Lang::Ja { ja.clone() } else { en.clone() });
                        let kind = view.kind;
                        let date = view.visit_date.clone();
                        EitherOf3::A(view! {
                            <Page title=Signal::derive(move || f().cancel_title.to_owned())>
                                <p class="step">{move || name.get()}</p>
                                <h1>{move || f().cancel_title}</h1>
                                <section class="card">
                                    <dl class="review">
                                        <dt>{move || f().review_kind}</dt>
                                        <dd>{move || t().kind(kind).title}</dd>
                                        <dt>{move || f().review_visit_date}</dt>
                                        <dd>{move || format_date(lang.get(), &date)}</dd>
                                        {view.reception_number.clone().map(|n| view! {
                                            <dt>{move || f().done_number}</dt>
                                            <dd>{n}</dd>
                                        })}
                                    </dl>
                                    {if view.withdrawn {
                                        Either::Left(view! { <p role="status" data-testid="cancelled">{move || f().cancel_done}</p> })
                                    } else {
                                        Either::Right(view! {
                                            <p>{move || f().cancel_body}</p>
                                            <form method="post" action=format!("/cancel/{token}")>
                                                <button type="submit" class="button danger" data-testid="cancel-button">
                                                    {move || f().cancel_button}
                                                </button>
                                            </form>
                                        })
                                    }}
                                </section>
                                <crate::pages::manage::ReadsWhere link=view.link_id.clone()/>
                            </Page>
                        })
                    }
                    Ok(None) => {
                        page_status(404);
                        EitherOf3::B(view! {
                            <crate::components::StatusPage
                                title=Signal::derive(move || f().cancel_title.to_owned())
                                body=Signal::derive(move || f().cancel_unknown.to_owned())
                            />
                        })
                    }
                    Err(_) => EitherOf3::C(server_error()),
                }
            })}}
        </Suspense>
    }
}

/// `/r/{link}/manage`: 同意照会・取消 with the card and PIN again.
#[component]
pub fn Manage(link: String) -> impl IntoView {
    // Any link that ever was: withdrawal never depends on the clinic.
    let state = Resource::new(
        {
            let link = link.clone();
            move || link.clone()
        },
        crate::api::manage_flow,
    );
    let t = use_texts();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || t().loading}</p> }>
            {move || { let link = link.clone(); Suspend::new(async move {
                match state.await {
                    Ok(FlowState::Open(view)) => EitherOf3::A(view! { <ManageScreen link view=*view/> }),
                    Ok(FlowState::Invalid(reason)) => EitherOf3::B(link_unusable(reason)),
                    Err(_) => EitherOf3::C(server_error()),
                }
            })}}
        </Suspense>
    }
}

#[component]
fn ManageScreen(link: String, view: FlowView) -> impl IntoView {
    let f = use_flow_texts();
    let name = institution_name(&view);
    let demo = view.landing.demo;
    view! {
        <Page title=Signal::derive(move || f().manage_title.to_owned()) demo>
            <p class="step">{move || name.get()}</p>
            <h1>{move || f().manage_title}</h1>
            <p class="card">{move || f().manage_lead}</p>
            // Without a session the page is one plain form: no WASM for it.
            {if view.has_session {
                Either::Left(view! {
                    <noscript>
                        <p class="card notice" role="alert">{move || f().card_needs_js}</p>
                    </noscript>
                    <ManageBody link demo/>
                })
            } else {
                Either::Right(view! {
                    <form method="post" action=format!("/r/{link}/start")>
                        <input type="hidden" name="next" value="manage"/>
                        <button type="submit" class="button wide" data-testid="manage-start">{move || f().manage_start}</button>
                    </form>
                })
            }}
        </Page>
    }
}

/// 同意照会・取消's part that runs in the browser (an island, for a patient with a session): the
/// card step until the card proves who the patient is, then the patient's receptions with their
/// read history, the change forms and 全て取消.
// An island of the off-path module only (feature `all-islands`; see lib.rs).
#[cfg_attr(any(feature = "ssr", feature = "all-islands"), island)]
#[cfg_attr(not(any(feature = "ssr", feature = "all-islands")), component)]
fn ManageBody(link: String, demo: bool) -> impl IntoView {
    let f = use_flow_texts();
    let t = use_texts();
    let lang = use_lang();
    let list: RwSignal<Option<crate::api::ManagedList>> = RwSignal::new(None);
    let failed: RwSignal<Option<String>> = RwSignal::new(None);
    // The outcome of the last change of consent, announced by a status line that is always in
    // the page (a live region must exist before its text changes to be read out). Focus moves
    // to it, since the list it concerns is rendered anew.
    let saved: RwSignal<Option<crate::pages::manage::Outcome>> = RwSignal::new(None);
    let status_ref = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if saved.get().is_some()
            && let Some(line) = status_ref.get_untracked()
        {
            let _ = line.focus();
        }
    });
    let withdraw = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::pages::card_step::submit::withdraw_all().await {
                Ok(updated) => {
                    saved.set(None);
                    list.set(Some(updated));
                }
                Err(code) => failed.set(Some(code)),
            }
        });
    };
    view! {
        {
            // The card step until the list is shown (a memo: once, not on every change).
            let unproven = Memo::new(move |_| list.with(Option::is_none));
            move || unproven.get().then(|| view! {
                <crate::pages::card_step::CardWays
                    link=link.clone()
                    demo
                    purpose=crate::pages::card_step::Purpose::Manage(list)
                />
            })
        }
        {move || failed.get().map(|code| view! {
            <p class="card notice" role="alert">{code_message(lang.get(), &code)}</p>
        })}
        <p
            class="manage-status"
            role="status"
            tabindex="-1"
            node_ref=status_ref
            data-testid="manage-status"
        >
            {move || saved.get().map(|o| crate::pages::manage::outcome_message(lang.get(), &o))}
        </p>
        {move || list.get().map(|managed| {
            let any_open = managed.receptions.iter().any(|r| !r.withdrawn);
            let earlier_unknown = managed.earlier_cards_unknown;
            view! {
                <section class="card" aria-labelledby="managed-heading" role="status">
                    <h2 id="managed-heading">{move || f().manage_list}</h2>
                    {if managed.receptions.is_empty() {
                        Either::Left(view! { <p data-testid="managed-none">{move || f().manage_none}</p> })
                    } else {
                        Either::Right(view! {
                            <ul class="managed" data-testid="managed">
                                {managed.receptions.into_iter().map(|r| {
                                    let date = r.visit_date.clone();
                                    let end = r.window_end_display.clone();
                                    let kind = r.kind;
                                    let title_id = format!("reception-{}", r.id);
                                    let editor = r.changeable.then(|| view! {
                                        <crate::pages::manage::ConsentEditor
                                            item=r.clone()
                                            title_id=title_id.clone()
                                            list
                                            outcome=saved
                                        />
                                    });
                                    view! {
                                        <li data-testid="managed-item">
                                            <span id=title_id.clone()>
                                                <strong>{move || t().kind(kind).title}</strong>
                                                " · "
                                                {move || format_date(lang.get(), &date)}
                                                {r.reception_number.clone().map(|n| view! { " · " {n} })}
                                            </span>
                                            <br/>
                                            {move || format!(
                                                "{}: {} / {}: {}",
                                                f().consent_clinical,
                                                if r.clinical_medication { f().agree } else { f().disagree },
                                                f().consent_checkups,
                                                if r.checkups { f().agree } else { f().disagree },
                                            )}
                                            <br/>
                                            {if r.withdrawn {
                                                Either::Left(view! { <span class="tag" data-testid="managed-withdrawn">{move || f().manage_withdrawn}</span> })
                                            } else {
                                                let end = end.clone();
                                                Either::Right(view! {
                                                    <span>
                                                        {move || f().manage_until}
                                                        ": "
                                                        {move || end.as_deref().map(|e| format_end(lang.get(), e)).unwrap_or_else(|| f().review_no_window.to_owned())}
                                                    </span>
                                                })
                                            }}
                                            <crate::pages::manage::ReadHistory reads=r.reads.clone()/>
                                            {editor}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        })
                    }}
                    <crate::pages::manage::EarlierCards unknown=earlier_unknown/>
                    {any_open.then(|| view! {
                        <button type="button" class="button danger wide" data-testid="withdraw-all" on:click=withdraw>
                            {move || f().manage_withdraw_all}
                        </button>
                    })}
                </section>
            }
        })}
    }
}
