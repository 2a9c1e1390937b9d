//! The confirmation backend (オンライン資格確認等システム) as Uketsuke sees it: the wire
//! contract shared by the relay and any backend, and the reference simulator that stands in for
//! the national system here.
//!
//! The contract types build everywhere; the simulator (an axum service) sits behind the
//! `simulator` feature so that nothing in the browser build pulls in a server.

pub mod contract;
#[cfg(feature = "simulator")]
pub mod simulator;
