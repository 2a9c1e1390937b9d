//! Wire types of the backend contract, version 1. Every path starts with `/v1/`.

use serde::{Deserialize, Serialize};

/// Path of the liveness probe the relay uses for its readiness check.
pub const HEALTH_PATH: &str = "/v1/health";

/// Answer of [`HEALTH_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"` when the backend accepts requests.
    pub status: String,
    /// Contract version the backend speaks.
    pub contract: u32,
}

pub const CONTRACT_VERSION: u32 = 1;
