//! Plain types and rules of the reception domain: reception kinds, consent windows,
//! institution and insurer codes, eligibility records and their information control, the rule
//! for short text that staff set (`text`). No I/O here, so every rule is testable as a pure function and the same code runs on the server and
//! in the browser.

pub mod codes;
pub mod eligibility;
pub mod kind;
pub mod text;
pub mod window;

pub use codes::{CodeError, InstitutionCode, InsurerNumber, PublicPayerNumber, normalize_digits};
pub use kind::ReceptionKind;
pub use window::{Window, WindowEnd, WindowInput, is_open, window};
