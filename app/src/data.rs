//! The data both sides share: what the page-data functions of [`crate::api`] return, and what the
//! server's storage answers through [`crate::ssr::PortalData`] (server side). Plain types, no
//! calls.

use serde::{Deserialize, Serialize};
use uketsuke_domain::ReceptionKind;

/// What the landing page of a reception link shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandingView {
    pub institution_name_ja: String,
    pub institution_name_en: String,
    pub kind: ReceptionKind,
    /// Fixed by a per-appointment link, `YYYY-MM-DD`.
    pub visit_date: Option<String>,
    /// False when the institution switched this kind of reception off.
    pub accepting: bool,
    /// Whether the link's fixed visit date can be registered for today.
    pub date_use: VisitDateUse,
    pub demo: bool,
}

/// Whether a reception can be registered today (JST) for a link's fixed visit date. An online
/// care visit may be registered up to 90 days ahead; the other kinds register for the day
/// itself. A link without a fixed date is always [`VisitDateUse::Today`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VisitDateUse {
    Today,
    /// Not yet: from this date (`YYYY-MM-DD`).
    From(String),
    /// The visit date has passed.
    Passed,
}

/// Why a link cannot be used. Unknown and malformed ids look the same from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvalidLink {
    Unknown,
    Expired,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    Open(LandingView),
    Invalid(InvalidLink),
}

/// The patient's choices so far, as the screens show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoicesView {
    /// `YYYY-MM-DD`
    pub visit_date: String,
    pub clinical_medication: bool,
    pub checkups: bool,
    /// `electronic` / `paper` (online care only).
    pub prescription_method: Option<String>,
}

/// A submitted reception, for the progress and done screens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedView {
    /// `queued`, `confirmed` or `refused`.
    pub status: String,
    /// Queued, and the backend has not answered several tries: tell the patient it waits.
    pub backend_busy: bool,
    /// The backend's reason code when refused.
    pub refusal: Option<String>,
    pub reception_number: Option<String>,
    /// The last minute of access, "2026-11-23 23:59 JST".
    pub window_end: Option<String>,
    pub withdrawn: bool,
    /// Registered, but the confirmation found no usable insurance record: the reason code
    /// (`under_jlis_review`, `card_not_registered_for_insurance`, `no_qualification`, or a
    /// backend refusal code).
    pub eligibility_problem: Option<String>,
    /// For the cancel link: on the first showing of the done screen only (the server hands it
    /// out once).
    pub cancel_token: Option<String>,
    pub visit_date: String,
    /// 健康保険証利用登録 through this reception: on offer (the eligibility problem is
    /// `card_not_registered_for_insurance`), under way, or done. `None` when it never applied.
    #[serde(default)]
    pub insurance_use: Option<InsuranceUseView>,
}

/// 健康保険証利用登録 through a reception, as the patient's screens show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuranceUseView {
    /// `offered` (not asked yet, or the last request was refused: see `refusal`), `pending`
    /// (queued for the backend) or `registered`.
    pub state: String,
    /// The backend's refusal code of the last request.
    pub refusal: Option<String>,
    /// When the card was registered, JST to the minute: "2026-12-01 13:05 JST".
    pub registered_at: Option<String>,
    /// Registered, and the eligibility fetched again has not arrived yet.
    pub eligibility_pending: bool,
    /// Pending, and the backend has not answered several tries (or the request is held for
    /// the institution to resolve): tell the patient, and what to do meanwhile.
    #[serde(default)]
    pub backend_busy: bool,
}

/// Everything a flow screen needs: the link, the session's choices, the reception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowView {
    pub landing: LandingView,
    /// A session cookie for this link is present and live.
    pub has_session: bool,
    /// JST today and the latest bookable date, `YYYY-MM-DD`.
    pub today: String,
    pub latest: String,
    pub choices: Option<ChoicesView>,
    /// The window's end if registered now with these choices.
    pub window_preview: Option<String>,
    pub submitted: Option<SubmittedView>,
    /// A staff member of this link's institution is signed in on this device (an institution
    /// device): the card step may offer 目視確認 and the done screen skips the photo-ID step.
    pub staff: Option<StaffOnDevice>,
    /// The session's form token, written into the forms that change the session (the server
    /// refuses those posts without it).
    #[serde(default)]
    pub form_token: Option<String>,
    /// The session ended with this page (the done screen on an institution device): the
    /// response tells the browser to drop the session cookie.
    #[serde(default)]
    pub session_ended: bool,
}

/// The staff member signed in on an institution device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffOnDevice {
    /// The staff ID (2–8 letters or digits).
    pub login_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowState {
    Open(Box<FlowView>),
    Invalid(InvalidLink),
}

/// What the cancel page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelInfo {
    pub institution_name_ja: String,
    pub institution_name_en: String,
    pub kind: ReceptionKind,
    pub visit_date: String,
    pub reception_number: Option<String>,
    pub withdrawn: bool,
    /// The link the reception was made through: its 同意照会 page holds the read history.
    #[serde(default)]
    pub link_id: Option<String>,
}

/// One reception in 同意照会 (the patient's own list, after proving their card again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedItem {
    /// The reception's id: the page names it when it saves a change of consent.
    pub id: String,
    pub status: String,
    pub kind: ReceptionKind,
    pub visit_date: String,
    pub reception_number: Option<String>,
    pub window_end_display: Option<String>,
    pub withdrawn: bool,
    pub clinical_medication: bool,
    pub checkups: bool,
    /// The consents can be changed now (medical information offered, confirmed, not withdrawn,
    /// window open), as the server decided.
    pub changeable: bool,
    /// 閲覧履歴: every read of this reception's information by the institution, oldest first.
    #[serde(default)]
    pub reads: Vec<ReadItem>,
}

/// One read of a reception's information by the institution, as its audit log recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadItem {
    /// JST, to the minute: `YYYY-MM-DD HH:MM`.
    pub at: String,
    /// `eligibility` (資格情報), `clinical_medication` (診療・薬剤情報) or `checkups`
    /// (特定健診等情報).
    pub category: String,
    /// The reader's role then: `administrator`, `general` or `medical_viewer`.
    pub role: String,
    /// The reader's staff ID (the name is never shown).
    pub staff_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedList {
    pub receptions: Vec<ManagedItem>,
    /// The backend could not name the person, so receptions made with an earlier card (before
    /// a renewal or reissue) are missing from the list; the page says where to withdraw them.
    #[serde(default)]
    pub earlier_cards_unknown: bool,
}
