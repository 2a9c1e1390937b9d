//! Structured logs with `tracing`. Nothing personal is ever logged: spans carry route patterns,
//! not paths, and handlers log outcomes, not data.
//!
//! `log_format = "json"`: every line on stdout is one JSON object, the start-up report
//! included. `text`: one readable line per event, coloured only when stdout is a terminal
//! (and `NO_COLOR` is not set), so files and journald get no escape codes.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{Config, LogFormat};

/// Whether text logs may carry colour codes: stdout is a terminal and `NO_COLOR` is unset.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match config.log_format {
        LogFormat::Text => fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(colour())
            .try_init(),
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_ansi(false)
            .try_init(),
    };
    let _ = result;
}

/// A line for a failure before the configuration (and so the log format) is known: JSON when
/// `UKETSUKE_LOG_FORMAT=json` is in the environment, else the text as it is.
pub fn early_line(text: &str) -> String {
    let json = std::env::var("UKETSUKE_LOG_FORMAT").is_ok_and(|v| v.trim() == "json");
    if json {
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "fields": { "message": text },
        })
        .to_string()
    } else {
        text.to_owned()
    }
}
