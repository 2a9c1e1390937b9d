//! What the server trusts about a card before anything leaves it: the certificate chains to the
//! configured JPKI user-authentication CA, is within its validity, is not on the CA's revocation
//! list, and its key signed exactly the binding the server expects. In demo mode the trust
//! anchor is the simulator's test CA and the revocation list is made at start from the demo
//! population's revoked cards, signed by that CA like a real list.

use std::{path::Path, sync::Arc};

use tokio::sync::RwLock;
use uketsuke_card::certs::{
    CertRefusal, RevocationList, TrustAnchor, verify_card_signature, verify_certificate,
};

/// Why a card's proof is refused, each with its own message for the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRefusal {
    CertificateMalformed,
    CertificateUntrusted,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
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
            CardRefusal::SignatureInvalid => "signature_invalid",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {path} is not usable: {message}")]
    Invalid {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("demo trust material: {0}")]
    Demo(String),
}

/// The CA and its current revocation list.
#[derive(Clone)]
pub struct Trust {
    anchor: Arc<TrustAnchor>,
    crl: Arc<RwLock<RevocationList>>,
}

impl Trust {
    pub fn new(anchor: TrustAnchor, crl: RevocationList) -> Self {
        Trust {
            anchor: Arc::new(anchor),
            crl: Arc::new(RwLock::new(crl)),
        }
    }

    /// From files (PEM or DER): the CA certificate and a CRL it signed that is current.
    pub fn from_files(ca: &Path, crl: &Path, now_unix: i64) -> Result<Self, TrustError> {
        let anchor = read_anchor(ca)?;
        let list = read_crl(crl, &anchor, now_unix)?;
        Ok(Trust::new(anchor, list))
    }

    /// The simulator's test CA, with a list of the demo population's revoked cards.
    pub fn demo(now_unix: i64) -> Result<Self, TrustError> {
        use uketsuke_backend::simulator::{keys, population};
        let ca = keys::test_ca().map_err(|e| TrustError::Demo(e.to_string()))?;
        let anchor = TrustAnchor::from_der(ca.certificate_der())
            .map_err(|e| TrustError::Demo(e.to_string()))?;
        let today = uketsuke_domain::window::jst_date(crate::clock::from_ms(now_unix * 1000));
        let revoked: Vec<u64> = population::population(today)
            .iter()
            .filter(|p| p.certificate == population::CertificateCase::Revoked)
            .map(population::Person::card_seed)
            .collect();
        let week = 7 * 24 * 3600;
        let der = ca
            .issue_crl(&revoked, now_unix - 3600, now_unix + week)
            .map_err(|e| TrustError::Demo(e.to_string()))?;
        let list = RevocationList::from_der(&der, &anchor, now_unix)
            .map_err(|e| TrustError::Demo(e.to_string()))?;
        Ok(Trust::new(anchor, list))
    }

    /// Replaces the revocation list with a newer file's; on any problem the current list stays.
    pub async fn reload_crl(&self, path: &Path, now_unix: i64) -> Result<(), TrustError> {
        let list = read_crl(path, &self.anchor, now_unix)?;
        *self.crl.write().await = list;
        Ok(())
    }

    /// Checks the certificate (DER) and the card's signature over `message`; returns the card
    /// reference (SHA-256 hex of the certificate serial), by which the patient's receptions are
    /// found again with the same card.
    pub async fn verify(
        &self,
        certificate_der: &[u8],
        message: &[u8],
        signature: &[u8],
        now_unix: i64,
    ) -> Result<String, CardRefusal> {
        let certificate = self.checked_certificate(certificate_der, now_unix).await?;
        if !verify_card_signature(&certificate.public_key, message, signature) {
            return Err(CardRefusal::SignatureInvalid);
        }
        Ok(card_ref(&certificate.serial))
    }

    /// Checks the certificate alone (chain, validity, revocation) for 目視確認, where the card
    /// signs nothing and a staff member vouches for the face; returns the card reference.
    pub async fn verify_certificate_only(
        &self,
        certificate_der: &[u8],
        now_unix: i64,
    ) -> Result<String, CardRefusal> {
        let certificate = self.checked_certificate(certificate_der, now_unix).await?;
        Ok(card_ref(&certificate.serial))
    }

    async fn checked_certificate(
        &self,
        certificate_der: &[u8],
        now_unix: i64,
    ) -> Result<uketsuke_card::certs::VerifiedCertificate, CardRefusal> {
        let certificate =
            verify_certificate(certificate_der, &self.anchor, now_unix).map_err(|e| match e {
                CertRefusal::Malformed => CardRefusal::CertificateMalformed,
                CertRefusal::Untrusted => CardRefusal::CertificateUntrusted,
                CertRefusal::Expired => CardRefusal::CertificateExpired,
                CertRefusal::NotYetValid => CardRefusal::CertificateNotYetValid,
                CertRefusal::Revoked => CardRefusal::CertificateRevoked,
            })?;
        if self.crl.read().await.is_revoked(&certificate) {
            return Err(CardRefusal::CertificateRevoked);
        }
        Ok(certificate)
    }
}

/// The reference by which one card's receptions are found again: SHA-256 of the tagged serial.
fn card_ref(serial: &[u8]) -> String {
    let mut tagged = b"uketsuke-card-ref-v1:".to_vec();
    tagged.extend_from_slice(serial);
    crate::storage::receptions::sha256_hex(&tagged)
}

fn read(path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_anchor(path: &Path) -> Result<TrustAnchor, TrustError> {
    TrustAnchor::from_pem_or_der(&read(path)?).map_err(|e| TrustError::Invalid {
        what: "JPKI CA certificate",
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn read_crl(
    path: &Path,
    anchor: &TrustAnchor,
    now_unix: i64,
) -> Result<RevocationList, TrustError> {
    RevocationList::from_pem_or_der(&read(path)?, anchor, now_unix).map_err(|e| {
        TrustError::Invalid {
            what: "JPKI revocation list",
            path: path.display().to_string(),
            message: e.to_string(),
        }
    })
}
