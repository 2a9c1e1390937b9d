//! The server's side of the confirmation backend: where it is and whether it answers. The
//! signed relay of registrations grows here.

use std::time::Duration;

use uketsuke_backend::contract::{CONTRACT_VERSION, HEALTH_PATH, Health};
use url::Url;

/// How to reach the backend.
#[derive(Clone)]
pub struct BackendClient {
    base: Url,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend URL cannot be joined with {0}")]
    Url(&'static str),
    #[error("backend did not answer: {0}")]
    Unreachable(reqwest::Error),
    #[error("backend answered {0}")]
    Status(u16),
    #[error("backend answer is not understood: {0}")]
    Malformed(String),
}

impl BackendClient {
    pub fn new(mut base: Url) -> Result<Self, reqwest::Error> {
        // Paths are joined relative to the base, so it must end in a slash.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(BackendClient { base, http })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }
}

/// Asks the backend whether it is up and speaks our contract version.
pub async fn check(client: &BackendClient) -> Result<(), BackendError> {
    let url = client
        .base
        .join(HEALTH_PATH.trim_start_matches('/'))
        .map_err(|_| BackendError::Url(HEALTH_PATH))?;
    let response = client
        .http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(BackendError::Unreachable)?;
    if !response.status().is_success() {
        return Err(BackendError::Status(response.status().as_u16()));
    }
    let health: Health = response
        .json()
        .await
        .map_err(|e| BackendError::Malformed(e.to_string()))?;
    if health.status != "ok" || health.contract != CONTRACT_VERSION {
        return Err(BackendError::Malformed(format!(
            "status {:?}, contract {}",
            health.status, health.contract
        )));
    }
    Ok(())
}
