//! `uketsuke-server`: reads the configuration, starts the server, prints where to open it; or
//! runs one of the console's subcommands (see `console::cli`).
//!
//! `uketsuke-server [--create]` starts the server. A production start on a database that does
//! not exist yet (or holds no Uketsuke tables) stops unless `--create` is given; a demo start
//! creates its database, since a demo starts from nothing (`scripts/run.sh`).

use std::process::ExitCode;

use uketsuke_server::{
    Server,
    config::{Config, LogFormat, Mode},
    shutdown_signal, storage, telemetry,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if matches!(args.as_slice(), [one] if one == "--version" || one == "-V") {
        println!("uketsuke-server {VERSION}");
        return ExitCode::SUCCESS;
    }
    // Subcommands (`admin create`, `api-token create`, `audit verify`, …) run and exit.
    let create = args.iter().any(|a| a == "--create");
    if !args.iter().all(|a| a == "--create")
        && let Some(code) = uketsuke_server::console::cli::run(&args).await
    {
        return code;
    }
    let config = match Config::from_process() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}", telemetry::early_line(&error.to_string()));
            return ExitCode::from(2);
        }
    };
    if let Err(error) = config.check_site_root() {
        eprintln!("{}", telemetry::early_line(&error.to_string()));
        return ExitCode::from(2);
    }
    telemetry::init(&config);
    let json = config.log_format == LogFormat::Json;
    let fail = |message: String| {
        if json {
            tracing::error!("{message}");
        } else {
            eprintln!("uketsuke: {message}");
        }
    };
    let mode = match config.mode {
        Mode::Demo => "demo",
        Mode::Production => "production",
    };
    let database = storage::kind(&config.database_url);
    tracing::info!(
        version = VERSION,
        mode,
        listen = %config.listen,
        database,
        origin = %config.origin_string(),
        "uketsuke-server starting"
    );
    if config.mode == Mode::Production && !create {
        match storage::is_new(&config.database_url).await {
            Ok(false) => {}
            Ok(true) => {
                fail(format!(
                    "cannot start: the database {} does not exist yet (or holds no Uketsuke \
                     tables); check database_url, or start once with --create to make it",
                    storage::redacted_url(&config.database_url)
                ));
                return ExitCode::from(1);
            }
            Err(error) => {
                fail(format!("cannot start: {error}"));
                return ExitCode::from(1);
            }
        }
    }
    let server = match Server::build(config).await {
        Ok(server) => server,
        Err(error) => {
            fail(format!("cannot start: {error}"));
            return ExitCode::from(1);
        }
    };
    // Listen for SIGTERM and Ctrl-C before announcing that we run: a supervisor (or a test) may
    // stop us right after the announcement. One poll installs the handlers.
    let mut shutdown = Box::pin(shutdown_signal());
    if futures_util::FutureExt::now_or_never(&mut shutdown).is_some() {
        return ExitCode::SUCCESS;
    }
    let base = server.base_url();
    let listen = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if json {
        let demo_links: Vec<String> = server
            .demo_links()
            .iter()
            .map(|link| format!("{} {base}/r/{}", link.kind.code(), link.id))
            .collect();
        tracing::info!(
            version = VERSION,
            mode,
            listen,
            database,
            origin = %server.state().config.origin_string(),
            url = %base,
            console = %format!("{base}/console"),
            demo_links = ?demo_links,
            "Uketsuke is running"
        );
    } else {
        tracing::info!(version = VERSION, mode, listen, database, "listening");
        println!("Uketsuke is running at {base}");
        for link in server.demo_links() {
            println!("  demo {:<17} {base}/r/{}", link.kind.code(), link.id);
        }
        if let Some(first) = server.demo_links().first() {
            println!("Open the demo landing page: {base}/r/{}", first.id);
        }
        println!("Staff console: {base}/console");
    }
    let code = match server.run(shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(error) => {
            fail(format!("server error: {error}"));
            1
        }
    };
    // Exit now: returning would drop the runtime, which waits for blocking tasks without a
    // bound. The database is closed; nothing else holds state.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}
