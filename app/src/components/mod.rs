//! Pieces shared by several screens.

mod page;

pub use page::{Page, StatusPage};
