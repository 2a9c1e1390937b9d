//! `backend-sim` as an operator runs it for a trial on one machine: an institution's key
//! registered from the document `uketsuke-server institution key` prints (`--institution-key`),
//! kept in its `--db` across restarts, and the test CA with its revocation list written out
//! (`--write-jpki`) for a production-mode server's `jpki_ca` and `jpki_crl`.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use p256::ecdsa::SigningKey;
use uketsuke_backend::contract::key_registration::KeyRegistration;
use uketsuke_backend::contract::signing::RequestSigner;
use uketsuke_backend::simulator::{client::SignedClient, keys};
use uketsuke_domain::InstitutionCode;

const BIN: &str = env!("CARGO_BIN_EXE_backend-sim");

/// A running `backend-sim`; killed when dropped.
struct Sim {
    child: Child,
    base: String,
    lines: Vec<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Sim {
    let mut child = Command::new(BIN)
        .arg("127.0.0.1:0")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("backend-sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut base = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("UTF-8");
        if let Some(url) = line.strip_prefix("backend simulator listening on ") {
            base = Some(url.to_owned());
        }
        let done = line.starts_with("  backend_key = ");
        lines.push(line);
        if done {
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("no address printed: {lines:?}"));
    Sim { child, base, lines }
}

/// The status of a signed request with `key` under `key_id` to a path no operation has: 404
/// once the key is known (the simulator authenticates first), 401 `unknown_key` otherwise.
async fn status_with(base: &str, key_id: &str, key: &SigningKey) -> u16 {
    let signer = RequestSigner::new(key_id, key.clone()).expect("signer");
    let client = SignedClient::new(
        base,
        signer,
        keys::backend_verifying_key(),
        keys::BACKEND_KEY_ID,
    )
    .expect("client");
    let path = "/v1/nothing-here";
    let (headers, _) = client.sign(path, b"{}").expect("sign");
    client
        .send_raw(path, &headers.pairs(), b"{}".to_vec())
        .await
        .expect("answer")
        .status
}

#[tokio::test]
async fn an_institution_key_document_registers_the_key_and_the_test_ca_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = SigningKey::from_slice(&[42u8; 32]).expect("key");
    let code = InstitutionCode::with_check_digit("131765432").expect("code");
    let document = KeyRegistration::new(&code, "uk-trial-1", key.verifying_key());
    let key_file = dir.path().join("clinic-key.json");
    std::fs::write(&key_file, document.to_json()).expect("write");
    let db = dir.path().join("sim.db").display().to_string();
    let jpki = dir.path().join("jpki");

    // Without the document the key is unknown.
    let plain = start(&[]);
    assert_eq!(status_with(&plain.base, "uk-trial-1", &key).await, 401);
    // The printed answer key reads as uketsuke.toml takes it.
    let printed =
        uketsuke_backend::contract::signing::encode_verifying_key(&keys::backend_verifying_key());
    assert!(
        plain
            .lines
            .contains(&format!("  backend_key = \"{printed}\"")),
        "{:?}",
        plain.lines
    );
    drop(plain);

    // With it: known, and named at start.
    let key_arg = key_file.display().to_string();
    let jpki_arg = jpki.display().to_string();
    let registered = start(&[
        "--db",
        &db,
        "--institution-key",
        &key_arg,
        "--write-jpki",
        &jpki_arg,
    ]);
    assert!(
        registered
            .lines
            .iter()
            .any(|l| l == &format!("registered institution key uk-trial-1 of {}", code.as_str())),
        "{:?}",
        registered.lines
    );
    assert_eq!(status_with(&registered.base, "uk-trial-1", &key).await, 404);
    // Another key under the same id is not accepted.
    let other = SigningKey::from_slice(&[43u8; 32]).expect("key");
    assert_eq!(
        status_with(&registered.base, "uk-trial-1", &other).await,
        401
    );
    drop(registered);

    // The registration stays in the database across a restart without the option.
    let again = start(&["--db", &db]);
    assert_eq!(status_with(&again.base, "uk-trial-1", &key).await, 404);
    drop(again);

    // The test CA and a current list of it, as a server's jpki_ca and jpki_crl take them.
    let ca = std::fs::read(jpki.join("test-ca.der")).expect("CA written");
    let crl = std::fs::read(jpki.join("test-ca.crl")).expect("CRL written");
    assert_eq!(ca, keys::test_ca_certificate_der().expect("test CA"));
    let anchor = uketsuke_card::certs::TrustAnchor::from_der(&ca).expect("a CA certificate");
    let bundle = uketsuke_card::certs::TrustBundle::new(vec![anchor]).expect("bundle");
    let now = chrono::Utc::now().timestamp();
    let (_, list) = bundle
        .revocation_list_from_pem_or_der(&crl, now)
        .expect("a current list of that CA");
    assert!(!list.is_stale_at(now + 6 * 86_400, 0));

    // A bad document stops the simulator with a line naming the option.
    std::fs::write(&key_file, document.to_json().replace("ES256", "RS256")).expect("write");
    let refused = Command::new(BIN)
        .args(["127.0.0.1:0", "--institution-key", &key_arg])
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--institution-key") && stderr.contains("algorithm"),
        "{stderr}"
    );
}
