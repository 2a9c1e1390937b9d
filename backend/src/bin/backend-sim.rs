//! Standalone reference simulator of the confirmation backend.
//! Usage: `backend-sim [ADDR]` (default 127.0.0.1:3900).

use std::net::SocketAddr;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let arg = std::env::args().nth(1);
    let addr: SocketAddr = match arg.as_deref().unwrap_or("127.0.0.1:3900").parse() {
        Ok(addr) => addr,
        Err(_) => {
            eprintln!("backend-sim: the argument must be a socket address such as 127.0.0.1:3900");
            std::process::exit(2);
        }
    };
    match uketsuke_backend::simulator::spawn(addr).await {
        Ok(running) => {
            println!("backend simulator listening on {}", running.base_url());
            // Serve until the process is stopped.
            std::future::pending::<()>().await;
        }
        Err(error) => {
            eprintln!("backend-sim: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    }
}
