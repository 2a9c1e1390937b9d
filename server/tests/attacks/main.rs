//! The attacks of issue 12 ("Security hardening"), each performed against a real running server
//! and shown refused: one test per attack, one module per section of the review, gathered in
//! this one test binary so that the whole set runs together
//! (`cargo test -p uketsuke-server --test attacks`). Add new attacks to the module of their kind.

#[path = "../common/mod.rs"]
mod common;

mod demo;
mod floods;
mod handoff;
mod markup;
mod patient;
mod revocation;
mod sessions;
mod staff;
