//! Structured logs with `tracing`. Nothing personal is ever logged: spans carry route patterns,
//! not paths, and handlers log outcomes, not data.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match config.log_format {
        LogFormat::Text => fmt().with_env_filter(filter).with_target(false).try_init(),
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .try_init(),
    };
    let _ = result;
}
