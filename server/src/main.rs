//! `uketsuke-server`: reads the configuration, starts the server, prints where to open it; or
//! runs one of the console's subcommands (see `console::cli`).

use std::process::ExitCode;

use uketsuke_server::{Server, config::Config, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    // Subcommands (`admin create`, `api-token create`, `audit verify`) run and exit.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(code) = uketsuke_server::console::cli::run(&args).await {
        return code;
    }
    let config = match Config::from_process() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    let server = match Server::build(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("uketsuke: cannot start: {error}");
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
    println!("Uketsuke is running at {base}");
    for link in server.demo_links() {
        println!("  demo {:<17} {base}/r/{}", link.kind.code(), link.id);
    }
    if let Some(first) = server.demo_links().first() {
        println!("Open the demo landing page: {base}/r/{}", first.id);
    }
    println!("Staff console: {base}/console");
    match server.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("uketsuke: server error: {error}");
            ExitCode::from(1)
        }
    }
}
