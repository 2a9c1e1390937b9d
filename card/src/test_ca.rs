//! A test certification authority standing in for the JPKI user-authentication CA, so that
//! virtual cards, the server's verification and the backend simulator can be exercised without
//! real JPKI material.
//!
//! Everything here is derived from public seeds: the keys are **not secret** and the names say
//! "Test" on purpose. Never trust this CA outside tests and the demo card (デモ・練習用).
//!
//! ```no_run
//! use uketsuke_card::test_ca::{TestCa, UserCertificateRequest, generate_rsa_key};
//! # fn main() -> Result<(), uketsuke_card::test_ca::TestCaError> {
//! let ca = TestCa::from_seed(1)?;
//! let user_key = generate_rsa_key(42)?;
//! let cert_der = ca.issue_user_certificate(&UserCertificateRequest {
//!     serial: 42,
//!     subject_common_name: "UKETSUKE TEST USER 0042".into(),
//!     not_before_unix: 1_735_689_600,
//!     not_after_unix: 1_893_456_000,
//! }, &user_key.to_public_key())?;
//! # let _ = cert_der; Ok(()) }
//! ```

use core::str::FromStr;
use core::time::Duration;

use der::asn1::{BitString, GeneralizedTime, OctetString, Uint, UtcTime};
use der::oid::AssociatedOid;
use der::{Decode, Encode};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::signature::{SignatureEncoding, Signer};
// Re-exported: `generate_rsa_key` returns these, and tests name them.
pub use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use spki::{DynSignatureAlgorithmIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::certificate::TbsCertificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::crl::dp::Reasons;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlNumber, ExtendedKeyUsage,
    KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, Version};

/// Common name of the test CA certificate.
pub const TEST_CA_COMMON_NAME: &str = "Uketsuke Test JPKI User Authentication CA";
/// Organisation of every name this module issues, so no certificate can pass for a real one.
pub const TEST_ORGANIZATION: &str = "Uketsuke Test - NOT JPKI";
/// Key size of the JPKI user-authentication keys.
pub const RSA_BITS: usize = 2048;
/// The CA certificate's validity: 2024-01-01T00:00:00Z ..
pub const CA_NOT_BEFORE_UNIX: u64 = 1_704_067_200;
/// .. 2049-12-31T23:59:59Z (fixed, so the certificate bytes are reproducible).
pub const CA_NOT_AFTER_UNIX: u64 = 2_524_607_999;
/// Serial number of the CA certificate itself.
const CA_SERIAL: u64 = 1;
/// 2050-01-01T00:00:00Z: RFC 5280 dates before it are UTCTime, from it GeneralizedTime.
const GENERALIZED_TIME_FROM_UNIX: u64 = 2_524_608_000;

/// Errors building keys or certificates.
#[derive(Debug, thiserror::Error)]
pub enum TestCaError {
    #[error("RSA: {0}")]
    // rsa's error type implements `std::error::Error` only with its `std` feature, which we
    // leave off for wasm; so it is carried as a plain value, not a source.
    Rsa(rsa::Error),
    #[error("certificate builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    #[error("public key encoding: {0}")]
    Spki(#[from] spki::Error),
    #[error("invalid certificate request: {0}")]
    InvalidRequest(&'static str),
    #[error("signing: {0}")]
    // Carried as a value for the same reason as `Rsa`.
    Signing(rsa::signature::Error),
}

impl From<rsa::Error> for TestCaError {
    fn from(e: rsa::Error) -> Self {
        Self::Rsa(e)
    }
}

/// Generates an RSA-2048 key deterministically from `seed` (ChaCha20). Test material only.
pub fn generate_rsa_key(seed: u64) -> Result<RsaPrivateKey, TestCaError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Ok(RsaPrivateKey::new(&mut rng, RSA_BITS)?)
}

/// What a user certificate should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCertificateRequest {
    /// Certificate serial number; must not be zero.
    pub serial: u64,
    /// Subject CN. Real user-authentication certificates carry no name; tests use a label.
    pub subject_common_name: String,
    /// Start of validity (seconds since the Unix epoch).
    pub not_before_unix: u64,
    /// End of validity (seconds since the Unix epoch).
    pub not_after_unix: u64,
}

/// The test CA: its key, name and self-signed certificate.
///
/// Every test CA has the same name, whatever its key: like the generations of the JPKI
/// user-authentication CA (2015 and 2023), which share one subject DN and differ in key and
/// validity. [`TestCa::generation`] makes such a generation with its own validity.
pub struct TestCa {
    signing_key: SigningKey<Sha256>,
    public_key: RsaPublicKey,
    name: Name,
    certificate_der: Vec<u8>,
    /// The certificate's subject key identifier (SHA-1 of the key, RFC 5280 section
    /// 4.2.1.2 method 1, as the builder makes it): the authority key identifier of every
    /// certificate and CRL this CA issues.
    key_id: OctetString,
}

impl core::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestCa")
            .field("name", &self.name.to_string())
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// Builds the CA from a seed: same seed, same key, same certificate bytes.
    pub fn from_seed(seed: u64) -> Result<Self, TestCaError> {
        Self::from_key(generate_rsa_key(seed)?)
    }

    /// Builds the CA around an existing key, valid from [`CA_NOT_BEFORE_UNIX`] to
    /// [`CA_NOT_AFTER_UNIX`].
    pub fn from_key(key: RsaPrivateKey) -> Result<Self, TestCaError> {
        Self::generation(key, CA_NOT_BEFORE_UNIX, CA_NOT_AFTER_UNIX)
    }

    /// Builds one generation of the CA: the common name, this key, and a certificate valid
    /// from `not_before_unix` to `not_after_unix` (seconds since the Unix epoch, inclusive).
    /// A generation whose validity has ended still signs, so tests can hold certificates it
    /// issued while it was current.
    pub fn generation(
        key: RsaPrivateKey,
        not_before_unix: u64,
        not_after_unix: u64,
    ) -> Result<Self, TestCaError> {
        if not_after_unix <= not_before_unix {
            return Err(TestCaError::InvalidRequest(
                "validity ends before it starts",
            ));
        }
        let public_key = key.to_public_key();
        let signing_key = SigningKey::<Sha256>::new(key);
        let name = test_name(TEST_CA_COMMON_NAME)?;
        let validity = validity(not_before_unix, not_after_unix)?;
        let spki = SubjectPublicKeyInfoOwned::from_key(public_key.clone())?;
        let serial = SerialNumber::new(&CA_SERIAL.to_be_bytes())?;
        let builder = CertificateBuilder::new(
            Profile::Root,
            serial,
            validity,
            name.clone(),
            spki,
            &signing_key,
        )?;
        let certificate = builder.build::<Signature>()?;
        let key_id = certificate
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == SubjectKeyIdentifier::OID)
            .map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()))
            .transpose()?
            .ok_or(TestCaError::InvalidRequest(
                "the builder made no subject key identifier",
            ))?
            .0;
        Ok(Self {
            signing_key,
            public_key,
            name,
            certificate_der: certificate.to_der()?,
            key_id,
        })
    }

    /// The CA's self-signed certificate (DER): the trust anchor for test verification.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public_key
    }

    /// The CA's distinguished name (issuer of every certificate it signs).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The CA certificate's subject key identifier.
    pub fn key_id(&self) -> &[u8] {
        self.key_id.as_bytes()
    }

    /// Signs a certificate body as it is (sha256WithRSA; the body's `signature` algorithm must
    /// already say so). Test material: lets tests make certificates the builder will not, e.g.
    /// without an authority key identifier or naming another CA's key.
    pub fn sign_certificate(&self, tbs: TbsCertificate) -> Result<Vec<u8>, TestCaError> {
        let signature: Signature = self
            .signing_key
            .try_sign(&tbs.to_der()?)
            .map_err(TestCaError::Signing)?;
        let certificate = Certificate {
            signature_algorithm: tbs.signature.clone(),
            tbs_certificate: tbs,
            signature: BitString::from_bytes(&signature.to_bytes())?,
        };
        Ok(certificate.to_der()?)
    }

    /// Issues an end-entity certificate for `subject_key` (DER), signed RSA PKCS#1 v1.5 SHA-256,
    /// with key usage digitalSignature like a user-authentication certificate.
    pub fn issue_user_certificate(
        &self,
        request: &UserCertificateRequest,
        subject_key: &RsaPublicKey,
    ) -> Result<Vec<u8>, TestCaError> {
        if request.serial == 0 {
            return Err(TestCaError::InvalidRequest("serial must not be zero"));
        }
        if request.not_after_unix <= request.not_before_unix {
            return Err(TestCaError::InvalidRequest(
                "validity ends before it starts",
            ));
        }
        let profile = Profile::Leaf {
            issuer: self.name.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let spki = SubjectPublicKeyInfoOwned::from_key(subject_key.clone())?;
        let builder = CertificateBuilder::new(
            profile,
            SerialNumber::new(&request.serial.to_be_bytes())?,
            validity(request.not_before_unix, request.not_after_unix)?,
            test_name(&request.subject_common_name)?,
            spki,
            &self.signing_key,
        )?;
        Ok(builder.build::<Signature>()?.to_der()?)
    }

    /// Re-issues a certificate this CA signed (DER) with one [`Deviation`] from the
    /// user-authentication profile, same serial, subject, key and validity, signed again by
    /// this CA: the certificates an attacker holding a CA-signed certificate of another type
    /// would present, which verifiers must refuse (or, for
    /// [`Deviation::UnknownNonCriticalExtension`], accept).
    pub fn reissue_user_certificate(
        &self,
        certificate_der: &[u8],
        deviation: Deviation,
    ) -> Result<Vec<u8>, TestCaError> {
        let mut tbs = Certificate::from_der(certificate_der)?.tbs_certificate;
        let mut extensions = tbs.extensions.take().unwrap_or_default();
        let replace = |extensions: &mut Vec<Extension>, new: Extension| {
            extensions.retain(|e| e.extn_id != new.extn_id);
            extensions.push(new);
        };
        let extension = |oid, critical, value: Vec<u8>| -> Result<Extension, TestCaError> {
            Ok(Extension {
                extn_id: oid,
                critical,
                extn_value: OctetString::new(value)?,
            })
        };
        match deviation {
            Deviation::CaCertificate => {
                let constraints = BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                };
                replace(
                    &mut extensions,
                    extension(BasicConstraints::OID, true, constraints.to_der()?)?,
                );
                let usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
                replace(
                    &mut extensions,
                    extension(KeyUsage::OID, true, usage.to_der()?)?,
                );
            }
            Deviation::SignatureCertificate => {
                let usage = KeyUsage(KeyUsages::NonRepudiation.into());
                replace(
                    &mut extensions,
                    extension(KeyUsage::OID, true, usage.to_der()?)?,
                );
                let policies = CertificatePolicies(vec![PolicyInformation {
                    policy_identifier: JPKI_SIGNATURE_POLICY,
                    policy_qualifiers: None,
                }]);
                replace(
                    &mut extensions,
                    extension(CertificatePolicies::OID, false, policies.to_der()?)?,
                );
            }
            Deviation::SignaturePolicy => {
                let policies = CertificatePolicies(vec![PolicyInformation {
                    policy_identifier: JPKI_SIGNATURE_POLICY,
                    policy_qualifiers: None,
                }]);
                replace(
                    &mut extensions,
                    extension(CertificatePolicies::OID, false, policies.to_der()?)?,
                );
            }
            Deviation::KeyEnciphermentOnly => {
                let usage = KeyUsage(KeyUsages::KeyEncipherment.into());
                replace(
                    &mut extensions,
                    extension(KeyUsage::OID, true, usage.to_der()?)?,
                );
            }
            Deviation::NoKeyUsage => extensions.retain(|e| e.extn_id != KeyUsage::OID),
            Deviation::EmailProtectionOnly => {
                let purposes = ExtendedKeyUsage(vec![EMAIL_PROTECTION]);
                replace(
                    &mut extensions,
                    extension(ExtendedKeyUsage::OID, false, purposes.to_der()?)?,
                );
            }
            Deviation::ClientAuth => {
                let purposes = ExtendedKeyUsage(vec![CLIENT_AUTH]);
                replace(
                    &mut extensions,
                    extension(ExtendedKeyUsage::OID, false, purposes.to_der()?)?,
                );
            }
            Deviation::UnknownCriticalExtension | Deviation::UnknownNonCriticalExtension => {
                let critical = deviation == Deviation::UnknownCriticalExtension;
                replace(
                    &mut extensions,
                    extension(UNKNOWN_EXTENSION, critical, der::asn1::Null.to_der()?)?,
                );
            }
            Deviation::DuplicateBasicConstraints => {
                let constraints = BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                };
                extensions.push(extension(
                    BasicConstraints::OID,
                    true,
                    constraints.to_der()?,
                )?);
            }
        }
        tbs.extensions = Some(extensions);
        self.sign_certificate(tbs)
    }

    /// Issues a CRL v2 (DER) listing `revoked_serials`, each revoked at `this_update_unix`,
    /// signed RSA PKCS#1 v1.5 SHA-256. Its CRL number is `this_update_unix`, which grows with
    /// every later list as RFC 5280 section 5.2.3 asks. A `next_update_unix` in the past makes a
    /// stale list, which verifiers must refuse.
    pub fn issue_crl(
        &self,
        revoked_serials: &[u64],
        this_update_unix: i64,
        next_update_unix: i64,
    ) -> Result<Vec<u8>, TestCaError> {
        self.issue_crl_with(&CrlRequest {
            revoked_serials,
            this_update_unix,
            next_update_unix: Some(next_update_unix),
            crl_number: u64::try_from(this_update_unix).ok(),
            deviation: None,
        })
    }

    /// Issues a CRL v2 (DER) as `request` says: any CRL number (or none), no next update, or
    /// one [`CrlDeviation`], for tests of what verifiers must refuse.
    pub fn issue_crl_with(&self, request: &CrlRequest<'_>) -> Result<Vec<u8>, TestCaError> {
        let CrlRequest {
            revoked_serials,
            this_update_unix,
            next_update_unix,
            crl_number,
            deviation,
        } = *request;
        let this_update_secs = u64::try_from(this_update_unix)
            .map_err(|_| TestCaError::InvalidRequest("CRL dated before 1970"))?;
        let next_update_secs = next_update_unix
            .map(|next| {
                u64::try_from(next)
                    .map_err(|_| TestCaError::InvalidRequest("CRL dated before 1970"))
            })
            .transpose()?;
        if next_update_secs.is_some_and(|next| next <= this_update_secs) {
            return Err(TestCaError::InvalidRequest(
                "CRL next update is not after this update",
            ));
        }
        let unknown_critical = || -> Result<Extension, TestCaError> {
            Ok(Extension {
                extn_id: UNKNOWN_EXTENSION,
                critical: true,
                extn_value: OctetString::new(der::asn1::Null.to_der()?)?,
            })
        };
        if revoked_serials.contains(&0) {
            return Err(TestCaError::InvalidRequest("serial must not be zero"));
        }
        let this_update = rfc5280_time(this_update_secs)?;
        let revoked = revoked_serials
            .iter()
            .map(|serial| {
                Ok(RevokedCert {
                    serial_number: SerialNumber::new(&serial.to_be_bytes())?,
                    revocation_date: this_update,
                    crl_entry_extensions: match deviation {
                        Some(CrlDeviation::UnknownCriticalEntryExtension) => {
                            Some(vec![unknown_critical()?])
                        }
                        _ => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, TestCaError>>()?;
        let algorithm = self.signing_key.signature_algorithm_identifier()?;
        let mut crl_extensions = vec![Extension {
            extn_id: AuthorityKeyIdentifier::OID,
            critical: false,
            extn_value: OctetString::new(
                AuthorityKeyIdentifier {
                    key_identifier: Some(self.key_id.clone()),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                }
                .to_der()?,
            )?,
        }];
        if let Some(number) = crl_number {
            crl_extensions.push(Extension {
                extn_id: CrlNumber::OID,
                critical: false,
                extn_value: OctetString::new(
                    CrlNumber(Uint::new(&number.to_be_bytes())?).to_der()?,
                )?,
            });
        }
        match deviation {
            Some(CrlDeviation::UnknownCriticalExtension) => {
                crl_extensions.push(unknown_critical()?)
            }
            Some(CrlDeviation::DeltaCrl) => crl_extensions.push(Extension {
                // deltaCRLIndicator (RFC 5280 section 5.2.4), always critical.
                extn_id: der::asn1::ObjectIdentifier::new_unwrap("2.5.29.27"),
                critical: true,
                extn_value: OctetString::new(Uint::new(&[1])?.to_der()?)?,
            }),
            Some(deviation @ (CrlDeviation::OnlySomeReasons | CrlDeviation::Partition)) => {
                let partition = deviation == CrlDeviation::Partition;
                let scope = IssuingDistributionPoint {
                    // One partition, named by a directory name as JPKI certificates name their
                    // CRL distribution points.
                    distribution_point: partition.then(|| {
                        DistributionPointName::FullName(vec![GeneralName::DirectoryName(
                            self.name.clone(),
                        )])
                    }),
                    only_contains_user_certs: partition,
                    only_contains_ca_certs: false,
                    only_some_reasons: (!partition).then(|| Reasons::KeyCompromise.into()),
                    indirect_crl: false,
                    only_contains_attribute_certs: false,
                };
                crl_extensions.push(Extension {
                    // Not `IssuingDistributionPoint::OID`, which x509-cert 0.2.5 gets wrong.
                    extn_id: der::asn1::ObjectIdentifier::new_unwrap("2.5.29.28"),
                    critical: true,
                    extn_value: OctetString::new(scope.to_der()?)?,
                });
            }
            Some(CrlDeviation::UnknownCriticalEntryExtension) | None => {}
        }
        let tbs = TbsCertList {
            version: Version::V2,
            signature: algorithm.clone(),
            issuer: self.name.clone(),
            this_update,
            next_update: next_update_secs.map(rfc5280_time).transpose()?,
            // RFC 5280 section 5.1.2.6: absent, not empty, when nothing is revoked.
            revoked_certificates: (!revoked.is_empty()).then_some(revoked),
            // RFC 5280 section 5.2.1: conforming CAs MUST include the authority key identifier
            // in CRLs; it is how a verifier picks the generation that signed the list.
            crl_extensions: Some(crl_extensions),
        };
        let signature: Signature = self
            .signing_key
            .try_sign(&tbs.to_der()?)
            .map_err(TestCaError::Signing)?;
        let crl = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(&signature.to_bytes())?,
        };
        Ok(crl.to_der()?)
    }
}

/// What a test CRL should say ([`TestCa::issue_crl_with`]).
#[derive(Clone, Copy, Debug)]
pub struct CrlRequest<'a> {
    /// Serials revoked, each at `this_update_unix`; none may be zero.
    pub revoked_serials: &'a [u64],
    /// When the list is issued (seconds since the Unix epoch).
    pub this_update_unix: i64,
    /// When the next list is promised; `None` leaves the field out (verifiers refuse that).
    pub next_update_unix: Option<i64>,
    /// The cRLNumber extension's value; `None` leaves the extension out.
    pub crl_number: Option<u64>,
    /// One deviation from a plain complete list, if any.
    pub deviation: Option<CrlDeviation>,
}

/// Ways a test CRL departs from a plain, complete list (RFC 5280 sections 5.2 and 5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlDeviation {
    /// A critical list extension nobody knows ([`UNKNOWN_EXTENSION`]).
    UnknownCriticalExtension,
    /// A critical extension nobody knows on every entry.
    UnknownCriticalEntryExtension,
    /// A delta list (deltaCRLIndicator, critical).
    DeltaCrl,
    /// An issuing distribution point limited to keyCompromise: a partial list.
    OnlySomeReasons,
    /// An issuing distribution point naming one distribution point: one partition of a
    /// partitioned list.
    Partition,
}

/// Ways a re-issued user certificate departs from the user-authentication profile
/// ([`TestCa::reissue_user_certificate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deviation {
    /// basicConstraints cA = TRUE and keyUsage keyCertSign, cRLSign: a CA certificate.
    CaCertificate,
    /// keyUsage nonRepudiation only and the JPKI 署名用 certificate policy: like a
    /// 署名用電子証明書.
    SignatureCertificate,
    /// The JPKI 署名用 certificate policy, the key usage left as it is.
    SignaturePolicy,
    /// keyUsage keyEncipherment only: no digitalSignature.
    KeyEnciphermentOnly,
    /// No keyUsage extension at all.
    NoKeyUsage,
    /// extendedKeyUsage emailProtection only.
    EmailProtectionOnly,
    /// extendedKeyUsage clientAuth (allowed for user authentication).
    ClientAuth,
    /// A critical extension nobody knows ([`UNKNOWN_EXTENSION`]).
    UnknownCriticalExtension,
    /// The same unknown extension, not critical (to be ignored).
    UnknownNonCriticalExtension,
    /// A second basicConstraints (cA = TRUE) after the first.
    DuplicateBasicConstraints,
}

/// An extension identifier no verifier knows: under the example arc of RFC 7229
/// (1.3.6.1.5.5.7.13, id-TEST), so it can never clash with a real extension.
pub const UNKNOWN_EXTENSION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.13.1");
/// The JPKI 署名用電子証明書 certificate policy, class 20 (jpki-cp-sign-class20).
const JPKI_SIGNATURE_POLICY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.1.20");
/// id-kp-emailProtection and id-kp-clientAuth (RFC 5280 section 4.2.1.12).
const EMAIL_PROTECTION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
const CLIENT_AUTH: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");

/// A CRL date as RFC 5280 section 5.1.2.4 wants it: UTCTime through 2049, then GeneralizedTime.
fn rfc5280_time(secs: u64) -> Result<Time, TestCaError> {
    let duration = Duration::from_secs(secs);
    Ok(if secs < GENERALIZED_TIME_FROM_UNIX {
        Time::UtcTime(UtcTime::from_unix_duration(duration)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(duration)?)
    })
}

/// `CN=<cn>,O=<test organisation>,C=JP`, with RFC 4514 escaping of the CN.
fn test_name(common_name: &str) -> Result<Name, TestCaError> {
    if common_name.is_empty() {
        return Err(TestCaError::InvalidRequest("empty common name"));
    }
    let mut escaped = String::with_capacity(common_name.len());
    for c in common_name.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' | '#') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    Ok(Name::from_str(&format!(
        "CN={escaped},O={TEST_ORGANIZATION},C=JP"
    ))?)
}

fn validity(not_before_unix: u64, not_after_unix: u64) -> Result<Validity, TestCaError> {
    let time = |secs| -> Result<Time, TestCaError> {
        // The builder turns dates before 2050 into UTCTime as RFC 5280 requires.
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(
            Duration::from_secs(secs),
        )?))
    };
    Ok(Validity {
        not_before: time(not_before_unix)?,
        not_after: time(not_after_unix)?,
    })
}
