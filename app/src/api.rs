//! What the pages ask the server for: the server functions that fetch the data of
//! [`crate::data`] (re-exported here, where the pages look for it). On the server the functions
//! call [`crate::ssr::PortalData`]; in the browser they are HTTP calls.

use leptos::prelude::*;

pub use crate::data::{
    CancelInfo, ChoicesView, FlowState, FlowView, InsuranceUseView, InvalidLink, LandingView,
    LinkState, ManagedItem, ManagedList, ReadItem, StaffOnDevice, SubmittedView,
};

/// Looks up a reception link for its landing page.
#[server(endpoint = "landing")]
pub async fn landing(link_id: String) -> Result<LinkState, ServerFnError> {
    let data = crate::ssr::portal_data()?;
    data.landing(&link_id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// The flow state of `link_id` for this browser's session.
#[server(endpoint = "flow")]
pub async fn flow(link_id: String) -> Result<FlowState, ServerFnError> {
    let data = crate::ssr::portal_data()?;
    let session = crate::ssr::session_cookie();
    let staff = crate::ssr::console_cookie();
    // Taken before the call: the session may end with this page (the done screen on an
    // institution device), and then the browser is told to drop its cookie.
    let state = data
        .flow(&link_id, session.as_deref(), staff.as_deref())
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    if matches!(&state, FlowState::Open(view) if view.session_ended) {
        crate::ssr::clear_session_cookie();
    }
    Ok(state)
}

/// The flow state of `link_id` for 同意照会・取消: a revoked, expired or switched-off link is
/// still shown (the patient can see and withdraw their consents); only an unknown one is not.
#[server(endpoint = "manage-flow")]
pub async fn manage_flow(link_id: String) -> Result<FlowState, ServerFnError> {
    let data = crate::ssr::portal_data()?;
    let session = crate::ssr::session_cookie();
    let staff = crate::ssr::console_cookie();
    data.manage_flow(&link_id, session.as_deref(), staff.as_deref())
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// The reception of a cancel token, if the token is known.
#[server(endpoint = "cancel-view")]
pub async fn cancel_view(token: String) -> Result<Option<CancelInfo>, ServerFnError> {
    let data = crate::ssr::portal_data()?;
    data.cancel_view(&token)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}
