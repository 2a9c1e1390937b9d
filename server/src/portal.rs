//! The server's implementation of what the UI's pages read while they render. Errors are logged here
//! with their detail and reach the browser only as a generic message.

use async_trait::async_trait;
use chrono::Days;
use uketsuke_app::{
    api::{
        CancelInfo, ChoicesView, FlowState, FlowView, InsuranceUseView, LandingView, LinkState,
        StaffOnDevice, SubmittedView,
    },
    ssr::{DataError, PortalData},
};
use uketsuke_backend::contract::PrescriptionMethod;
use uketsuke_domain::{WindowInput, window, window::jst_date};

use std::sync::Arc;

use crate::{
    clock::Clock,
    config::Config,
    storage::{self, Db, links, outbox, receptions},
};

pub struct Portal {
    db: Db,
    clock: Clock,
    /// The session cookie's name and attributes follow the public origin's scheme.
    config: Arc<Config>,
}

impl Portal {
    pub fn new(db: Db, clock: Clock, config: Arc<Config>) -> Self {
        Portal { db, clock, config }
    }
}

fn hide(error: storage::StorageError) -> DataError {
    tracing::error!(%error, "storage error");
    DataError("temporarily unavailable".to_owned())
}

/// Receptions queued after this many failed sends are shown as "the backend is busy".
const BUSY_AFTER_ATTEMPTS: i64 = 3;

/// The reception as the progress and done screens show it. `eligibility_waiting`: confirmed,
/// but its eligibility is still on its way; shown as in progress (see `flow`).
fn submitted_view(
    reception: &receptions::Reception,
    cancel_token: Option<String>,
    eligibility_problem: Option<String>,
    insurance_use: Option<InsuranceUseView>,
    eligibility_waiting: bool,
) -> SubmittedView {
    let window = reception.window();
    let (status, busy, refusal) = match &reception.status {
        receptions::Status::Queued { attempts } => {
            ("queued", *attempts >= BUSY_AFTER_ATTEMPTS, None)
        }
        receptions::Status::Confirmed if eligibility_waiting => ("queued", false, None),
        receptions::Status::Confirmed => ("confirmed", false, None),
        receptions::Status::Refused { code } => ("refused", false, Some(code.clone())),
    };
    SubmittedView {
        status: status.to_owned(),
        backend_busy: busy,
        refusal,
        reception_number: reception.reception_number.clone(),
        window_end: window.and_then(|w| w.display_end_jst()),
        withdrawn: reception.withdrawn_at.is_some(),
        eligibility_problem,
        cancel_token,
        visit_date: reception.visit_date.format("%Y-%m-%d").to_string(),
        insurance_use,
    }
}

#[async_trait]
impl PortalData for Portal {
    async fn landing(&self, link_id: &str) -> Result<LinkState, DataError> {
        storage::links::landing(&self.db, link_id, self.clock.now_ms())
            .await
            .map_err(hide)
    }

    async fn flow(
        &self,
        link_id: &str,
        session: Option<&str>,
        staff_session: Option<&str>,
    ) -> Result<FlowState, DataError> {
        let now_ms = self.clock.now_ms();
        let link = match links::resolve(&self.db, link_id, now_ms)
            .await
            .map_err(hide)?
        {
            Ok(link) => link,
            Err(invalid) => return Ok(FlowState::Invalid(invalid)),
        };
        self.flow_of(link, session, staff_session).await
    }

    async fn manage_flow(
        &self,
        link_id: &str,
        session: Option<&str>,
        staff_session: Option<&str>,
    ) -> Result<FlowState, DataError> {
        // 同意照会・取消 takes a revoked, expired or switched-off link too (withdrawal never
        // depends on the clinic); only a link that never was is unknown.
        match links::resolve_for_manage(&self.db, link_id, self.clock.now_ms())
            .await
            .map_err(hide)?
        {
            Some(managed) => self.flow_of(managed.link, session, staff_session).await,
            None => Ok(FlowState::Invalid(uketsuke_app::api::InvalidLink::Unknown)),
        }
    }

    async fn cancel_view(&self, token: &str) -> Result<Option<CancelInfo>, DataError> {
        self.cancel_view_of(token).await
    }

    fn session_cookie_name(&self) -> &'static str {
        crate::http::cookies::session_cookie_name(&self.config)
    }

    fn clear_session_cookie(&self) -> String {
        crate::http::cookies::clear_session_cookie(&self.config)
    }

    fn console_cookie_name(&self) -> &'static str {
        crate::console::session::cookie_name(&self.config)
    }
}

impl Portal {
    /// The flow state of a link already resolved (open, or for management any known link).
    async fn flow_of(
        &self,
        link: links::OpenLink,
        session: Option<&str>,
        staff_session: Option<&str>,
    ) -> Result<FlowState, DataError> {
        let now_ms = self.clock.now_ms();
        let now = self.clock.now();
        let today = jst_date(now);
        let session = match session {
            Some(id) => receptions::session(&self.db, id, now_ms)
                .await
                .map_err(hide)?
                .filter(|s| s.link_id == link.id),
            None => None,
        };
        let choices = session.as_ref().and_then(|s| s.choices);
        // Reading the page is not console activity: the staff session is not touched.
        let staff = match staff_session.and_then(crate::console::session::hash_token) {
            Some(hash) => crate::console::session::lookup(&self.db, &hash, now_ms, false)
                .await
                .map_err(hide)?
                .filter(|staff| staff.institution_id == link.institution_id)
                .map(|staff| StaffOnDevice {
                    login_id: staff.login_id,
                    name: staff.name,
                }),
            None => None,
        };
        let window_preview = choices.and_then(|c| {
            window(&WindowInput {
                kind: link.kind,
                registered_at: now,
                visit_date: Some(c.visit_date),
                home_visits: Vec::new(),
                withdrawn_at: None,
            })
            .display_end_jst()
        });
        let mut session_ended = false;
        let submitted = match session
            .as_ref()
            .zip(session.as_ref().and_then(|s| s.reception_id.clone()))
        {
            Some((session, id)) => {
                match receptions::get(&self.db, &id).await.map_err(hide)? {
                    Some(r) => {
                        // The done screen is shown once (its cancel link with it). Eligibility
                        // follows the confirmation by a moment: while the backend answers, the
                        // screen waits for it (as in progress, reloading itself), so that what
                        // it says about eligibility, and the offer of 健康保険証利用登録, is
                        // there on that one showing. A request the backend failed to answer
                        // BUSY_AFTER_ATTEMPTS times, or one held, holds nobody back.
                        let eligibility_waiting = r.status == receptions::Status::Confirmed
                            && r.withdrawn_at.is_none()
                            && outbox::in_flight(
                                &self.db,
                                &r.id,
                                outbox::Operation::Eligibility,
                                BUSY_AFTER_ATTEMPTS,
                            )
                            .await
                            .map_err(hide)?;
                        let settled = !matches!(r.status, receptions::Status::Queued { .. })
                            && !eligibility_waiting;
                        // The done screen shows the cancel token once: the first rendering of
                        // the confirmed screen takes it, a reload (or a second tab) finds none.
                        let show_cancel = r.status == receptions::Status::Confirmed
                            && r.withdrawn_at.is_none()
                            && !eligibility_waiting
                            && receptions::take_cancel_token(&self.db, session)
                                .await
                                .map_err(hide)?;
                        let cancel = session.cancel_token.clone().filter(|_| show_cancel);
                        let (_, mut insurance_use, problem) =
                            crate::http::patient::insurance_use::eligibility_and_use(&self.db, &r)
                                .await
                                .map_err(hide)?;
                        // On an institution device 健康保険証利用登録 is not offered: the
                        // session must end with the done screen (below), and the institution
                        // registers cards at its own card reader (顔認証付きカードリーダー).
                        if staff.is_some() {
                            insurance_use.take_if(|u| u.state == "offered");
                        }
                        // A registration under way needs this session until it is answered.
                        let insurance_use_open = insurance_use.as_ref().is_some_and(|u| {
                            u.state == "pending"
                                || (u.state == "registered" && u.eligibility_pending)
                        });
                        // On an institution device the patient's session ends with the done
                        // screen: the next patient at the device cannot reopen it.
                        if settled && staff.is_some() && !insurance_use_open {
                            receptions::end_session(&self.db, &session.id)
                                .await
                                .map_err(hide)?;
                            session_ended = true;
                        }
                        Some(submitted_view(
                            &r,
                            cancel,
                            problem,
                            insurance_use,
                            eligibility_waiting,
                        ))
                    }
                    None => None,
                }
            }
            None => None,
        };
        let date_use = link.date_use(today);
        Ok(FlowState::Open(Box::new(FlowView {
            landing: LandingView {
                institution_name_ja: link.institution_name_ja,
                institution_name_en: link.institution_name_en,
                kind: link.kind,
                visit_date: link.visit_date.map(|d| d.format("%Y-%m-%d").to_string()),
                date_use,
                accepting: link.accepting,
                demo: link.demo,
            },
            has_session: session.is_some(),
            today: today.format("%Y-%m-%d").to_string(),
            latest: (today + Days::new(crate::storage::links::MAX_DAYS_AHEAD))
                .format("%Y-%m-%d")
                .to_string(),
            choices: choices.map(|c| ChoicesView {
                visit_date: c.visit_date.format("%Y-%m-%d").to_string(),
                clinical_medication: c.consent.clinical_medication,
                checkups: c.consent.checkups,
                prescription_method: c
                    .prescription
                    .map(|p| PrescriptionMethod::code(p).to_owned()),
            }),
            window_preview,
            submitted,
            staff,
            form_token: session
                .as_ref()
                .filter(|_| !session_ended)
                .map(|s| crate::http::patient_forms::form_token(&s.token)),
            session_ended,
        })))
    }

    async fn cancel_view_of(&self, token: &str) -> Result<Option<CancelInfo>, DataError> {
        let Some(id) = receptions::by_cancel_token(&self.db, token)
            .await
            .map_err(hide)?
        else {
            return Ok(None);
        };
        let Some(reception) = receptions::get(&self.db, &id).await.map_err(hide)? else {
            return Ok(None);
        };
        let names = sqlx::query_as::<_, (String, String)>(
            "SELECT name_ja, name_en FROM institutions WHERE id = $1",
        )
        .bind(&reception.institution_id)
        .fetch_optional(&self.db)
        .await
        .map_err(|e| hide(e.into()))?;
        let (name_ja, name_en) = names.unwrap_or_default();
        Ok(Some(CancelInfo {
            institution_name_ja: name_ja,
            institution_name_en: name_en,
            kind: reception.kind,
            visit_date: reception.visit_date.format("%Y-%m-%d").to_string(),
            reception_number: reception.reception_number.clone(),
            withdrawn: reception.withdrawn_at.is_some(),
            link_id: receptions::link_of(&self.db, &id).await.map_err(hide)?,
        }))
    }
}
