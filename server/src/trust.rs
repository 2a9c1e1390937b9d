//! What the server trusts about a card before anything leaves it: the certificate chains to one
//! of the configured JPKI user-authentication CAs, is within its validity and its CA's, is not
//! on that CA's revocation list, and its key signed exactly the binding the server expects.
//!
//! J-LIS runs the CA in generations with one subject DN and different keys (2015 and 2023;
//! cards of either are in use), so the configuration is a bundle of CA certificates and one
//! current CRL per CA: each list is matched to the CA that signed it (authority key
//! identifier, then signature), and a certificate is checked against the list of the CA that
//! actually issued it (`uketsuke_card::certs::TrustBundle`). In demo mode the bundle is the
//! simulator's test CA and its list is made at start from the demo population's revoked cards,
//! signed by that CA like a real list.
//!
//! Revocation fails closed (issue 12): a list in force whose nextUpdate has passed
//! ([`STALE_GRACE_SECS`] = 0) refuses every card of its CA with `revocation_list_stale` and
//! makes `/readyz` fail, until a reload brings a current list; a reload never puts an older
//! list in force (thisUpdate and CRL number must not go back); lists with critical extensions
//! this server does not process, delta and partial lists are refused; and a certificate of
//! another type under the CA (a CA certificate, a 署名用電子証明書) is `certificate_wrong_type`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::RwLock;
use uketsuke_card::certs::{
    BundleRefusal, CertRefusal, CrlError, RevocationList, TrustAnchor, TrustBundle,
    VerifiedCertificate, verify_card_signature,
};

/// The configuration key of the CA bundle, named in start-up errors.
const KEY_CA: &str = "jpki_ca";
/// The configuration key of the revocation lists, named in start-up errors.
const KEY_CRL: &str = "jpki_crl";

/// Why a card's proof is refused, each with its own message for the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRefusal {
    CertificateMalformed,
    CertificateUntrusted,
    /// The certificate's validity ended, or that of the CA generation that issued it: either
    /// way the patient renews the certificate at the municipal office.
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    /// Chains to the CA but is not the card's user-authentication certificate (a CA
    /// certificate, a 署名用電子証明書 or another type).
    CertificateWrongType,
    /// The revocation list in force for the certificate's CA is past its nextUpdate: the
    /// clinic's data is out of date, nothing is wrong with the card. Fail closed until a
    /// current list is loaded.
    RevocationListStale,
    SignatureInvalid,
}

impl CardRefusal {
    pub const fn code(self) -> &'static str {
        match self {
            CardRefusal::CertificateMalformed => "certificate_malformed",
            CardRefusal::CertificateUntrusted => "certificate_untrusted",
            CardRefusal::CertificateExpired => "certificate_expired",
            CardRefusal::CertificateNotYetValid => "certificate_not_yet_valid",
            CardRefusal::CertificateRevoked => "certificate_revoked",
            CardRefusal::CertificateWrongType => "certificate_wrong_type",
            CardRefusal::RevocationListStale => "revocation_list_stale",
            CardRefusal::SignatureInvalid => "signature_invalid",
        }
    }
}

/// A trust configuration that cannot be used; printed as one line that names the
/// configuration key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{key}: {path}: {message}")]
    Invalid {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error(
        "jpki_crl: no revocation list for the CA {ca}; add its current CRL (every configured CA whose validity has not ended needs one)"
    )]
    MissingCrl { ca: String },
    #[error(
        "jpki_crl: {first} and {second} are both revocation lists of the CA {ca}; give one current list per CA"
    )]
    DuplicateCrl {
        ca: String,
        first: String,
        second: String,
    },
    #[error(
        "jpki_crl: {path}: older than the list in force for the CA {ca}: {reason}; keeping the list in force"
    )]
    OlderCrl {
        ca: String,
        path: String,
        reason: String,
    },
    #[error("demo trust material: {0}")]
    Demo(String),
}

/// How long after a list's nextUpdate it may still be used: none. J-LIS issues its CRLs daily
/// with nextUpdate days ahead, so a list that reaches its nextUpdate has missed several
/// issues; then registrations are refused (`revocation_list_stale`) and `/readyz` fails until
/// a current list is loaded, rather than accept cards revoked since.
pub const STALE_GRACE_SECS: i64 = 0;

/// The CAs and the current revocation list of each.
#[derive(Clone)]
pub struct Trust {
    bundle: Arc<TrustBundle>,
    /// Where each CA came from (same index as the bundle's anchors), for messages.
    sources: Arc<Vec<String>>,
    /// One list per CA (same index); `None` only for a CA whose validity had ended when the
    /// lists were read: its certificates are refused as expired before any list is consulted.
    crls: Arc<RwLock<Vec<Option<RevocationList>>>>,
}

impl Trust {
    /// From files (PEM or DER): the CA bundle (each file one or more certificates) and the
    /// CRLs (one per file), each matched to its CA; every CA whose validity has not ended at
    /// `now_unix` needs a current list. Logs each CA it trusts.
    pub fn from_files(
        ca_files: &[PathBuf],
        crl_files: &[PathBuf],
        now_unix: i64,
    ) -> Result<Self, TrustError> {
        let (bundle, sources) = read_bundle(ca_files)?;
        let lists: Vec<Option<RevocationList>> = read_crls(&bundle, &sources, crl_files, now_unix)?
            .into_iter()
            .map(|slot| slot.map(|(list, _)| list))
            .collect();
        for (anchor, (source, list)) in bundle.anchors().iter().zip(sources.iter().zip(&lists)) {
            let ca = describe(anchor);
            match list {
                Some(list) => tracing::info!(
                    %ca, file = %source, revoked = list.len(),
                    "JPKI user-authentication CA trusted"
                ),
                None => tracing::warn!(
                    %ca, file = %source,
                    "JPKI user-authentication CA generation has ended: its certificates are refused as expired"
                ),
            }
        }
        Ok(Trust {
            bundle: Arc::new(bundle),
            sources: Arc::new(sources),
            crls: Arc::new(RwLock::new(lists)),
        })
    }

    /// Reads the CA bundle alone (for tests and checks): every certificate of every file.
    pub fn read_bundle(ca_files: &[PathBuf]) -> Result<TrustBundle, TrustError> {
        read_bundle(ca_files).map(|(bundle, _)| bundle)
    }

    /// The simulator's test CA, with a list of the demo population's revoked cards and renewed
    /// certificates.
    pub fn demo(now_unix: i64) -> Result<Self, TrustError> {
        use uketsuke_backend::simulator::{keys, population};
        let ca = keys::test_ca().map_err(|e| TrustError::Demo(e.to_string()))?;
        let anchor = TrustAnchor::from_der(ca.certificate_der())
            .map_err(|e| TrustError::Demo(e.to_string()))?;
        let today = uketsuke_domain::window::jst_date(crate::clock::from_ms(now_unix * 1000));
        // Revoked cards and the certificates a renewal replaced (reason superseded).
        let revoked = population::revoked_serials(&population::population(today));
        // Until the CA's own end: the demo clock can be moved days ahead, and this list is
        // made in-process by the same test CA at every start, so it must not go stale under
        // the demo (lists read from files do, and are refused then).
        let until = i64::try_from(uketsuke_card::test_ca::CA_NOT_AFTER_UNIX).unwrap_or(i64::MAX);
        let der = ca
            .issue_crl(&revoked, now_unix - 3600, until)
            .map_err(|e| TrustError::Demo(e.to_string()))?;
        let list = RevocationList::from_der(&der, &anchor, now_unix)
            .map_err(|e| TrustError::Demo(e.to_string()))?;
        let bundle = TrustBundle::new(vec![anchor]).map_err(|e| TrustError::Demo(e.to_string()))?;
        Ok(Trust {
            bundle: Arc::new(bundle),
            sources: Arc::new(vec!["the demo test CA".to_owned()]),
            crls: Arc::new(RwLock::new(vec![Some(list)])),
        })
    }

    /// The configured CAs.
    pub fn bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    /// Replaces every revocation list with the files' current ones; on any problem (a file
    /// unreadable, stale, of no configured CA, a CA left without a list, a list older than the
    /// one in force for its CA: [`TrustError::OlderCrl`], logged as a warning) all current
    /// lists stay.
    pub async fn reload_crls(
        &self,
        crl_files: &[PathBuf],
        now_unix: i64,
    ) -> Result<(), TrustError> {
        let lists = read_crls(&self.bundle, &self.sources, crl_files, now_unix)?;
        let mut in_force = self.crls.write().await;
        // A list never goes back: a replayed or rolled-back file would un-revoke cards.
        for (index, (new, old)) in lists.iter().zip(in_force.iter()).enumerate() {
            if let (Some((new, path)), Some(old)) = (new, old)
                && let Err(older) = new.may_replace(old)
            {
                let ca = self.describe_anchor(index);
                tracing::warn!(%ca, file = %path, %older, "revocation list refused: older than the list in force");
                return Err(TrustError::OlderCrl {
                    ca,
                    path: path.clone(),
                    reason: older.to_string(),
                });
            }
        }
        *in_force = lists.into_iter().map(|l| l.map(|(list, _)| list)).collect();
        Ok(())
    }

    /// The CAs whose list in force is stale at `now_unix` (past its nextUpdate by more than
    /// [`STALE_GRACE_SECS`]), each as [`describe`] names it; empty when every list is current.
    pub async fn stale_lists(&self, now_unix: i64) -> Vec<String> {
        self.crls
            .read()
            .await
            .iter()
            .enumerate()
            .filter(|(_, list)| {
                list.as_ref()
                    .is_some_and(|list| list.is_stale_at(now_unix, STALE_GRACE_SECS))
            })
            .map(|(index, _)| self.describe_anchor(index))
            .collect()
    }

    /// Checks the certificate (DER) and the card's signature over `message`; returns the card
    /// reference (SHA-256 hex of the issuing CA's key and the certificate serial), by which the
    /// patient's receptions are found again with the same card.
    pub async fn verify(
        &self,
        certificate_der: &[u8],
        message: &[u8],
        signature: &[u8],
        now_unix: i64,
    ) -> Result<String, CardRefusal> {
        let (anchor, certificate) = self.checked_certificate(certificate_der, now_unix).await?;
        if !verify_card_signature(&certificate.public_key, message, signature) {
            return Err(CardRefusal::SignatureInvalid);
        }
        Ok(card_ref(anchor, &certificate.serial))
    }

    /// [`Trust::verify`] for 同意照会: also returns the reference this server gave the same card
    /// before it trusted several CA generations (v1, the serial alone), so that receptions
    /// stored then are found and moved to the current reference (`receptions::adopt_card_ref`).
    pub async fn verify_with_legacy(
        &self,
        certificate_der: &[u8],
        message: &[u8],
        signature: &[u8],
        now_unix: i64,
    ) -> Result<(String, String), CardRefusal> {
        let (anchor, certificate) = self.checked_certificate(certificate_der, now_unix).await?;
        if !verify_card_signature(&certificate.public_key, message, signature) {
            return Err(CardRefusal::SignatureInvalid);
        }
        Ok((
            card_ref(anchor, &certificate.serial),
            legacy_card_ref(&certificate.serial),
        ))
    }

    /// Checks the certificate alone (chain, validity, revocation) for 目視確認, where the card
    /// signs nothing and a staff member vouches for the face; returns the card reference.
    pub async fn verify_certificate_only(
        &self,
        certificate_der: &[u8],
        now_unix: i64,
    ) -> Result<String, CardRefusal> {
        let (anchor, certificate) = self.checked_certificate(certificate_der, now_unix).await?;
        Ok(card_ref(anchor, &certificate.serial))
    }

    async fn checked_certificate(
        &self,
        certificate_der: &[u8],
        now_unix: i64,
    ) -> Result<(&TrustAnchor, VerifiedCertificate), CardRefusal> {
        let verified = self
            .bundle
            .verify_certificate(certificate_der, now_unix)
            .map_err(|refused| self.refusal(refused, now_unix))?;
        // The list of the CA that issued this certificate, never another generation's.
        match self.crls.read().await.get(verified.anchor) {
            Some(Some(list)) if list.is_stale_at(now_unix, STALE_GRACE_SECS) => {
                tracing::error!(
                    ca = %self.describe_anchor(verified.anchor),
                    "card refused: the CA's revocation list in force is past its next update; load a current list"
                );
                Err(CardRefusal::RevocationListStale)
            }
            Some(Some(list)) if list.is_revoked(&verified.certificate) => {
                Err(CardRefusal::CertificateRevoked)
            }
            Some(Some(_)) => match self.bundle.anchors().get(verified.anchor) {
                Some(anchor) => Ok((anchor, verified.certificate)),
                None => Err(CardRefusal::CertificateUntrusted),
            },
            // Unreachable by construction (a CA without a list has ended, and its
            // certificates are expired); refuse rather than skip revocation.
            _ => {
                tracing::error!(
                    ca = %self.describe_anchor(verified.anchor),
                    "no revocation list for the CA of a valid certificate; refused"
                );
                Err(CardRefusal::CertificateUntrusted)
            }
        }
    }

    /// The patient's code for a refusal; an expired CA generation is logged for the operator
    /// (the CA, never the patient's certificate).
    fn refusal(&self, refused: BundleRefusal, now_unix: i64) -> CardRefusal {
        match refused.refusal {
            CertRefusal::Malformed => CardRefusal::CertificateMalformed,
            CertRefusal::Untrusted => CardRefusal::CertificateUntrusted,
            CertRefusal::Expired => {
                if let Some(index) = refused.anchor
                    && self
                        .bundle
                        .anchors()
                        .get(index)
                        .is_some_and(|a| a.has_ended(now_unix))
                {
                    tracing::info!(
                        ca = %self.describe_anchor(index),
                        "card certificate refused as expired: its CA generation's validity has ended"
                    );
                }
                CardRefusal::CertificateExpired
            }
            CertRefusal::NotYetValid => CardRefusal::CertificateNotYetValid,
            CertRefusal::Revoked => CardRefusal::CertificateRevoked,
            CertRefusal::WrongType => CardRefusal::CertificateWrongType,
        }
    }

    fn describe_anchor(&self, index: usize) -> String {
        self.bundle
            .anchors()
            .get(index)
            .map(describe)
            .unwrap_or_default()
    }
}

/// The reference by which one card's receptions are found again: SHA-256 of the tagged issuing
/// CA key and serial. Serials are unique per CA only, and two J-LIS generations are trusted at
/// once, so the CA's key is part of it (v1, serial alone, served a single CA).
fn card_ref(anchor: &TrustAnchor, serial: &[u8]) -> String {
    let mut tagged = b"uketsuke-card-ref-v2:".to_vec();
    tagged.extend_from_slice(anchor.key_fingerprint());
    tagged.push(b':');
    tagged.extend_from_slice(serial);
    crate::storage::receptions::sha256_hex(&tagged)
}

/// The card reference of the releases that trusted one CA only (v1: SHA-256 of the tagged
/// serial). Rows stored under it are moved to [`card_ref`] when their card proves itself again.
fn legacy_card_ref(serial: &[u8]) -> String {
    let mut tagged = b"uketsuke-card-ref-v1:".to_vec();
    tagged.extend_from_slice(serial);
    crate::storage::receptions::sha256_hex(&tagged)
}

/// `SKI 1A:C1:00:F5:… (valid 2023-07-16T01:01:04Z to 2033-07-15T14:59:59Z)`: how the operator
/// recognises a CA generation (the DN is the same for all of them).
pub fn describe(anchor: &TrustAnchor) -> String {
    format!(
        "SKI {} (valid {} to {})",
        anchor.key_id_hex(),
        utc(anchor.not_before_unix()),
        utc(anchor.not_after_unix())
    )
}

fn utc(unix: i64) -> String {
    crate::clock::from_ms(unix.saturating_mul(1000))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|source| TrustError::Read {
        key,
        path: path.display().to_string(),
        source,
    })
}

/// Every CA certificate of every file, duplicates (the same CA in two files) dropped, with the
/// file each came from.
fn read_bundle(ca_files: &[PathBuf]) -> Result<(TrustBundle, Vec<String>), TrustError> {
    let mut anchors: Vec<(TrustAnchor, String)> = Vec::new();
    for path in ca_files {
        let found = TrustAnchor::all_from_pem_or_der(&read(KEY_CA, path)?).map_err(|e| {
            TrustError::Invalid {
                key: KEY_CA,
                path: path.display().to_string(),
                message: format!("not a usable JPKI CA certificate bundle: {e}"),
            }
        })?;
        for anchor in found {
            if !anchors.iter().any(|(a, _)| a.same_certificate(&anchor)) {
                anchors.push((anchor, path.display().to_string()));
            }
        }
    }
    let (anchors, sources): (Vec<_>, Vec<_>) = anchors.into_iter().unzip();
    let bundle = TrustBundle::new(anchors).map_err(|e| TrustError::Invalid {
        key: KEY_CA,
        path: ca_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        message: e.to_string(),
    })?;
    Ok((bundle, sources))
}

/// One current list per CA of the bundle, each from the file whose list that CA signed (with
/// that file's path).
fn read_crls(
    bundle: &TrustBundle,
    sources: &[String],
    crl_files: &[PathBuf],
    now_unix: i64,
) -> Result<Vec<Option<(RevocationList, String)>>, TrustError> {
    let anchors = bundle.anchors();
    let mut lists: Vec<Option<(RevocationList, String)>> = vec![None; anchors.len()];
    for path in crl_files {
        let shown = path.display().to_string();
        let (index, list) = match bundle
            .revocation_list_from_pem_or_der(&read(KEY_CRL, path)?, now_unix)
        {
            Ok(found) => found,
            // An ended generation's old list must not stop the server or the reload of the
            // lists that matter (its certificates are refused as expired anyway).
            Err(CrlError::OfEndedCa { ca }) => {
                tracing::warn!(file = %shown, %ca, "revocation list of an ended CA generation skipped; it may be removed from jpki_crl");
                continue;
            }
            Err(e) => {
                return Err(TrustError::Invalid {
                    key: KEY_CRL,
                    path: shown.clone(),
                    message: format!("not a usable revocation list: {e}"),
                });
            }
        };
        let Some(slot) = lists.get_mut(index) else {
            continue;
        };
        if let Some((_, first)) = slot {
            return Err(TrustError::DuplicateCrl {
                ca: anchors.get(index).map(describe).unwrap_or_default(),
                first: first.clone(),
                second: shown,
            });
        }
        *slot = Some((list, shown));
    }
    for (index, (anchor, list)) in anchors.iter().zip(&lists).enumerate() {
        if list.is_none() && !anchor.has_ended(now_unix) {
            return Err(TrustError::MissingCrl {
                ca: format!(
                    "{} from {}",
                    describe(anchor),
                    sources.get(index).map(String::as_str).unwrap_or("?")
                ),
            });
        }
    }
    Ok(lists)
}
