//! Verification of a patient's JPKI user-authentication certificate against configured trust
//! anchors (the JPKI user-authentication CA certificates in production, test CAs in tests and
//! the demo): the issuing CA and its signature, validity at a given instant, revocation through
//! that CA's CRL, and the card's RSA PKCS#1 v1.5 SHA-256 signature.
//!
//! J-LIS runs its user-authentication CA in generations that share one subject DN and differ
//! in key: the 2015 CA (SKI `95:67:95:1B…`, valid to 2025-10-19T14:59:59Z) and the 2023 CA
//! (SKI `1A:C1:00:F5…`, valid 2023-07-16 to 2033-07-15); cards issued between 2023-07 and
//! 2025-10 carry certificates of either. So the trust configuration is a [`TrustBundle`] of
//! anchors, a certificate's anchor is the one whose subject key identifier equals the
//! certificate's authority key identifier *and* whose key verifies its signature (never the DN
//! alone), and each CRL is matched to its CA the same way. A certificate is valid only while
//! both it and its CA generation are (RFC 5280 section 6.1.3 checks every certificate of the
//! path at the current time): once a generation's validity ends, its certificates are refused
//! as expired — the patient renews at the municipal office — not as untrusted.
//!
//! A certificate must also be a user-authentication certificate
//! ([`check_user_certificate_profile`]: no CA certificate, no 署名用電子証明書, no critical
//! extension this module does not process), and a CRL must be complete, carry no critical
//! extension this module does not process, announce its next update, and never replace a newer
//! list ([`RevocationList::may_replace`]); a list past its next update is stale
//! ([`RevocationList::is_stale_at`]) and must not be relied on.
//!
//! Server side only, behind the `verify` feature: the browser never verifies certificates, and
//! the browser build (`uketsuke-app` with `hydrate`) leaves the feature off so none of this, nor
//! its PEM decoding, reaches the patient's phone.
//!
//! Mapping a certificate to a person is not done here; this module only says which serial the
//! certificate carries and whether the CA still stands behind it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use base64::Engine as _;
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlNumber, ExtendedKeyUsage,
    IssuingDistributionPoint, KeyUsage, SubjectKeyIdentifier,
};
use x509_cert::name::Name;

/// sha256WithRSAEncryption, the only algorithm JPKI user-authentication certificates and the
/// CA's CRLs use. Anything else is refused rather than negotiated.
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// PEM label of a certificate (RFC 7468 section 5).
const PEM_CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a CRL (RFC 7468 section 6).
const PEM_CRL: &str = "X509 CRL";

/// Why a configured CA certificate cannot serve as trust anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("CA certificate PEM: {0}")]
    Pem(&'static str),
    #[error("CA certificate is not a DER X.509 certificate: {0}")]
    Malformed(String),
    #[error("CA certificate key is not RSA: {0}")]
    UnsupportedKey(String),
    /// A certificate that may not sign others: basicConstraints without cA, or keyUsage
    /// without keyCertSign (RFC 5280 sections 4.2.1.9 and 4.2.1.3). A user certificate put
    /// into the trust configuration by mistake ends here.
    #[error("not a CA certificate: {0}")]
    NotCa(&'static str),
    /// A file with no certificate at all.
    #[error("no certificate in the file")]
    Empty,
    /// One certificate of a file holding several (numbered from 1).
    #[error("certificate {number} of {total}: {error}")]
    InFile {
        number: usize,
        total: usize,
        error: Box<CertError>,
    },
}

/// Why a configured CRL cannot be used. Every case stops the caller from relying on the list:
/// a server should refuse to run rather than accept revoked cards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("CRL PEM: {0}")]
    Pem(&'static str),
    #[error("CRL is not a DER X.509 CRL: {0}")]
    Malformed(String),
    #[error("CRL is not issued and signed by the trusted CA")]
    Untrusted,
    /// No CA of the bundle issued and signed the list; `key_id` is the list's authority key
    /// identifier (colon-separated hex), when it carries one.
    #[error("CRL is not signed by any configured CA ({})", match key_id {
        Some(id) => format!("its issuer key id {id} matches none of them"),
        None => "no CA key verifies its signature".to_owned(),
    })]
    NoIssuerInBundle { key_id: Option<String> },
    #[error("CRL is stale: its next update ({}) has passed", utc(*next_update_unix))]
    Stale { next_update_unix: i64 },
    /// A stale list of a CA whose own validity has ended: its certificates are refused as
    /// expired anyway, so the list is not needed (the configuration may keep it).
    #[error("CRL of a CA whose validity has ended ({ca}); not needed")]
    OfEndedCa { ca: String },
    /// A list without nextUpdate could never be seen to go stale (RFC 5280 section 5.1.2.5
    /// makes the field mandatory for conforming CAs; J-LIS sets it).
    #[error("CRL has no next update, so it could never be seen to go stale")]
    NoNextUpdate,
    /// A critical extension of the list, or of one of its entries, that this verifier does not
    /// process (RFC 5280 section 5.2: such a list must not be used); `oid` in dotted form.
    #[error("CRL carries a critical extension this server does not process ({oid}{})", if *in_entry { ", in an entry" } else { "" })]
    UnsupportedCriticalExtension { oid: String, in_entry: bool },
    /// An issuing distribution point that narrows the list (some reasons only, CA or attribute
    /// certificates only, indirect): it is not the complete list of the CA's user certificates.
    #[error("CRL is a partial list ({0}); give the CA's complete list")]
    Partial(&'static str),
    /// The same extension twice (RFC 5280 section 5.2 allows one instance of each).
    #[error("CRL carries the extension {0} twice")]
    DuplicateExtension(String),
    /// A reload that would put an older list in force than the one in force: its CRL number
    /// or its thisUpdate goes back (or it lost the CRL number the list in force carries).
    #[error("CRL is older than the list in force ({0})")]
    Older(String),
}

/// Why a patient's certificate is refused. The cases stay apart so the patient can be told
/// whether to renew the card's certificate or to try another card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CertRefusal {
    #[error("certificate is malformed")]
    Malformed,
    #[error("certificate is not issued by a trusted CA")]
    Untrusted,
    #[error("certificate has expired")]
    Expired,
    #[error("certificate is not yet valid")]
    NotYetValid,
    #[error("certificate has been revoked")]
    Revoked,
    /// Chains to the CA but is not a user-authentication certificate: a CA certificate
    /// (basicConstraints cA = TRUE), keyUsage absent or without digitalSignature or with
    /// keyCertSign / cRLSign, an extendedKeyUsage without client authentication, or the JPKI
    /// 署名用 certificate policy. See [`check_user_certificate_profile`].
    #[error("certificate is not a user-authentication certificate")]
    WrongType,
}

/// One CA that user certificates and CRLs may chain to: its name, RSA key, subject key
/// identifier and validity. The anchor is trusted because it is configured, so its own
/// signature is not checked; its validity bounds that of every certificate it issued.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    subject: Name,
    public_key: RsaPublicKey,
    key_id: Option<Vec<u8>>,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    key_fingerprint: [u8; 32],
    not_before_unix: i64,
    not_after_unix: i64,
}

impl TrustAnchor {
    /// The anchor from the CA certificate in DER. Refused: not X.509, a key other than RSA,
    /// and a certificate that may not sign certificates (basicConstraints absent or without
    /// cA, keyUsage present without keyCertSign).
    pub fn from_der(ca_cert_der: &[u8]) -> Result<Self, CertError> {
        let cert =
            Certificate::from_der(ca_cert_der).map_err(|e| CertError::Malformed(e.to_string()))?;
        let tbs = cert.tbs_certificate;
        let extensions = tbs.extensions.as_deref().unwrap_or_default();
        let malformed = |e: der::Error| CertError::Malformed(e.to_string());
        match extension::<BasicConstraints>(extensions).map_err(malformed)? {
            Some(constraints) if constraints.ca => {}
            Some(_) => return Err(CertError::NotCa("basicConstraints says cA = FALSE")),
            None => return Err(CertError::NotCa("no basicConstraints extension")),
        }
        if let Some(usage) = extension::<KeyUsage>(extensions).map_err(malformed)?
            && !usage.key_cert_sign()
        {
            return Err(CertError::NotCa("keyUsage lacks keyCertSign"));
        }
        let key_id = extension::<SubjectKeyIdentifier>(extensions)
            .map_err(malformed)?
            .map(|ski| ski.0.as_bytes().to_vec());
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let public_key = RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| CertError::UnsupportedKey(e.to_string()))?;
        Ok(Self {
            subject: tbs.subject,
            public_key,
            key_id,
            key_fingerprint: Sha256::digest(&spki).into(),
            not_before_unix: unix(tbs.validity.not_before.to_unix_duration()),
            not_after_unix: unix(tbs.validity.not_after.to_unix_duration()),
        })
    }

    /// The anchor from a certificate file's content holding exactly one certificate: PEM
    /// (`-----BEGIN CERTIFICATE-----`) or raw DER.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CertError> {
        let der = pem_or_der(bytes, PEM_CERTIFICATE).map_err(CertError::Pem)?;
        Self::from_der(&der)
    }

    /// Every anchor in a bundle file: one or more PEM `CERTIFICATE` blocks (text between them,
    /// as `openssl x509 -text` writes, is allowed), or one raw DER certificate. One bad block
    /// refuses the whole file, naming the block, since a half-read trust configuration would
    /// hide a mistake.
    pub fn all_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Self>, CertError> {
        let ders = pem_blocks_or_der(bytes, PEM_CERTIFICATE).map_err(CertError::Pem)?;
        if ders.is_empty() {
            return Err(CertError::Empty);
        }
        let total = ders.len();
        ders.iter()
            .enumerate()
            .map(|(i, der)| {
                Self::from_der(der).map_err(|error| {
                    if total == 1 {
                        error
                    } else {
                        CertError::InFile {
                            number: i + 1,
                            total,
                            error: Box::new(error),
                        }
                    }
                })
            })
            .collect()
    }

    /// The CA's distinguished name: the issuer of every certificate and CRL it signs.
    pub fn subject(&self) -> &Name {
        &self.subject
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public_key
    }

    /// The CA certificate's subject key identifier (RFC 5280 section 4.2.1.2), if it has one:
    /// what the authority key identifier of the certificates and CRLs it signs repeats.
    pub fn key_id(&self) -> Option<&[u8]> {
        self.key_id.as_deref()
    }

    /// The key identifier as `openssl x509 -text` prints it (`1A:C1:00:F5:…`), or `no key
    /// identifier` when the certificate carries none.
    pub fn key_id_hex(&self) -> String {
        match &self.key_id {
            Some(id) => colon_hex(id),
            None => "no key identifier".to_owned(),
        }
    }

    /// SHA-256 of the CA's DER SubjectPublicKeyInfo: names the CA's key whether or not the
    /// certificate carries a key identifier. Serial numbers are unique per CA key only, so
    /// whatever identifies a user certificate must include this.
    pub fn key_fingerprint(&self) -> &[u8; 32] {
        &self.key_fingerprint
    }

    /// Start of the CA's validity (seconds since the Unix epoch).
    pub fn not_before_unix(&self) -> i64 {
        self.not_before_unix
    }

    /// End of the CA's validity (seconds since the Unix epoch, inclusive): after it, every
    /// certificate the CA issued is expired.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after_unix
    }

    /// Whether the CA's validity has ended at `now_unix`.
    pub fn has_ended(&self, now_unix: i64) -> bool {
        now_unix > self.not_after_unix
    }

    /// Whether the anchor may have issued an object naming `issuer` with authority key
    /// identifier `aki`: same DN, and key identifiers equal when both sides carry one. The
    /// signature decides; this only keeps other generations from being tried.
    fn may_have_issued(&self, issuer: &Name, aki: Option<&[u8]>) -> bool {
        *issuer == self.subject
            && match (aki, self.key_id.as_deref()) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            }
    }

    /// Whether `signature` is the anchor's sha256WithRSA signature over `signed`.
    fn signed(&self, signed: &[u8], signature: &[u8]) -> bool {
        self.public_key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(signed),
                signature,
            )
            .is_ok()
    }

    /// Same name, key, key identifier and validity: the same CA certificate, e.g. listed in
    /// two files of one configuration.
    pub fn same_certificate(&self, other: &TrustAnchor) -> bool {
        self.subject == other.subject
            && self.public_key == other.public_key
            && self.key_id == other.key_id
            && self.not_before_unix == other.not_before_unix
            && self.not_after_unix == other.not_after_unix
    }
}

/// The CAs a server trusts for user-authentication certificates: every generation of the JPKI
/// user-authentication CA that may have issued a card in use. Anchors are kept in the order
/// given, duplicates dropped; an index into [`TrustBundle::anchors`] names a CA.
#[derive(Clone, Debug)]
pub struct TrustBundle {
    anchors: Vec<TrustAnchor>,
}

/// A certificate verified against a bundle, with the CA that issued it.
#[derive(Clone, Debug)]
pub struct BundleVerified {
    /// Index of the issuing CA in [`TrustBundle::anchors`]: its CRL is the one to consult.
    pub anchor: usize,
    pub certificate: VerifiedCertificate,
}

/// A refused certificate, with the CA that signed it when one of the bundle did (so that an
/// expired generation can be told from an expired certificate in the operator's log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleRefusal {
    pub refusal: CertRefusal,
    pub anchor: Option<usize>,
}

impl TrustBundle {
    /// The bundle of `anchors` (at least one; exact duplicates are dropped).
    pub fn new(anchors: Vec<TrustAnchor>) -> Result<Self, CertError> {
        let mut kept: Vec<TrustAnchor> = Vec::with_capacity(anchors.len());
        for anchor in anchors {
            if !kept.iter().any(|k| k.same_certificate(&anchor)) {
                kept.push(anchor);
            }
        }
        if kept.is_empty() {
            return Err(CertError::Empty);
        }
        Ok(Self { anchors: kept })
    }

    /// The CAs, in configuration order.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// Which CA issued the certificate (DER), then its validity at `now_unix` within that CA's
    /// validity. The issuer is the CA whose subject equals the certificate's issuer, whose
    /// subject key identifier equals its authority key identifier (any same-DN CA is tried
    /// when either side has none), and whose key verifies its signature. Revocation is the
    /// caller's, with the issuing CA's [`RevocationList`].
    pub fn verify_certificate(
        &self,
        der_bytes: &[u8],
        now_unix: i64,
    ) -> Result<BundleVerified, BundleRefusal> {
        verify_against(der_bytes, &self.anchors, now_unix)
    }

    /// The CA of the bundle that issued and signed a CRL (DER), and the list if it is current
    /// at `now_unix`. The CA is chosen like a certificate's: DN, authority key identifier,
    /// signature.
    pub fn revocation_list(
        &self,
        crl_der: &[u8],
        now_unix: i64,
    ) -> Result<(usize, RevocationList), CrlError> {
        let crl =
            CertificateList::from_der(crl_der).map_err(|e| CrlError::Malformed(e.to_string()))?;
        let tbs = &crl.tbs_cert_list;
        let extensions = tbs.crl_extensions.as_deref().unwrap_or_default();
        let aki = authority_key_id(extensions).map_err(|e| CrlError::Malformed(e.to_string()))?;
        let signed = crl_signed_part(&crl)?;
        let anchor = self.anchors.iter().position(|anchor| {
            anchor.may_have_issued(&tbs.issuer, aki.as_deref())
                && signed
                    .as_ref()
                    .is_some_and(|(tbs_der, signature)| anchor.signed(tbs_der, signature))
        });
        match anchor {
            Some(index) => match RevocationList::current(&crl, now_unix) {
                Err(CrlError::Stale { .. })
                    if self
                        .anchors
                        .get(index)
                        .is_some_and(|a| a.has_ended(now_unix)) =>
                {
                    Err(CrlError::OfEndedCa {
                        ca: self
                            .anchors
                            .get(index)
                            .map(|a| format!("SKI {}", a.key_id_hex()))
                            .unwrap_or_default(),
                    })
                }
                list => Ok((index, list?)),
            },
            None => Err(CrlError::NoIssuerInBundle {
                key_id: aki.as_deref().map(colon_hex),
            }),
        }
    }

    /// The list from a CRL file's content (PEM `X509 CRL` or raw DER), with its CA's index.
    pub fn revocation_list_from_pem_or_der(
        &self,
        bytes: &[u8],
        now_unix: i64,
    ) -> Result<(usize, RevocationList), CrlError> {
        let der = pem_or_der(bytes, PEM_CRL).map_err(CrlError::Pem)?;
        self.revocation_list(&der, now_unix)
    }
}

/// A certificate that the anchor issued and that is valid at the instant it was checked.
#[derive(Clone, Debug)]
pub struct VerifiedCertificate {
    /// Serial number, big-endian, leading zero bytes (DER sign padding) trimmed.
    pub serial: Vec<u8>,
    /// The card's user-authentication public key.
    pub public_key: RsaPublicKey,
}

impl VerifiedCertificate {
    /// The serial as a number, or `None` when it does not fit in 64 bits.
    pub fn serial_u64(&self) -> Option<u64> {
        if self.serial.len() > 8 {
            return None;
        }
        Some(
            self.serial
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }
}

/// Issuer and signature first, then validity at `now_unix` (within the anchor's own validity).
/// Expired and not-yet-valid are told apart for the patient's message; revocation is the
/// caller's, with a [`RevocationList`]. For several CA generations use a [`TrustBundle`].
pub fn verify_certificate(
    der_bytes: &[u8],
    anchor: &TrustAnchor,
    now_unix: i64,
) -> Result<VerifiedCertificate, CertRefusal> {
    verify_against(der_bytes, core::slice::from_ref(anchor), now_unix)
        .map(|verified| verified.certificate)
        .map_err(|refused| refused.refusal)
}

fn verify_against(
    der_bytes: &[u8],
    anchors: &[TrustAnchor],
    now_unix: i64,
) -> Result<BundleVerified, BundleRefusal> {
    let refuse = |refusal, anchor| BundleRefusal { refusal, anchor };
    let cert =
        Certificate::from_der(der_bytes).map_err(|_| refuse(CertRefusal::Malformed, None))?;
    let tbs = &cert.tbs_certificate;
    // The inner algorithm is covered by the signature and must repeat the outer one
    // (RFC 5280 section 4.1.1.2).
    if cert.signature_algorithm.oid != SHA256_WITH_RSA || tbs.signature.oid != SHA256_WITH_RSA {
        return Err(refuse(CertRefusal::Untrusted, None));
    }
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let aki = authority_key_id(extensions).map_err(|_| refuse(CertRefusal::Malformed, None))?;
    let tbs_der = tbs
        .to_der()
        .map_err(|_| refuse(CertRefusal::Malformed, None))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or(refuse(CertRefusal::Malformed, None))?;
    let not_before = unix(tbs.validity.not_before.to_unix_duration());
    let not_after = unix(tbs.validity.not_after.to_unix_duration());
    // The signers among the candidates; with one key per generation there is at most one,
    // but a CA certificate re-issued over the same key may be configured beside the old one:
    // then the one valid now counts.
    let mut signers = anchors.iter().enumerate().filter(|(_, anchor)| {
        anchor.may_have_issued(&tbs.issuer, aki.as_deref()) && anchor.signed(&tbs_der, signature)
    });
    let first = signers.next().ok_or(refuse(CertRefusal::Untrusted, None))?;
    let (index, anchor) = core::iter::once(first)
        .chain(signers)
        .find(|(_, a)| (a.not_before_unix..=a.not_after_unix).contains(&now_unix))
        .unwrap_or(first);
    if now_unix < not_before.max(anchor.not_before_unix) {
        return Err(refuse(CertRefusal::NotYetValid, Some(index)));
    }
    if now_unix > not_after.min(anchor.not_after_unix) {
        return Err(refuse(CertRefusal::Expired, Some(index)));
    }
    check_user_certificate_profile(extensions).map_err(|refusal| refuse(refusal, Some(index)))?;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| refuse(CertRefusal::Malformed, Some(index)))?;
    let public_key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|_| refuse(CertRefusal::Malformed, Some(index)))?;
    Ok(BundleVerified {
        anchor: index,
        certificate: VerifiedCertificate {
            serial: trim_serial(tbs.serial_number.as_bytes()).to_vec(),
            public_key,
        },
    })
}

/// Extensions of a user certificate that this verifier knows (RFC 5280 section 4.2): the ones
/// it processes (basicConstraints, keyUsage, extendedKeyUsage, certificatePolicies, the key
/// identifiers) and the informational ones a JPKI user-authentication certificate carries
/// (subject and issuer alternative names, CRL distribution points, authority information
/// access). Any other extension marked critical refuses the certificate (RFC 5280 section
/// 4.2: "A certificate-using system MUST reject the certificate if it encounters a critical
/// extension it does not recognize").
const KNOWN_CERTIFICATE_EXTENSIONS: [ObjectIdentifier; 9] = [
    BASIC_CONSTRAINTS,
    KEY_USAGE,
    EXTENDED_KEY_USAGE,
    CERTIFICATE_POLICIES,
    ObjectIdentifier::new_unwrap("2.5.29.14"), // subjectKeyIdentifier
    ObjectIdentifier::new_unwrap("2.5.29.35"), // authorityKeyIdentifier
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subjectAltName
    ObjectIdentifier::new_unwrap("2.5.29.18"), // issuerAltName
    ObjectIdentifier::new_unwrap("2.5.29.31"), // cRLDistributionPoints
];
/// authorityInfoAccess (RFC 5280 section 4.2.2.1), also known.
const AUTHORITY_INFO_ACCESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const CERTIFICATE_POLICIES: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
/// id-kp-clientAuth and anyExtendedKeyUsage (RFC 5280 section 4.2.1.12).
const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
/// J-LIS's arc (公的個人認証サービス): purposes J-LIS defines under it are its own to define.
const JPKI_ARC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149");
/// The JPKI certificate policy of 署名用電子証明書 (jpki-cp-digitalSignature; class 20 is
/// `.1.1.20`); user-authentication certificates carry `1.2.392.200149.8.5.1.3.30`
/// (jpki-cp-auth-class30). Source: the JPKI OID list published with jsrsasign's JPKI add-on.
const JPKI_SIGNATURE_POLICY_ARC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.1");

/// Whether `oid` is `arc` or lies under it. DER encodes each arc after the first two on its
/// own bytes, the last byte of each with the top bit clear, so a byte prefix ends on an arc
/// boundary exactly when the arcs are a prefix.
fn under(oid: &ObjectIdentifier, arc: &ObjectIdentifier) -> bool {
    oid.as_bytes().starts_with(arc.as_bytes())
}

/// The profile of a user-authentication certificate, after its CA's signature was checked:
///
/// - each extension at most once (else [`CertRefusal::Malformed`]: a second basicConstraints
///   could otherwise hide behind the first);
/// - no critical extension outside the known set (else [`CertRefusal::Untrusted`]);
/// - basicConstraints absent or cA = FALSE; keyUsage present with digitalSignature (the JPKI
///   利用者証明用電子証明書 asserts digitalSignature, the card's key signs challenges) and
///   without keyCertSign or cRLSign; an extendedKeyUsage, when present, allowing client
///   authentication (id-kp-clientAuth, anyExtendedKeyUsage, or a purpose under J-LIS's arc
///   `1.2.392.200149`); no certificate policy under the JPKI 署名用 arc
///   `1.2.392.200149.8.5.1.1`. Anything else is [`CertRefusal::WrongType`]: a CA
///   certificate, a 署名用電子証明書 (nonRepudiation, its own policy) or another certificate
///   type presented as the user's.
///
/// nonRepudiation beside digitalSignature is allowed: some profiles set both, and the test
/// CA's user certificates (x509-cert's leaf profile) do.
pub fn check_user_certificate_profile(extensions: &[Extension]) -> Result<(), CertRefusal> {
    if duplicate_extension(extensions).is_some() {
        return Err(CertRefusal::Malformed);
    }
    if extensions.iter().any(|e| {
        e.critical
            && e.extn_id != AUTHORITY_INFO_ACCESS
            && !KNOWN_CERTIFICATE_EXTENSIONS.contains(&e.extn_id)
    }) {
        return Err(CertRefusal::Untrusted);
    }
    let malformed = |_| CertRefusal::Malformed;
    if extension::<BasicConstraints>(extensions)
        .map_err(malformed)?
        .is_some_and(|constraints| constraints.ca)
    {
        return Err(CertRefusal::WrongType);
    }
    match extension::<KeyUsage>(extensions).map_err(malformed)? {
        Some(usage) if usage.digital_signature() && !usage.key_cert_sign() && !usage.crl_sign() => {
        }
        _ => return Err(CertRefusal::WrongType),
    }
    if let Some(purposes) = extension::<ExtendedKeyUsage>(extensions).map_err(malformed)?
        && !purposes.0.iter().any(|purpose| {
            *purpose == CLIENT_AUTH
                || *purpose == ANY_EXTENDED_KEY_USAGE
                || under(purpose, &JPKI_ARC)
        })
    {
        return Err(CertRefusal::WrongType);
    }
    if let Some(policies) = extension::<CertificatePolicies>(extensions).map_err(malformed)?
        && policies
            .0
            .iter()
            .any(|policy| under(&policy.policy_identifier, &JPKI_SIGNATURE_POLICY_ARC))
    {
        return Err(CertRefusal::WrongType);
    }
    Ok(())
}

/// The first extension identifier that occurs twice, if any.
fn duplicate_extension(extensions: &[Extension]) -> Option<ObjectIdentifier> {
    extensions.iter().enumerate().find_map(|(i, e)| {
        extensions[..i]
            .iter()
            .any(|earlier| earlier.extn_id == e.extn_id)
            .then_some(e.extn_id)
    })
}

/// The first extension of type `T` among `extensions`, decoded; an undecodable one is an
/// error rather than absent, so a damaged identifier cannot widen the search.
fn extension<T>(extensions: &[Extension]) -> Result<Option<T>, der::Error>
where
    T: der::oid::AssociatedOid + for<'a> Decode<'a>,
{
    extensions
        .iter()
        .find(|e| e.extn_id == T::OID)
        .map(|e| T::from_der(e.extn_value.as_bytes()))
        .transpose()
}

/// The keyIdentifier of an authority key identifier extension, if present.
fn authority_key_id(extensions: &[Extension]) -> Result<Option<Vec<u8>>, der::Error> {
    Ok(extension::<AuthorityKeyIdentifier>(extensions)?
        .and_then(|aki| aki.key_identifier)
        .map(|id| id.as_bytes().to_vec()))
}

/// `95:67:95:1B:…`, as `openssl x509 -text` prints key identifiers.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A signed body (DER) and its signature.
type SignedPart = (Vec<u8>, Vec<u8>);

/// The signed part of a CRL and its signature, or `None` when the algorithms are not
/// sha256WithRSA (outer and inner alike, RFC 5280 section 5.1.1.2: checking both leaves no
/// room for a substituted algorithm) so that no key can verify it.
fn crl_signed_part(crl: &CertificateList) -> Result<Option<SignedPart>, CrlError> {
    if crl.signature_algorithm.oid != SHA256_WITH_RSA
        || crl.tbs_cert_list.signature.oid != SHA256_WITH_RSA
    {
        return Ok(None);
    }
    let tbs_der = crl
        .tbs_cert_list
        .to_der()
        .map_err(|e| CrlError::Malformed(e.to_string()))?;
    let signature = crl
        .signature
        .as_bytes()
        .ok_or_else(|| CrlError::Malformed("signature is not whole bytes".into()))?;
    Ok(Some((tbs_der, signature.to_vec())))
}

/// The card's signature over a message (the card signs a SHA-256 DigestInfo, PKCS#1 v1.5).
pub fn verify_card_signature(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(message),
        signature,
    )
    .is_ok()
}

/// The serials a CA has revoked, from a CRL it signed and that was current when loaded.
#[derive(Clone, Debug)]
pub struct RevocationList {
    /// Trimmed like [`VerifiedCertificate::serial`], so the two compare byte for byte.
    revoked: BTreeSet<Vec<u8>>,
    this_update_unix: i64,
    next_update_unix: i64,
    /// The cRLNumber extension's value, big-endian without sign padding.
    crl_number: Option<Vec<u8>>,
}

/// CRL extensions this verifier knows (RFC 5280 section 5.2): authority key identifier, CRL
/// number, issuer alternative name, issuing distribution point (checked: a list narrowed to
/// some reasons or other certificate kinds is refused), freshest CRL and authority
/// information access. deltaCRLIndicator is not among them: delta lists are not supported,
/// and since it is always critical, a delta list is refused.
const KNOWN_CRL_EXTENSIONS: [ObjectIdentifier; 6] = [
    ObjectIdentifier::new_unwrap("2.5.29.35"), // authorityKeyIdentifier
    ObjectIdentifier::new_unwrap("2.5.29.20"), // cRLNumber
    ObjectIdentifier::new_unwrap("2.5.29.18"), // issuerAltName
    ISSUING_DISTRIBUTION_POINT,
    ObjectIdentifier::new_unwrap("2.5.29.46"), // freshestCRL
    AUTHORITY_INFO_ACCESS,
];

/// issuingDistributionPoint (RFC 5280 section 5.2.5).
const ISSUING_DISTRIBUTION_POINT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.28");

/// CRL entry extensions this verifier knows (RFC 5280 section 5.3): reason code, hold
/// instruction code, invalidity date. certificateIssuer (always critical, indirect lists) is
/// not, so an indirect list is refused.
const KNOWN_CRL_ENTRY_EXTENSIONS: [ObjectIdentifier; 3] = [
    ObjectIdentifier::new_unwrap("2.5.29.21"), // reasonCode
    ObjectIdentifier::new_unwrap("2.5.29.23"), // holdInstructionCode
    ObjectIdentifier::new_unwrap("2.5.29.24"), // invalidityDate
];

/// Compares two unsigned big-endian numbers without leading zero bytes.
fn number_cmp(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "0".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl RevocationList {
    /// The list from a DER CRL: issuer equal to the anchor's subject (and authority key
    /// identifier equal to its subject key identifier when both are present), sha256WithRSA
    /// signature by the anchor, a next update after `now_unix`, a complete list (see the issuing
    /// distribution point) and no critical extension this verifier does not process.
    pub fn from_der(crl_der: &[u8], anchor: &TrustAnchor, now_unix: i64) -> Result<Self, CrlError> {
        let crl =
            CertificateList::from_der(crl_der).map_err(|e| CrlError::Malformed(e.to_string()))?;
        let tbs = &crl.tbs_cert_list;
        let extensions = tbs.crl_extensions.as_deref().unwrap_or_default();
        let aki = authority_key_id(extensions).map_err(|e| CrlError::Malformed(e.to_string()))?;
        if !anchor.may_have_issued(&tbs.issuer, aki.as_deref()) {
            return Err(CrlError::Untrusted);
        }
        match crl_signed_part(&crl)? {
            Some((tbs_der, signature)) if anchor.signed(&tbs_der, &signature) => {
                Self::current(&crl, now_unix)
            }
            _ => Err(CrlError::Untrusted),
        }
    }

    /// The revoked serials of a CRL whose signature was checked, if it is current, complete
    /// and carries no critical extension this verifier does not process (list or entry).
    fn current(crl: &CertificateList, now_unix: i64) -> Result<Self, CrlError> {
        let tbs = &crl.tbs_cert_list;
        let extensions = tbs.crl_extensions.as_deref().unwrap_or_default();
        if let Some(oid) = duplicate_extension(extensions) {
            return Err(CrlError::DuplicateExtension(oid.to_string()));
        }
        if let Some(unknown) = extensions
            .iter()
            .find(|e| e.critical && !KNOWN_CRL_EXTENSIONS.contains(&e.extn_id))
        {
            return Err(CrlError::UnsupportedCriticalExtension {
                oid: unknown.extn_id.to_string(),
                in_entry: false,
            });
        }
        let malformed = |e: der::Error| CrlError::Malformed(e.to_string());
        // By its identifier, not `IssuingDistributionPoint::OID`: x509-cert 0.2.5 associates
        // the type with id-pe-subjectInfoAccess (1.3.6.1.5.5.7.1.11) instead of 2.5.29.28.
        let scope = extensions
            .iter()
            .find(|e| e.extn_id == ISSUING_DISTRIBUTION_POINT)
            .map(|e| IssuingDistributionPoint::from_der(e.extn_value.as_bytes()))
            .transpose()
            .map_err(malformed)?;
        if let Some(scope) = scope {
            // onlyContainsUserCerts is fine: user certificates are what is checked here.
            if scope.only_some_reasons.is_some() {
                return Err(CrlError::Partial("only some revocation reasons"));
            }
            if scope.only_contains_ca_certs || scope.only_contains_attribute_certs {
                return Err(CrlError::Partial("not user certificates"));
            }
            if scope.indirect_crl {
                return Err(CrlError::Partial("an indirect list"));
            }
            // A distribution point names one partition of a partitioned list: revoked
            // certificates of the other partitions are not in it (RFC 5280 section 6.3.3).
            if scope.distribution_point.is_some() {
                return Err(CrlError::Partial("one partition of a partitioned list"));
            }
        }
        for entry in tbs.revoked_certificates.iter().flatten() {
            let entry_extensions = entry.crl_entry_extensions.as_deref().unwrap_or_default();
            if let Some(unknown) = entry_extensions
                .iter()
                .find(|e| e.critical && !KNOWN_CRL_ENTRY_EXTENSIONS.contains(&e.extn_id))
            {
                return Err(CrlError::UnsupportedCriticalExtension {
                    oid: unknown.extn_id.to_string(),
                    in_entry: true,
                });
            }
        }
        let crl_number = extension::<CrlNumber>(extensions)
            .map_err(malformed)?
            .map(|number| trim_serial(number.0.as_bytes()).to_vec());
        let next_update_unix = tbs
            .next_update
            .map(|t| unix(t.to_unix_duration()))
            .ok_or(CrlError::NoNextUpdate)?;
        if now_unix >= next_update_unix {
            return Err(CrlError::Stale { next_update_unix });
        }
        let revoked = tbs
            .revoked_certificates
            .iter()
            .flatten()
            .map(|entry| trim_serial(entry.serial_number.as_bytes()).to_vec())
            .collect();
        Ok(Self {
            revoked,
            this_update_unix: unix(tbs.this_update.to_unix_duration()),
            next_update_unix,
            crl_number,
        })
    }

    /// Whether the list may replace `in_force`, the same CA's list in force: neither its
    /// thisUpdate nor its CRL number goes back (RFC 5280 section 5.2.3: the number increases
    /// with each list), and it keeps a CRL number when the list in force has one. An older
    /// list (a replayed or rolled-back file) is [`CrlError::Older`]; the same list again is
    /// fine.
    pub fn may_replace(&self, in_force: &RevocationList) -> Result<(), CrlError> {
        if self.this_update_unix < in_force.this_update_unix {
            return Err(CrlError::Older(format!(
                "its thisUpdate {} is before {}",
                utc(self.this_update_unix),
                utc(in_force.this_update_unix)
            )));
        }
        match (&self.crl_number, &in_force.crl_number) {
            (Some(new), Some(old)) if number_cmp(new, old).is_lt() => Err(CrlError::Older(
                format!("its CRL number {} is below {}", hex(new), hex(old)),
            )),
            (None, Some(old)) => Err(CrlError::Older(format!(
                "it has no CRL number, the list in force has {}",
                hex(old)
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the list is stale at `now_unix`: its nextUpdate has passed by more than
    /// `grace_secs`. A stale list no longer says which certificates are revoked, so a verifier
    /// must refuse certificates rather than rely on it.
    pub fn is_stale_at(&self, now_unix: i64, grace_secs: i64) -> bool {
        now_unix >= self.next_update_unix.saturating_add(grace_secs)
    }

    /// The list's CRL number (big-endian, leading zero bytes trimmed), if it carries one.
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.crl_number.as_deref()
    }

    /// The list from a CRL file's content: PEM (`-----BEGIN X509 CRL-----`) or raw DER.
    pub fn from_pem_or_der(
        bytes: &[u8],
        anchor: &TrustAnchor,
        now_unix: i64,
    ) -> Result<Self, CrlError> {
        let der = pem_or_der(bytes, PEM_CRL).map_err(CrlError::Pem)?;
        Self::from_der(&der, anchor, now_unix)
    }

    /// Whether the CA has revoked this certificate.
    pub fn is_revoked(&self, cert: &VerifiedCertificate) -> bool {
        self.revoked.contains(&cert.serial)
    }

    /// When the CA issued the list (seconds since the Unix epoch).
    pub fn this_update_unix(&self) -> i64 {
        self.this_update_unix
    }

    /// When the CA promises the next list; the list must be replaced before then.
    pub fn next_update_unix(&self) -> i64 {
        self.next_update_unix
    }

    /// How many serials are revoked.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether no serial is revoked.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

/// `2025-10-19T14:59:59Z`, or the raw number when outside what X.509 dates can say.
fn utc(unix_secs: i64) -> String {
    u64::try_from(unix_secs)
        .ok()
        .and_then(|secs| {
            der::DateTime::from_unix_duration(core::time::Duration::from_secs(secs)).ok()
        })
        .map(|t| t.to_string())
        .unwrap_or_else(|| format!("unix {unix_secs}"))
}

fn unix(duration: core::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// DER integers carry a leading zero byte when the top bit is set; the serial's value does not.
fn trim_serial(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The DER inside a file that is either raw DER or holds exactly one PEM block with `label`.
/// Text around the block (as `openssl x509 -text` writes) is allowed; a second block is not,
/// since silently ignoring part of a trust configuration would hide a mistake.
fn pem_or_der<'a>(bytes: &'a [u8], label: &str) -> Result<Cow<'a, [u8]>, &'static str> {
    const BEGIN_ANY: &[u8] = b"-----BEGIN ";
    // DER starts with a SEQUENCE tag (0x30), never with dashes, so this cannot misread DER
    // unless the DER is garbage anyway.
    let Some(first_begin) = find(bytes, BEGIN_ANY) else {
        return Ok(Cow::Borrowed(bytes));
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = find(bytes, begin.as_bytes()).ok_or("no BEGIN line with the expected label")?;
    if start != first_begin {
        return Err("a PEM block with another label comes first");
    }
    let body_start = start + begin.len();
    let body_len = find(&bytes[body_start..], end.as_bytes()).ok_or("no END line")?;
    let body = &bytes[body_start..body_start + body_len];
    let rest = &bytes[body_start + body_len + end.len()..];
    if find(rest, BEGIN_ANY).is_some() {
        return Err("more than one PEM block");
    }
    let base64: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&base64)
        .map(Cow::Owned)
        .map_err(|_| "body is not base64")
}

/// The DER of every PEM block in a file whose blocks all carry `label`, or the file itself when
/// it holds no PEM (raw DER; an empty or blank file gives no block). Text between and around
/// blocks is allowed; a block with another label, without its END line or with a body that
/// is not base64 refuses the whole file.
fn pem_blocks_or_der(bytes: &[u8], label: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    const BEGIN_ANY: &[u8] = b"-----BEGIN ";
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    if find(bytes, BEGIN_ANY).is_none() {
        return Ok(vec![bytes.to_vec()]);
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = bytes;
    while let Some(at) = find(rest, BEGIN_ANY) {
        if !rest[at..].starts_with(begin.as_bytes()) {
            return Err("a PEM block has another label than expected");
        }
        let body_start = at + begin.len();
        let body_len = find(&rest[body_start..], end.as_bytes()).ok_or("no END line")?;
        let body = &rest[body_start..body_start + body_len];
        if find(body, BEGIN_ANY).is_some() {
            return Err("a BEGIN line inside a block (missing END line)");
        }
        let base64: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        blocks.push(
            base64::engine::general_purpose::STANDARD
                .decode(&base64)
                .map_err(|_| "body is not base64")?,
        );
        rest = &rest[body_start + body_len + end.len()..];
    }
    Ok(blocks)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with_serial(serial: &[u8]) -> VerifiedCertificate {
        VerifiedCertificate {
            serial: serial.to_vec(),
            public_key: RsaPublicKey::new_unchecked(
                rsa::BigUint::from(0xC5u32),
                rsa::BigUint::from(3u32),
            ),
        }
    }

    #[test]
    fn serials_read_big_endian_without_sign_padding() {
        assert_eq!(trim_serial(&[0, 0x27, 0x11]), &[0x27, 0x11]);
        assert_eq!(trim_serial(&[0, 0]), &[] as &[u8]);
        assert_eq!(cert_with_serial(&[0x27, 0x11]).serial_u64(), Some(10_001));
        assert_eq!(cert_with_serial(&[1; 9]).serial_u64(), None);
        assert_eq!(cert_with_serial(&[]).serial_u64(), Some(0));
    }

    #[test]
    fn pem_blocks_are_found_with_their_label_only() {
        let pem = b"subject=...\n-----BEGIN CERTIFICATE-----\r\nAAEC\r\nAw==\r\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_or_der(pem, PEM_CERTIFICATE).as_deref(),
            Ok(&[0, 1, 2, 3][..])
        );
        assert!(pem_or_der(pem, PEM_CRL).is_err());
        assert_eq!(
            pem_or_der(b"\x30\x00", PEM_CRL).as_deref(),
            Ok(&[0x30, 0][..])
        );
        let two = [&pem[..], &pem[..]].concat();
        assert!(pem_or_der(&two, PEM_CERTIFICATE).is_err());
        assert!(pem_or_der(b"-----BEGIN CERTIFICATE-----\nAA!=\n", PEM_CERTIFICATE).is_err());
        assert!(
            pem_or_der(
                b"-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----",
                PEM_CERTIFICATE
            )
            .is_err()
        );
        assert!(pem_or_der(b"-----BEGIN ", PEM_CERTIFICATE).is_err());
    }
}
