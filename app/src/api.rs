//! What the pages ask the server for: the data types both sides share and the server functions
//! that fetch them. On the server the functions call [`crate::ssr::PortalData`]; in the browser
//! they are HTTP calls.

use leptos::prelude::*;
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
    pub demo: bool,
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

/// Looks up a reception link for its landing page.
#[server(endpoint = "landing")]
pub async fn landing(link_id: String) -> Result<LinkState, ServerFnError> {
    let data = crate::ssr::portal_data()?;
    data.landing(&link_id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}
