//! Test material (feature `test-mode`, Linux): a private pcscd with vpcd's virtual reader, so
//! tests reach a real pcsc-lite without touching the machine's own pcscd.
//!
//! pcscd (Debian 1.9.9) always listens on its compiled-in socket `/run/pcscd/pcscd.comm`
//! unless it is socket-activated: with `LISTEN_FDS=1` and `LISTEN_PID` equal to its own pid
//! it takes file descriptor 3 as its listening socket instead (`sd_listen_fds` in pcsc-lite's
//! `src/pcscdaemon.c`) and neither checks nor removes the default socket. Clients find it by
//! `PCSCLITE_CSOCK_NAME` (pcsc-lite's `winscard_msg.c`, `getSocketName`). So this module binds
//! a Unix socket in a private folder, hands it to pcscd as fd 3 (through `sh -c 'LISTEN_PID=$$
//! exec pcscd …'`, which keeps the pid), runs it in the foreground (`-f`) with its own
//! reader.conf folder (`-c`) naming vpcd on a free TCP port, and kills it when dropped. The
//! only shared file it writes is `/run/pcscd/pcscd.pid`, which clients do not read; where it
//! may not (unprivileged), pcscd logs that and goes on.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's vpcd driver (package `vsmartcard-vpcd`).
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// The environment variable pcsc-lite clients read the daemon's socket from.
pub const SOCKET_ENV: &str = "PCSCLITE_CSOCK_NAME";

/// A running private pcscd; killed on drop.
pub struct PrivatePcscd {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    vpcd: SocketAddr,
}

impl PrivatePcscd {
    /// Starts pcscd with its socket and reader.conf in `dir` (created) and vpcd on a free
    /// port of 127.0.0.1 (vpcd itself listens on every interface: vsmartcard's `opensock`).
    /// pcscd's log goes to `dir/pcscd.log`.
    pub fn start(dir: &Path) -> io::Result<Self> {
        let conf = dir.join("reader.conf.d");
        std::fs::create_dir_all(&conf)?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        std::fs::write(
            conf.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Uketsuke Virtual PCD\"\nDEVICENAME /dev/null:{port}\nLIBPATH {VPCD_DRIVER}\nCHANNELID {port}\n"
            ),
        )?;
        let socket = dir.join("pcscd.comm");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        let fd = listener.as_raw_fd();
        let log = std::fs::File::create(dir.join("pcscd.log"))?;
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                "export LISTEN_PID=$$; exec \"$0\" \"$@\"",
                "pcscd",
                "-f",
                "-i",
                "-c",
            ])
            .arg(&conf)
            .env("LISTEN_FDS", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: between fork and exec only dup2 and fcntl run, both async-signal-safe: the
        // listening socket goes to fd 3 without close-on-exec (dup2 onto itself keeps the
        // flag, hence the fcntl).
        unsafe {
            command.pre_exec(move || {
                if (fd != 3 && libc::dup2(fd, 3) == -1) || libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        drop(listener);
        let pcscd = PrivatePcscd {
            child,
            dir: dir.to_owned(),
            socket,
            vpcd: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        pcscd.wait_for_vpcd(Duration::from_secs(20))?;
        Ok(pcscd)
    }

    /// Waits until vpcd accepts connections (pcscd has loaded the driver); the probe
    /// connection is closed at once, which vpcd takes as a card that came and went.
    fn wait_for_vpcd(&self, wait: Duration) -> io::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            if std::net::TcpStream::connect_timeout(&self.vpcd, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "vpcd did not listen on {} (see {})",
                        self.vpcd,
                        self.dir.join("pcscd.log").display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's socket: set [`SOCKET_ENV`] to it for clients.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Where vpcd waits for the virtual card.
    pub fn vpcd(&self) -> SocketAddr {
        self.vpcd
    }

    /// pcscd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pcscd.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        // SIGTERM first, so pcscd removes its pid file; SIGKILL if it does not stop.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
