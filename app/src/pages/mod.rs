//! Screens, one module each.

pub mod card_step;
pub mod eid;
pub mod flow;
pub mod home;
pub mod insurance_use;
pub mod landing;
pub mod manage;
pub mod not_found;

/// Sets the HTTP status of the page on the server; nothing to do in the browser.
pub(crate) fn page_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let Ok(status) = http::StatusCode::from_u16(code) {
        crate::ssr::set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}
