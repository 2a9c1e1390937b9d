//! `--count-statements`: the database statements a phase ran, per registration, by statement.
//! sqlx reports every statement it runs as a `sqlx::query` event at debug level; a layer of
//! this process's subscriber counts them by their text (the load example's own reads of its
//! figures, marked [`OWN`], are left out). Transaction control (`BEGIN IMMEDIATE`, `COMMIT`,
//! `ROLLBACK`) is not a statement sqlx reports: each transaction is two more round trips.
//!
//! Counting costs the server's statements a little time each, so a counting run's rates are
//! not the figures; count in a run of its own.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    EnvFilter, Layer, filter::Targets, layer::Context, layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// The mark at the start of the load example's own statements, which are not counted.
pub const OWN: &str = "/* load */";

static COUNTS: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

struct Counter;

#[derive(Default)]
struct Text {
    summary: String,
    statement: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.statement),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "summary" | "db.statement") {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for Counter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let sql = if text.statement.trim().is_empty() {
            text.summary
        } else {
            text.statement
        };
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        if sql.starts_with(OWN) {
            return;
        }
        if let Ok(mut counts) = COUNTS.lock() {
            *counts.entry(sql).or_default() += 1;
        }
    }
}

/// Installs this process's subscriber: warnings as the server logs them, and the counter.
pub fn install() {
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("warn")))
        .with(Counter.with_filter(Targets::new().with_target("sqlx::query", Level::DEBUG)))
        .try_init();
}

/// The counts so far, emptied.
pub fn take() -> HashMap<String, u64> {
    COUNTS
        .lock()
        .map(|mut counts| std::mem::take(&mut *counts))
        .unwrap_or_default()
}

/// Whose statement this is: the server's SQL numbers its parameters (`$1`), the backend
/// simulator's (in this process too, with a database of its own) does not (`?`). Of the
/// statements without parameters, the simulator's next-number read names its `registrations`
/// table (the server has none), connection set-up is a `PRAGMA`, and the rest is the server's.
fn whose(sql: &str) -> &'static str {
    let numbered = sql
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && w[1].is_ascii_digit());
    if numbered {
        "server"
    } else if sql.contains('?') || sql.contains(" registrations") {
        "simulator"
    } else if sql.starts_with("PRAGMA") {
        "connection set-up"
    } else {
        "server"
    }
}

/// Prints a phase's statements per registration, the server's first, the most frequent first.
pub fn print(name: &str, counts: &HashMap<String, u64>, registrations: usize) {
    let per = |n: u64| n as f64 / registrations.max(1) as f64;
    for side in ["server", "simulator", "connection set-up"] {
        let mut rows: Vec<(&String, &u64)> = counts
            .iter()
            .filter(|(sql, _)| whose(sql) == side)
            .collect();
        let total: u64 = rows.iter().map(|(_, n)| **n).sum();
        let label = format!("{side} statements per registration");
        println!(
            "  {name} {label:<40} {:>9.2}   ({total} for {registrations}{})",
            per(total),
            if side == "server" {
                "; each transaction adds BEGIN and COMMIT"
            } else {
                ""
            }
        );
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (sql, n) in rows {
            let short: String = sql.chars().take(110).collect();
            println!("    {:>6.2}  {short}", per(*n));
        }
    }
}
