//! The server binary as an operator meets it: a bad setting stops it with one line naming the
//! key; SIGTERM stops it cleanly after it has printed where to open it.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_uketsuke-server");

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (key, value) in [
        ("UKETSUKE_LISTEN", "nowhere"),
        ("UKETSUKE_MODE", "live"),
        ("UKETSUKE_DATABASE_URL", "mysql://x"),
        ("UKETSUKE_PUBLIC_ORIGIN", "https://x.jp/path"),
    ] {
        let output = Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            // The mode has no default; the bad value is the one under test.
            .env("UKETSUKE_MODE", "demo")
            .env(key, value)
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{key}: {stderr}");
        assert!(
            stderr.starts_with(&format!("configuration error: {key}: ")),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    }
    // Nothing was created on the way out.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn a_bad_config_file_names_the_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("uketsuke.toml"), "listen = 3000\n").expect("write");
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listen (uketsuke.toml): must be a string"),
        "{stderr}"
    );
}

#[test]
fn prints_the_demo_url_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("UKETSUKE_LISTEN", "127.0.0.1:0")
        .env("UKETSUKE_MODE", "demo")
        .env("UKETSUKE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut landing = None;
    for line in lines.by_ref() {
        let line = line.expect("utf-8 output");
        if let Some(url) = line.strip_prefix("Open the demo landing page: ") {
            landing = Some(url.to_owned());
            break;
        }
    }
    let landing = landing.expect("the landing URL is printed");
    assert!(
        landing.starts_with("http://localhost:") && landing.contains("/r/"),
        "{landing}"
    );
    // The default database was created under ./data/ of the working directory.
    assert!(dir.path().join("data").join("uketsuke.db").exists());

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit after SIGTERM: {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
