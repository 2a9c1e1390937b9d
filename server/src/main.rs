//! `uketsuke-server`: reads the configuration, starts the server, prints where to open it.

use std::process::ExitCode;

use uketsuke_server::{Server, config::Config, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
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
    let base = server.base_url();
    println!("Uketsuke is running at {base}");
    for link in server.demo_links() {
        println!("  demo {:<17} {base}/r/{}", link.kind.code(), link.id);
    }
    if let Some(first) = server.demo_links().first() {
        println!("Open the demo landing page: {base}/r/{}", first.id);
    }
    match server.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("uketsuke: server error: {error}");
            ExitCode::from(1)
        }
    }
}
