//! The server's trust configuration with several generations of the JPKI user-authentication
//! CA (`server/src/trust.rs`): a bundle of CA certificates in one file or several, one CRL per
//! CA matched by the CA's key, each certificate checked against its own CA's list, an ended
//! generation's certificates refused as expired, and every unusable file a one-line start-up
//! error naming the configuration key and the file. The real J-LIS 2015 and 2023 CA
//! certificates (`../shared/field/jpki/`) load.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use uketsuke_card::test_ca::{TestCa, UserCertificateRequest, generate_rsa_key};
use uketsuke_server::config::Config;
use uketsuke_server::trust::{CardRefusal, Trust, TrustError};

/// J-LIS's generations' validity (`openssl x509 -dates` of the field files).
const GEN_2015: (u64, u64) = (1_445_310_493, 1_760_885_999); // 2015-10-20 .. 2025-10-19T14:59:59Z
const GEN_2023: (u64, u64) = (1_689_469_264, 2_005_052_399); // 2023-07-16 .. 2033-07-15T14:59:59Z
/// 2025-01-01T00:00:00Z: both generations current.
const BOTH: i64 = 1_735_689_600;
/// 2026-01-01T00:00:00Z: the 2015 generation has ended.
const AFTER_2015: i64 = 1_767_225_600;
const DAY: i64 = 86_400;

struct Cas {
    gen_2015: TestCa,
    gen_2023: TestCa,
    /// Same DN, a third key.
    rogue: TestCa,
    user: uketsuke_card::test_ca::RsaPublicKey,
}

/// RSA key generation is slow: once per test binary.
fn cas() -> &'static Cas {
    static CAS: OnceLock<Cas> = OnceLock::new();
    CAS.get_or_init(|| Cas {
        gen_2015: TestCa::generation(generate_rsa_key(201).expect("key"), GEN_2015.0, GEN_2015.1)
            .expect("2015 generation"),
        gen_2023: TestCa::generation(generate_rsa_key(202).expect("key"), GEN_2023.0, GEN_2023.1)
            .expect("2023 generation"),
        rogue: TestCa::from_seed(203).expect("rogue CA"),
        user: generate_rsa_key(204).expect("user key").to_public_key(),
    })
}

/// A user certificate issued 2024-01-01, valid to 2028-12-31 (past the 2015 generation's end).
fn certificate(ca: &TestCa, serial: u64) -> Vec<u8> {
    ca.issue_user_certificate(
        &UserCertificateRequest {
            serial,
            subject_common_name: format!("UKETSUKE TEST USER {serial}"),
            not_before_unix: 1_704_067_200,
            not_after_unix: 1_861_833_600,
        },
        &cas().user,
    )
    .expect("user certificate")
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

fn crl(ca: &TestCa, revoked: &[u64], now: i64) -> Vec<u8> {
    ca.issue_crl(revoked, now - DAY, now + 7 * DAY)
        .expect("CRL")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// bundle.pem (both generations), 2015.crl.pem (revokes 42), 2023.crl (DER, revokes 7).
fn files(dir: &Path, now: i64) -> (PathBuf, Vec<PathBuf>) {
    let c = cas();
    let bundle = [
        pem("CERTIFICATE", c.gen_2015.certificate_der()),
        b"\n".to_vec(),
        pem("CERTIFICATE", c.gen_2023.certificate_der()),
    ]
    .concat();
    (
        write(dir, "bundle.pem", &bundle),
        vec![
            write(
                dir,
                "2015.crl.pem",
                &pem("X509 CRL", &crl(&c.gen_2015, &[42], now)),
            ),
            write(dir, "2023.crl", &crl(&c.gen_2023, &[7], now)),
        ],
    )
}

fn error(result: Result<Trust, TrustError>) -> String {
    match result {
        Ok(_) => panic!("expected a start-up error"),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "one line: {message}");
            message
        }
    }
}

#[tokio::test]
async fn each_generation_verifies_and_is_checked_against_its_own_list() {
    let dir = tempfile::tempdir().expect("dir");
    let (bundle, crls) = files(dir.path(), BOTH);
    let trust = Trust::from_files(&[bundle], &crls, BOTH).expect("trust");
    assert_eq!(trust.bundle().anchors().len(), 2);
    let c = cas();
    let check = |der: Vec<u8>, now| {
        let trust = trust.clone();
        async move { trust.verify_certificate_only(&der, now).await }
    };
    // Serial 42 is revoked by the 2015 CA only, serial 7 by the 2023 CA only.
    assert_eq!(
        check(certificate(&c.gen_2015, 42), BOTH).await,
        Err(CardRefusal::CertificateRevoked)
    );
    let new_42 = check(certificate(&c.gen_2023, 42), BOTH)
        .await
        .expect("valid");
    assert_eq!(
        check(certificate(&c.gen_2023, 7), BOTH).await,
        Err(CardRefusal::CertificateRevoked)
    );
    let old_7 = check(certificate(&c.gen_2015, 7), BOTH)
        .await
        .expect("valid");
    // The same serial under two CAs is two cards.
    let new_7 = check(certificate(&c.gen_2023, 8), BOTH)
        .await
        .expect("valid");
    assert_ne!(old_7, new_7);
    assert_ne!(new_42, old_7);
    assert_eq!(
        check(certificate(&c.gen_2023, 42), BOTH).await,
        Ok(new_42.clone())
    );
    // A third key with the same DN.
    assert_eq!(
        check(certificate(&c.rogue, 42), BOTH).await,
        Err(CardRefusal::CertificateUntrusted)
    );
    // The chain is checked before the signature: a valid chain reaches the signature check.
    assert_eq!(
        trust
            .verify(&certificate(&c.gen_2015, 7), b"message", &[0; 256], BOTH)
            .await,
        Err(CardRefusal::SignatureInvalid)
    );
}

#[tokio::test]
async fn an_ended_generations_certificates_are_expired_and_need_no_list() {
    let dir = tempfile::tempdir().expect("dir");
    let c = cas();
    // After 2025-10-19 the 2015 CA needs no list: the 2023 list alone starts the server.
    let bundle = write(
        dir.path(),
        "bundle.pem",
        &[
            pem("CERTIFICATE", c.gen_2015.certificate_der()),
            pem("CERTIFICATE", c.gen_2023.certificate_der()),
        ]
        .concat(),
    );
    let crl_2023 = write(dir.path(), "2023.crl", &crl(&c.gen_2023, &[], AFTER_2015));
    let trust = Trust::from_files(&[bundle], &[crl_2023], AFTER_2015).expect("trust");
    assert_eq!(
        trust
            .verify_certificate_only(&certificate(&c.gen_2015, 7), AFTER_2015)
            .await,
        Err(CardRefusal::CertificateExpired)
    );
    assert_eq!(
        CardRefusal::CertificateExpired.code(),
        "certificate_expired"
    );
    assert!(
        trust
            .verify_certificate_only(&certificate(&c.gen_2023, 7), AFTER_2015)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn lists_reload_all_or_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (bundle, crls) = files(dir.path(), BOTH);
    let trust = Trust::from_files(&[bundle], &crls, BOTH).expect("trust");
    let c = cas();
    // New lists: the 2023 CA now revokes 8 as well.
    let newer = write(dir.path(), "2023-new.crl", &crl(&c.gen_2023, &[7, 8], BOTH));
    trust
        .reload_crls(&[crls[0].clone(), newer.clone()], BOTH)
        .await
        .expect("reload");
    assert_eq!(
        trust
            .verify_certificate_only(&certificate(&c.gen_2023, 8), BOTH)
            .await,
        Err(CardRefusal::CertificateRevoked)
    );
    // A set that leaves the 2015 CA without a list, or holds a bad file, changes nothing.
    let empty_2023 = write(dir.path(), "2023-empty.crl", &crl(&c.gen_2023, &[], BOTH));
    let garbage = write(dir.path(), "garbage.crl", b"garbage");
    for set in [
        vec![empty_2023.clone()],
        vec![crls[0].clone(), empty_2023, garbage],
    ] {
        assert!(trust.reload_crls(&set, BOTH).await.is_err());
        assert_eq!(
            trust
                .verify_certificate_only(&certificate(&c.gen_2023, 8), BOTH)
                .await,
            Err(CardRefusal::CertificateRevoked)
        );
    }
}

#[test]
fn unusable_files_are_one_line_errors_naming_key_and_file() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let c = cas();
    let (bundle, crls) = files(d, BOTH);
    let ca_2015 = pem("CERTIFICATE", c.gen_2015.certificate_der());

    let with_user = write(
        d,
        "with-user.pem",
        &[
            ca_2015.clone(),
            pem("CERTIFICATE", &certificate(&c.gen_2015, 5)),
        ]
        .concat(),
    );
    let m = error(Trust::from_files(
        std::slice::from_ref(&with_user),
        &crls,
        BOTH,
    ));
    assert_eq!(
        m,
        format!(
            "jpki_ca: {}: not a usable JPKI CA certificate bundle: certificate 2 of 2: not a CA certificate: basicConstraints says cA = FALSE",
            with_user.display()
        )
    );

    let garbage = write(
        d,
        "garbage.pem",
        &[
            ca_2015.clone(),
            b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        ]
        .concat(),
    );
    let m = error(Trust::from_files(
        &[bundle.clone(), garbage.clone()],
        &crls,
        BOTH,
    ));
    assert!(
        m.starts_with(&format!(
            "jpki_ca: {}: not a usable JPKI CA certificate bundle: certificate 2 of 2: CA certificate is not a DER X.509 certificate",
            garbage.display()
        )),
        "{m}"
    );
    let text = write(d, "text.pem", b"hello");
    assert!(error(Trust::from_files(&[text], &crls, BOTH)).starts_with("jpki_ca: "));
    let empty = write(d, "empty.pem", b"");
    assert!(
        error(Trust::from_files(&[empty], &crls, BOTH)).ends_with("no certificate in the file")
    );
    let missing = d.join("missing.pem");
    assert!(
        error(Trust::from_files(
            std::slice::from_ref(&missing),
            &crls,
            BOTH
        ))
        .starts_with(&format!("jpki_ca: cannot read {}: ", missing.display()))
    );

    // Lists: a third key's, a stale one, two of one CA, none for a current CA.
    let rogue = write(d, "rogue.crl", &crl(&c.rogue, &[], BOTH));
    let m = error(Trust::from_files(
        std::slice::from_ref(&bundle),
        &[crls[0].clone(), crls[1].clone(), rogue.clone()],
        BOTH,
    ));
    assert!(
        m.starts_with(&format!(
            "jpki_crl: {}: not a usable revocation list: CRL is not signed by any configured CA (its issuer key id ",
            rogue.display()
        )),
        "{m}"
    );
    let stale = write(
        d,
        "stale.crl",
        &c.gen_2023
            .issue_crl(&[], BOTH - 2 * DAY, BOTH - DAY)
            .expect("CRL"),
    );
    let m = error(Trust::from_files(
        std::slice::from_ref(&bundle),
        &[crls[0].clone(), stale.clone()],
        BOTH,
    ));
    assert!(
        m.starts_with(&format!(
            "jpki_crl: {}: not a usable revocation list: CRL is stale",
            stale.display()
        )),
        "{m}"
    );
    let again = write(d, "again.crl", &crl(&c.gen_2023, &[], BOTH));
    let m = error(Trust::from_files(
        std::slice::from_ref(&bundle),
        &[crls[0].clone(), crls[1].clone(), again.clone()],
        BOTH,
    ));
    assert!(
        m.starts_with(&format!(
            "jpki_crl: {} and {} are both revocation lists of the CA SKI ",
            crls[1].display(),
            again.display()
        )),
        "{m}"
    );
    let m = error(Trust::from_files(
        std::slice::from_ref(&bundle),
        &[crls[1].clone()],
        BOTH,
    ));
    assert!(
        m.starts_with("jpki_crl: no revocation list for the CA SKI ")
            && m.contains("valid 2015-10-20T03:08:13Z to 2025-10-19T14:59:59Z")
            && m.contains(&bundle.display().to_string()),
        "{m}"
    );
}

/// The real J-LIS CA certificates for 利用者証明用電子証明書.
/// `SHARED_FIELD_DIR` if set, else `shared/field` beside the checkout, where CI has it.
fn field(name: &str) -> PathBuf {
    std::env::var_os("SHARED_FIELD_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/field"),
            PathBuf::from,
        )
        .join("jpki")
        .join(name)
}

const SKI_2015: &str = "95:67:95:1B:5C:A7:0D:84:A0:FF:F1:D8:5A:87:F1:AA:B1:34:03:85";
const SKI_2023: &str = "1A:C1:00:F5:96:A3:BC:8C:4B:3D:F1:95:E3:26:99:24:9E:9E:30:8A";

#[test]
fn the_real_jlis_cas_load_as_two_files_and_as_one_bundle() {
    let two_files = [
        field("jpki_auth_ca_2015.pem"),
        field("jpki_auth_ca_2023.pem"),
    ];
    let dir = tempfile::tempdir().expect("dir");
    let one = write(
        dir.path(),
        "jlis-bundle.pem",
        &[
            std::fs::read(&two_files[0]).expect("field file"),
            std::fs::read(&two_files[1]).expect("field file"),
        ]
        .concat(),
    );
    for files in [
        two_files.to_vec(),
        vec![one.clone()],
        vec![one, two_files[1].clone()],
    ] {
        let bundle = Trust::read_bundle(&files).expect("J-LIS bundle");
        let described: Vec<String> = bundle
            .anchors()
            .iter()
            .map(uketsuke_server::trust::describe)
            .collect();
        assert_eq!(
            described,
            [
                format!("SKI {SKI_2015} (valid 2015-10-20T03:08:13Z to 2025-10-19T14:59:59Z)"),
                format!("SKI {SKI_2023} (valid 2023-07-16T01:01:04Z to 2033-07-15T14:59:59Z)"),
            ],
            "{files:?}"
        );
    }
    // Without lists: while both are current both need one; after 2025-10-19 only 2023's.
    let m = error(Trust::from_files(&two_files, &[], BOTH));
    assert!(m.contains(SKI_2015), "{m}");
    let m = error(Trust::from_files(&two_files, &[], AFTER_2015));
    assert!(m.contains(SKI_2023) && !m.contains(SKI_2015), "{m}");
}

#[tokio::test]
async fn the_server_starts_on_a_bundle_and_stops_on_a_bad_one() {
    let dir = tempfile::tempdir().expect("dir");
    let now = chrono::Utc::now().timestamp();
    let c = cas();
    // Generations current today (the demo clock is the system's).
    let bundle = write(
        dir.path(),
        "bundle.pem",
        &[
            pem("CERTIFICATE", c.gen_2023.certificate_der()),
            pem("CERTIFICATE", c.rogue.certificate_der()),
        ]
        .concat(),
    );
    let crls = [
        write(dir.path(), "a.crl", &crl(&c.gen_2023, &[], now)),
        write(dir.path(), "b.crl", &crl(&c.rogue, &[], now)),
    ];
    let config = |ca: &Path, crl: String| {
        Config::from_sources(
            None,
            &[
                ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
                ("UKETSUKE_MODE", "demo".to_owned()),
                (
                    "UKETSUKE_DATABASE_URL",
                    format!("sqlite://{}/server.db", dir.path().display()),
                ),
                ("UKETSUKE_JPKI_CA", ca.display().to_string()),
                ("UKETSUKE_JPKI_CRL", crl),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        )
        .expect("config")
    };
    let both = format!("{}:{}", crls[0].display(), crls[1].display());
    let server = uketsuke_server::Server::build_with(
        config(&bundle, both.clone()),
        uketsuke_server::Options {
            background: uketsuke_server::Background::Off,
            ..Default::default()
        },
    )
    .await;
    assert!(server.is_ok(), "{:?}", server.err().map(|e| e.to_string()));

    let user = write(
        dir.path(),
        "user.pem",
        &pem("CERTIFICATE", &certificate(&c.gen_2023, 1)),
    );
    let message = match uketsuke_server::Server::build(config(&user, both)).await {
        Ok(_) => panic!("a user certificate is no CA"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        message,
        format!(
            "JPKI trust: jpki_ca: {}: not a usable JPKI CA certificate bundle: not a CA certificate: basicConstraints says cA = FALSE",
            user.display()
        )
    );
}

/// Issue 12: a list in force that passes its nextUpdate refuses that CA's cards (and only
/// those) with `revocation_list_stale` and is named by `stale_lists`; a reload that would put
/// an older list in force is refused for the whole set.
#[tokio::test]
async fn a_stale_list_refuses_its_cas_cards_and_an_older_list_never_reloads() {
    let dir = tempfile::tempdir().expect("dir");
    let c = cas();
    let (bundle, _) = files(dir.path(), BOTH);
    // The 2015 list is current for one day, the 2023 list for a week.
    let short = write(
        dir.path(),
        "2015-short.crl",
        &c.gen_2015
            .issue_crl(&[], BOTH - DAY, BOTH + DAY)
            .expect("CRL"),
    );
    let long = write(dir.path(), "2023.crl", &crl(&c.gen_2023, &[], BOTH));
    let trust = Trust::from_files(&[bundle], &[short, long.clone()], BOTH).expect("trust");
    assert!(trust.stale_lists(BOTH).await.is_empty());
    let later = BOTH + 2 * DAY;
    assert_eq!(
        trust
            .verify_certificate_only(&certificate(&c.gen_2015, 5), later)
            .await,
        Err(CardRefusal::RevocationListStale)
    );
    assert_eq!(
        CardRefusal::RevocationListStale.code(),
        "revocation_list_stale"
    );
    assert!(
        trust
            .verify_certificate_only(&certificate(&c.gen_2023, 5), later)
            .await
            .is_ok()
    );
    let stale = trust.stale_lists(later).await;
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].starts_with("SKI ") && stale[0].contains("2025-10-19T14:59:59Z"));

    // An older 2015 list (issued before the one in force) beside a fresh 2023 list: refused,
    // nothing changes.
    let older = write(
        dir.path(),
        "2015-older.crl",
        &c.gen_2015
            .issue_crl(&[], BOTH - 3 * DAY, BOTH + 5 * DAY)
            .expect("CRL"),
    );
    let error = trust
        .reload_crls(&[older.clone(), long.clone()], later)
        .await
        .expect_err("older list");
    assert!(matches!(error, TrustError::OlderCrl { .. }), "{error}");
    assert!(error.to_string().contains(&older.display().to_string()));
    assert_eq!(trust.stale_lists(later).await.len(), 1);
    // A newer 2015 list clears it.
    let newer = write(
        dir.path(),
        "2015-newer.crl",
        &c.gen_2015
            .issue_crl(&[], later - DAY, later + DAY)
            .expect("CRL"),
    );
    trust
        .reload_crls(&[newer, long], later)
        .await
        .expect("newer list");
    assert!(trust.stale_lists(later).await.is_empty());
}

/// The ended generation's last list, still named in `jpki_crl`, is stale: it is skipped with a
/// warning, so that neither start-up nor the reload of the live generation's list fails on it.
#[tokio::test]
async fn an_ended_generations_stale_list_neither_stops_start_up_nor_blocks_reloads() {
    let now: i64 = 1_800_000_000;
    let old = TestCa::generation(
        generate_rsa_key(21).expect("key"),
        1_500_000_000,
        1_760_000_000,
    )
    .expect("old CA");
    let new = TestCa::generation(
        generate_rsa_key(22).expect("key"),
        1_700_000_000,
        2_000_000_000,
    )
    .expect("new CA");
    let dir = tempfile::tempdir().expect("dir");
    let file = |name: &str| dir.path().join(name);
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(file(name), bytes).expect("write");
    write("old.der", old.certificate_der().to_vec());
    write("new.der", new.certificate_der().to_vec());
    write(
        "old.crl",
        old.issue_crl(&[], 1_759_000_000, 1_759_900_000)
            .expect("crl"),
    );
    write(
        "new.crl",
        new.issue_crl(&[], now - 3600, now + DAY).expect("crl"),
    );
    let cas = vec![file("old.der"), file("new.der")];
    let crls = vec![file("old.crl"), file("new.crl")];
    let trust = Trust::from_files(&cas, &crls, now).expect("starts with the ended CA's list");
    write(
        "new.crl",
        new.issue_crl(&[], now + 3600, now + 2 * DAY).expect("crl"),
    );
    trust
        .reload_crls(&crls, now + 7200)
        .await
        .expect("the live list reloads");
    // The live CA's own stale list still stops start-up: that one matters.
    write(
        "new.crl",
        new.issue_crl(&[], now - 2 * DAY, now - DAY).expect("crl"),
    );
    assert!(Trust::from_files(&cas, &crls, now).is_err());
}
