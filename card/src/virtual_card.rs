//! A virtual My Number card: the card side of the JPKI AP, answering APDUs the way the real
//! application does (status words included), with its own RSA-2048 key and a certificate from
//! the [test CA](crate::test_ca). Used by tests, the reader emulators and the demo card.
//!
//! The struct *is* the card: the PIN retry counter lives in it and survives sessions. A
//! session starts when the AP is selected (or the card is powered up, [`VirtualCard::reset`]);
//! a new session forgets the verified PIN and the current EF.

use core::fmt;

use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use crate::apdu::{Command, Response};
use crate::jpki::{
    CLA_ISO, CLA_PROPRIETARY, EF_USER_AUTH_CA_CERT, EF_USER_AUTH_CERT, EF_USER_AUTH_KEY,
    EF_USER_AUTH_PIN, INS_COMPUTE_SIGNATURE, INS_READ_BINARY, INS_SELECT, INS_VERIFY, JPKI_AID,
    MAX_READ_OFFSET, P2_CURRENT_EF, SELECT_BY_DF_NAME, SELECT_EF_BY_ID, SELECT_NO_RESPONSE,
    SIGNATURE_LEN,
};
use crate::pin::{PIN_LEN, Pin};
use crate::status::StatusWord;
use crate::test_ca::{TestCa, TestCaError, UserCertificateRequest, generate_rsa_key};
use crate::transport::{Transport, TransportError};

/// Tries of the user-authentication PIN on a fresh card.
pub const PIN_TRIES: u8 = 3;
/// Certificate EFs on the card are larger than the certificates and padded with this byte, so
/// a reader must size its reads from the DER header as with the real card.
const FILE_PADDING: u8 = 0xFF;
/// Size of the certificate EFs (bytes), unless the certificate is larger.
const CERT_FILE_SIZE: usize = 0x0800;
/// PKCS#1 v1.5 type-1 padding needs 11 bytes of the modulus.
const PKCS1_OVERHEAD: usize = 11;
/// READ BINARY P1 bit 8: the P1 carries a short EF identifier, which this AP does not offer.
const READ_BINARY_SHORT_EF_BIT: u8 = 0x80;
/// Validity of the demo cards' certificates: 2025-01-01T00:00:00Z ..
pub const DEMO_NOT_BEFORE_UNIX: u64 = 1_735_689_600;
/// .. 2030-01-01T00:00:00Z.
pub const DEMO_NOT_AFTER_UNIX: u64 = 1_893_456_000;

/// What one session has established.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Session {
    ap_selected: bool,
    current_ef: Option<u16>,
    pin_verified: bool,
}

/// A virtual JPKI card. `Clone` gives an identical card (same key, same counter).
#[derive(Clone)]
pub struct VirtualCard {
    key: RsaPrivateKey,
    certificate_der: Vec<u8>,
    cert_file: Vec<u8>,
    ca_cert_file: Vec<u8>,
    pin: Zeroizing<[u8; PIN_LEN]>,
    tries_left: u8,
    session: Session,
}

impl fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualCard")
            .field("tries_left", &self.tries_left)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl VirtualCard {
    /// A card holding `key`, its certificate, the issuing CA's certificate and `pin`.
    pub fn new(
        key: RsaPrivateKey,
        certificate_der: Vec<u8>,
        ca_certificate_der: &[u8],
        pin: &Pin,
    ) -> Self {
        Self {
            key,
            cert_file: padded_file(&certificate_der),
            ca_cert_file: padded_file(ca_certificate_der),
            certificate_der,
            pin: Zeroizing::new(*pin.ascii()),
            tries_left: PIN_TRIES,
            session: Session::default(),
        }
    }

    /// A reproducible card: key from `seed`, certificate serial `seed` issued by `ca` with CN
    /// `UKETSUKE TEST CARD <seed>` and the demo validity.
    pub fn from_seed(seed: u64, ca: &TestCa, pin: &Pin) -> Result<Self, TestCaError> {
        let key = generate_rsa_key(seed)?;
        let request = UserCertificateRequest {
            serial: seed.max(1),
            subject_common_name: format!("UKETSUKE TEST CARD {seed}"),
            not_before_unix: DEMO_NOT_BEFORE_UNIX,
            not_after_unix: DEMO_NOT_AFTER_UNIX,
        };
        let cert = ca.issue_user_certificate(&request, &key.to_public_key())?;
        Ok(Self::new(key, cert, ca.certificate_der(), pin))
    }

    /// The user-authentication certificate (DER, unpadded).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The card's public key.
    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    /// PIN tries left (0 = blocked).
    pub fn tries_left(&self) -> u8 {
        self.tries_left
    }

    /// Power cycle: ends the session; the retry counter stays.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Processes one command APDU and returns the response APDU bytes.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = match Command::parse(apdu) {
            Ok(command) => self.dispatch(&command),
            Err(_) => Response::status(StatusWord::WrongLength),
        };
        response.encode()
    }

    fn dispatch(&mut self, cmd: &Command) -> Response {
        let expected_cla = match cmd.ins {
            INS_SELECT | INS_READ_BINARY | INS_VERIFY => CLA_ISO,
            INS_COMPUTE_SIGNATURE => CLA_PROPRIETARY,
            _ if cmd.cla == CLA_ISO || cmd.cla == CLA_PROPRIETARY => {
                return Response::status(StatusWord::InsNotSupported);
            }
            _ => return Response::status(StatusWord::ClaNotSupported),
        };
        if cmd.cla != expected_cla {
            return Response::status(StatusWord::ClaNotSupported);
        }
        match cmd.ins {
            INS_SELECT => Response::status(self.select(cmd)),
            INS_READ_BINARY => self.read_binary(cmd),
            INS_VERIFY => Response::status(self.verify(cmd)),
            _ => self.sign(cmd),
        }
    }

    fn select(&mut self, cmd: &Command) -> StatusWord {
        match (cmd.p1, cmd.p2) {
            (SELECT_BY_DF_NAME, SELECT_NO_RESPONSE) => {
                if cmd.data.is_empty() {
                    return StatusWord::WrongLength;
                }
                if cmd.data != JPKI_AID {
                    return StatusWord::FileNotFound;
                }
                // Selecting the AP starts a new session: security status is reset.
                self.session = Session {
                    ap_selected: true,
                    ..Session::default()
                };
                StatusWord::Success
            }
            (SELECT_EF_BY_ID, SELECT_NO_RESPONSE) => {
                let Ok(id) = <[u8; 2]>::try_from(cmd.data.as_slice()) else {
                    return StatusWord::WrongLength;
                };
                let id = u16::from_be_bytes(id);
                let known = [
                    EF_USER_AUTH_CERT,
                    EF_USER_AUTH_CA_CERT,
                    EF_USER_AUTH_KEY,
                    EF_USER_AUTH_PIN,
                ];
                if !self.session.ap_selected || !known.contains(&id) {
                    return StatusWord::FileNotFound;
                }
                self.session.current_ef = Some(id);
                StatusWord::Success
            }
            _ => StatusWord::IncorrectP1P2,
        }
    }

    fn read_binary(&mut self, cmd: &Command) -> Response {
        if cmd.p1 & READ_BINARY_SHORT_EF_BIT != 0 {
            return Response::status(StatusWord::IncorrectP1P2);
        }
        let (Some(le), true) = (cmd.le, cmd.data.is_empty()) else {
            return Response::status(StatusWord::WrongLength);
        };
        let file = match self.session.current_ef {
            None => return Response::status(StatusWord::NoCurrentEf),
            Some(EF_USER_AUTH_CERT) => &self.cert_file,
            Some(EF_USER_AUTH_CA_CERT) => &self.ca_cert_file,
            Some(_) => return Response::status(StatusWord::IncompatibleFileStructure),
        };
        let offset = usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]));
        let Some(available) = file
            .get(offset..)
            .filter(|rest| offset <= MAX_READ_OFFSET && !rest.is_empty())
        else {
            return Response::status(StatusWord::WrongP1P2);
        };
        if available.len() < le {
            Response::new(available, StatusWord::EndOfFileReached)
        } else {
            Response::new(
                available.get(..le).unwrap_or(available),
                StatusWord::Success,
            )
        }
    }

    fn verify(&mut self, cmd: &Command) -> StatusWord {
        if (cmd.p1, cmd.p2) != (0x00, P2_CURRENT_EF) {
            return StatusWord::IncorrectP1P2;
        }
        if self.session.current_ef != Some(EF_USER_AUTH_PIN) {
            return StatusWord::NoCurrentEf;
        }
        if cmd.data.is_empty() {
            // The counter query: answers without spending a try.
            return if self.session.pin_verified {
                StatusWord::Success
            } else {
                StatusWord::TriesLeft(self.tries_left)
            };
        }
        if self.tries_left == 0 {
            return StatusWord::ReferenceDataNotUsable;
        }
        if cmd.data.len() != PIN_LEN {
            return StatusWord::WrongLength;
        }
        let diff = self
            .pin
            .iter()
            .zip(&cmd.data)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            self.tries_left = PIN_TRIES;
            self.session.pin_verified = true;
            StatusWord::Success
        } else {
            self.tries_left = self.tries_left.saturating_sub(1);
            self.session.pin_verified = false;
            StatusWord::TriesLeft(self.tries_left)
        }
    }

    fn sign(&mut self, cmd: &Command) -> Response {
        if (cmd.p1, cmd.p2) != (0x00, P2_CURRENT_EF) {
            return Response::status(StatusWord::IncorrectP1P2);
        }
        if self.session.current_ef != Some(EF_USER_AUTH_KEY) {
            return Response::status(StatusWord::NoCurrentEf);
        }
        if self.tries_left == 0 || !self.session.pin_verified {
            return Response::status(StatusWord::SecurityStatusNotSatisfied);
        }
        if cmd.data.is_empty() || cmd.data.len() > SIGNATURE_LEN - PKCS1_OVERHEAD {
            return Response::status(StatusWord::WrongLength);
        }
        if cmd.le.is_some_and(|le| le < SIGNATURE_LEN) {
            // `6C 00`: "ask again with Le = 256".
            return Response::status(StatusWord::WrongLe(0));
        }
        match self.key.sign(Pkcs1v15Sign::new_unprefixed(), &cmd.data) {
            Ok(signature) => Response::new(signature, StatusWord::Success),
            Err(_) => Response::status(StatusWord::NoPreciseDiagnosis),
        }
    }
}

impl Transport for VirtualCard {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.process(apdu))
    }
}

fn padded_file(content: &[u8]) -> Vec<u8> {
    let mut file = content.to_vec();
    file.resize(content.len().max(CERT_FILE_SIZE), FILE_PADDING);
    file
}
