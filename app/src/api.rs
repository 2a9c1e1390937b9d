//! What the pages ask the server for: the functions that fetch the data of [`crate::data`]
//! (re-exported here, where the pages look for it) while the server renders a page, through
//! [`crate::ssr::PortalData`]. The data travels to the browser inside the page.

pub use crate::data::{
    CancelInfo, ChoicesView, FlowState, FlowView, InsuranceUseView, InvalidLink, LandingView,
    LinkState, ManagedItem, ManagedList, ReadItem, StaffOnDevice, SubmittedView, VisitDateUse,
};

/// Why a page's data could not be had. Detail stays on the server (logged there); the page
/// shows its server-error screen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("the page's data is not available")]
pub struct Unavailable;

/// Looks up a reception link for its landing page.
pub async fn landing(link_id: String) -> Result<LinkState, Unavailable> {
    #[cfg(feature = "ssr")]
    {
        let data = crate::ssr::portal_data()?;
        data.landing(&link_id).await.map_err(|_| Unavailable)
    }
    #[cfg(not(feature = "ssr"))]
    in_browser(link_id)
}

/// The flow state of `link_id` for this browser's session.
pub async fn flow(link_id: String) -> Result<FlowState, Unavailable> {
    #[cfg(feature = "ssr")]
    {
        let data = crate::ssr::portal_data()?;
        let session = crate::ssr::session_cookie();
        let staff = crate::ssr::console_cookie();
        // Taken before the call: the session may end with this page (the done screen on an
        // institution device), and then the browser is told to drop its cookie.
        let state = data
            .flow(&link_id, session.as_deref(), staff.as_deref())
            .await
            .map_err(|_| Unavailable)?;
        if matches!(&state, FlowState::Open(view) if view.session_ended) {
            crate::ssr::clear_session_cookie();
        }
        Ok(state)
    }
    #[cfg(not(feature = "ssr"))]
    in_browser(link_id)
}

/// The flow state of `link_id` for 同意照会・取消: a revoked, expired or switched-off link is
/// still shown (the patient can see and withdraw their consents); only an unknown one is not.
pub async fn manage_flow(link_id: String) -> Result<FlowState, Unavailable> {
    #[cfg(feature = "ssr")]
    {
        let data = crate::ssr::portal_data()?;
        let session = crate::ssr::session_cookie();
        let staff = crate::ssr::console_cookie();
        data.manage_flow(&link_id, session.as_deref(), staff.as_deref())
            .await
            .map_err(|_| Unavailable)
    }
    #[cfg(not(feature = "ssr"))]
    in_browser(link_id)
}

/// The reception of a cancel token, if the token is known.
pub async fn cancel_view(token: String) -> Result<Option<CancelInfo>, Unavailable> {
    #[cfg(feature = "ssr")]
    {
        let data = crate::ssr::portal_data()?;
        data.cancel_view(&token).await.map_err(|_| Unavailable)
    }
    #[cfg(not(feature = "ssr"))]
    in_browser(token)
}

/// In the browser a page's data comes with the page (its resources are serialized into the
/// server-rendered HTML, and no page changes its address in place), so a fetch from here means
/// the page and its data did not arrive together: shown as the server-error screen. There are
/// no HTTP endpoints for page data.
#[cfg(not(feature = "ssr"))]
fn in_browser<T>(_key: String) -> Result<T, Unavailable> {
    Err(Unavailable)
}
