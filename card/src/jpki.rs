//! Client for the JPKI application (公的個人認証 AP) of the My Number card: select the AP, read
//! the user-authentication certificate, query and verify the PIN, and sign a SHA-256 digest.
//! Runs over any [`Transport`]; knows nothing about readers.

use sha2::{Digest, Sha256};

use crate::apdu::{ApduError, Command, Response, SHORT_MAX_DATA};
use crate::der_len::{self, DerLenError};
use crate::pin::Pin;
use crate::status::StatusWord;
use crate::transport::{RfFault, Transport, TransportError};

/// AID of the JPKI application.
pub const JPKI_AID: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// EF of the user-authentication certificate (利用者証明用電子証明書), readable without PIN.
pub const EF_USER_AUTH_CERT: u16 = 0x000A;
/// EF of the CA certificate that issued the user-authentication certificate.
pub const EF_USER_AUTH_CA_CERT: u16 = 0x000B;
/// EF of the user-authentication private key.
pub const EF_USER_AUTH_KEY: u16 = 0x0017;
/// EF of the user-authentication PIN.
pub const EF_USER_AUTH_PIN: u16 = 0x0018;

/// Inter-industry class byte.
pub const CLA_ISO: u8 = 0x00;
/// Proprietary class byte used by COMPUTE DIGITAL SIGNATURE on the JPKI AP.
pub const CLA_PROPRIETARY: u8 = 0x80;
pub const INS_SELECT: u8 = 0xA4;
pub const INS_READ_BINARY: u8 = 0xB0;
pub const INS_VERIFY: u8 = 0x20;
pub const INS_COMPUTE_SIGNATURE: u8 = 0x2A;
pub const INS_GET_RESPONSE: u8 = 0xC0;
/// SELECT P1: by DF name (AID).
pub const SELECT_BY_DF_NAME: u8 = 0x04;
/// SELECT P1: EF under the current DF, by file identifier.
pub const SELECT_EF_BY_ID: u8 = 0x02;
/// SELECT P2: first occurrence, no response data (no FCI).
pub const SELECT_NO_RESPONSE: u8 = 0x0C;
/// VERIFY / COMPUTE SIGNATURE P2: the reference data is the currently selected EF.
pub const P2_CURRENT_EF: u8 = 0x80;
/// Length of an RSA-2048 signature.
pub const SIGNATURE_LEN: usize = 256;
/// READ BINARY offsets live in 15 bits (P1 bit 8 selects a short EF id instead).
pub const MAX_READ_OFFSET: usize = 0x7FFF;

/// DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2), followed by the 32-byte hash.
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// Bounds GET RESPONSE / Le-retry loops so a misbehaving card cannot keep us forever.
const MAX_RESPONSE_ROUNDS: usize = 64;
/// Extra attempts of a READ BINARY that failed transiently (`6B 00`, `69 86`, or `90 00`
/// without data), at the same offset, before the read fails.
pub const READ_BINARY_RETRIES: usize = 2;

/// Errors of the JPKI flow, in the terms the UI needs to tell the user what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JpkiError {
    #[error("wrong PIN; {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    #[error("the PIN is blocked; it must be reset at the municipal office")]
    PinBlocked,
    #[error("the card did not accept the operation without a verified PIN")]
    NotAuthorized,
    #[error("this card has no JPKI application (not a My Number card)")]
    NotMyNumberCard,
    #[error("the card was removed")]
    CardRemoved,
    #[error("no card on the reader")]
    NoCard,
    #[error("RF error {fault:?} (status {status:08X})")]
    Rf { fault: RfFault, status: u32 },
    #[error("the reader refused the request: {0}")]
    ReaderRefused(String),
    /// A file read kept failing part-way (transient READ BINARY failures beyond the retries):
    /// nothing partial is ever returned.
    #[error("reading the card stopped at byte {offset} of {total}")]
    IncompleteRead { offset: usize, total: usize },
    #[error("the reader did not answer in time")]
    Timeout,
    #[error("the card answered {0}")]
    UnexpectedResponse(StatusWord),
    #[error("malformed card data: {0}")]
    Malformed(&'static str),
    #[error("reader or USB failure: {0}")]
    Io(String),
}

impl From<TransportError> for JpkiError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::CardRemoved => Self::CardRemoved,
            TransportError::NoCard => Self::NoCard,
            TransportError::Rf { fault, status } => Self::Rf { fault, status },
            TransportError::ReaderRefused(m) => Self::ReaderRefused(m),
            TransportError::Timeout => Self::Timeout,
            TransportError::Protocol(m) | TransportError::Io(m) => Self::Io(m),
        }
    }
}

impl From<ApduError> for JpkiError {
    fn from(_: ApduError) -> Self {
        Self::Malformed("APDU length")
    }
}

impl From<DerLenError> for JpkiError {
    fn from(_: DerLenError) -> Self {
        Self::Malformed("certificate DER header")
    }
}

/// What an empty VERIFY says about the PIN, without spending a try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinStatus {
    /// Already verified in this session.
    Verified,
    /// Not verified; this many tries remain.
    TriesLeft(u8),
    /// No tries remain.
    Blocked,
}

/// Result of [`authenticate`]: what the server needs to verify the card holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    /// The user-authentication certificate (DER).
    pub certificate_der: Vec<u8>,
    /// RSA PKCS#1 v1.5 signature over SHA-256 of the challenge bytes.
    pub signature: Vec<u8>,
}

/// How to read files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest READ BINARY chunk. Up to 256 uses short APDUs; more needs a reader and card
    /// that accept extended-length APDUs.
    pub max_chunk: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_chunk: SHORT_MAX_DATA,
        }
    }
}

/// The JPKI application reached through a transport.
pub struct JpkiAp<T: Transport> {
    transport: T,
    options: ReadOptions,
}

impl<T: Transport> JpkiAp<T> {
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            options: ReadOptions::default(),
        }
    }

    pub fn with_options(transport: T, options: ReadOptions) -> Self {
        Self { transport, options }
    }

    /// Gives the transport back (e.g. to read emulator state in tests).
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// Sends a command; follows `61 xx` with GET RESPONSE and `6C xx` with a corrected Le.
    pub async fn exchange(&mut self, command: &Command) -> Result<Response, JpkiError> {
        let mut command = command.clone();
        let mut collected = Vec::new();
        for _ in 0..MAX_RESPONSE_ROUNDS {
            let raw = self.transport.transmit(&command.encode()?).await?;
            let response =
                Response::parse(&raw).map_err(|_| JpkiError::Malformed("response APDU"))?;
            match response.status {
                StatusWord::BytesRemaining(n) => {
                    collected.extend_from_slice(&response.data);
                    command = Command::new(CLA_ISO, INS_GET_RESPONSE, 0, 0).with_le(short_len(n));
                }
                StatusWord::WrongLe(n) => {
                    command = command.with_le(short_len(n));
                }
                status => {
                    collected.extend_from_slice(&response.data);
                    return Ok(Response::new(collected, status));
                }
            }
        }
        Err(JpkiError::Malformed("endless response chaining"))
    }

    /// Selects the JPKI AP. This starts a new session: the card forgets any verified PIN.
    pub async fn select_ap(&mut self) -> Result<(), JpkiError> {
        let cmd = Command::new(CLA_ISO, INS_SELECT, SELECT_BY_DF_NAME, SELECT_NO_RESPONSE)
            .with_data(JPKI_AID);
        match self.exchange(&cmd).await?.status {
            StatusWord::Success => Ok(()),
            StatusWord::FileNotFound
            | StatusWord::IncorrectP1P2
            | StatusWord::InsNotSupported
            | StatusWord::ClaNotSupported
            | StatusWord::WrongLength
            | StatusWord::IncorrectData => Err(JpkiError::NotMyNumberCard),
            other => Err(JpkiError::UnexpectedResponse(other)),
        }
    }

    /// Selects an EF of the JPKI AP by its identifier.
    pub async fn select_ef(&mut self, file_id: u16) -> Result<(), JpkiError> {
        let cmd = Command::new(CLA_ISO, INS_SELECT, SELECT_EF_BY_ID, SELECT_NO_RESPONSE)
            .with_data(file_id.to_be_bytes());
        expect_success(self.exchange(&cmd).await?.status)
    }

    /// Reads the selected EF as one DER object: reads the header first, then exactly the
    /// length it announces (the files are larger than their content and padded). Each chunk
    /// that fails transiently is read again at the same offset ([`READ_BINARY_RETRIES`] times
    /// at most); the result is the whole object or an error, never a truncated one.
    pub async fn read_der_file(&mut self) -> Result<Vec<u8>, JpkiError> {
        let mut content = self
            .read_binary_retrying(0, der_len::MAX_HEADER_LEN, der_len::MAX_HEADER_LEN)
            .await?;
        let header = der_len::parse_header(&content)?;
        let total = header
            .total_len()
            .ok_or(JpkiError::Malformed("certificate length"))?;
        if total > MAX_READ_OFFSET {
            return Err(JpkiError::Malformed(
                "certificate longer than the file can be",
            ));
        }
        content.truncate(total);
        while content.len() < total {
            let wanted = (total - content.len()).min(self.options.max_chunk.max(1));
            let chunk = self
                .read_binary_retrying(content.len(), wanted, total)
                .await?;
            content.extend_from_slice(&chunk);
        }
        if content.len() != total {
            return Err(JpkiError::IncompleteRead {
                offset: content.len(),
                total,
            });
        }
        Ok(content)
    }

    /// [`Self::read_binary`], read again at the same offset after a transient failure;
    /// `total` is the expected file content length, for the error only.
    async fn read_binary_retrying(
        &mut self,
        offset: usize,
        len: usize,
        total: usize,
    ) -> Result<Vec<u8>, JpkiError> {
        for _ in 0..READ_BINARY_RETRIES {
            match self.read_binary(offset, len).await {
                Err(e) if is_transient_read_failure(&e) => {}
                other => return other,
            }
        }
        match self.read_binary(offset, len).await {
            Err(e) if is_transient_read_failure(&e) => {
                Err(JpkiError::IncompleteRead { offset, total })
            }
            other => other,
        }
    }

    /// One READ BINARY at `offset`. A short answer is fine (`62 82` or fewer bytes); an empty or
    /// oversized one is not, so the caller's loop always advances.
    async fn read_binary(&mut self, offset: usize, len: usize) -> Result<Vec<u8>, JpkiError> {
        let offset16 = u16::try_from(offset)
            .ok()
            .filter(|&o| usize::from(o) <= MAX_READ_OFFSET)
            .ok_or(JpkiError::Malformed("read offset"))?;
        let [p1, p2] = offset16.to_be_bytes();
        let cmd = Command::new(CLA_ISO, INS_READ_BINARY, p1, p2).with_le(len);
        let response = self.exchange(&cmd).await?;
        match response.status {
            StatusWord::Success | StatusWord::EndOfFileReached => {}
            other => return Err(status_error(other)),
        }
        if response.data.is_empty() {
            return Err(JpkiError::Malformed(EMPTY_READ));
        }
        if response.data.len() > len {
            return Err(JpkiError::Malformed("READ BINARY length"));
        }
        Ok(response.data)
    }

    /// Selects and reads an EF holding a certificate.
    pub async fn read_certificate(&mut self, file_id: u16) -> Result<Vec<u8>, JpkiError> {
        self.select_ef(file_id).await?;
        self.read_der_file().await
    }

    /// Asks how many PIN tries are left without spending one (VERIFY with no data).
    pub async fn pin_status(&mut self) -> Result<PinStatus, JpkiError> {
        self.select_ef(EF_USER_AUTH_PIN).await?;
        let cmd = Command::new(CLA_ISO, INS_VERIFY, 0x00, P2_CURRENT_EF);
        match self.exchange(&cmd).await?.status {
            StatusWord::Success => Ok(PinStatus::Verified),
            StatusWord::TriesLeft(0)
            | StatusWord::ReferenceDataNotUsable
            | StatusWord::AuthenticationBlocked => Ok(PinStatus::Blocked),
            StatusWord::TriesLeft(n) => Ok(PinStatus::TriesLeft(n)),
            other => Err(JpkiError::UnexpectedResponse(other)),
        }
    }

    /// Verifies the user-authentication PIN.
    pub async fn verify_pin(&mut self, pin: &Pin) -> Result<(), JpkiError> {
        self.select_ef(EF_USER_AUTH_PIN).await?;
        let cmd =
            Command::new(CLA_ISO, INS_VERIFY, 0x00, P2_CURRENT_EF).with_data(pin.ascii().to_vec());
        let status = self.exchange(&cmd).await;
        // The command buffer held the PIN; `Command` is dropped here. Its Vec is not zeroised,
        // which is acceptable for the four digits the user typed into the same process anyway.
        expect_success(status?.status)
    }

    /// Signs a DigestInfo with the user-authentication key (PIN must be verified).
    pub async fn sign_digest_info(&mut self, digest_info: &[u8]) -> Result<Vec<u8>, JpkiError> {
        self.select_ef(EF_USER_AUTH_KEY).await?;
        let cmd = Command::new(CLA_PROPRIETARY, INS_COMPUTE_SIGNATURE, 0x00, P2_CURRENT_EF)
            .with_data(digest_info.to_vec())
            .with_le(SIGNATURE_LEN);
        let response = self.exchange(&cmd).await?;
        expect_success(response.status)?;
        if response.data.len() != SIGNATURE_LEN {
            return Err(JpkiError::Malformed("signature length"));
        }
        Ok(response.data)
    }
}

/// The [`JpkiError::Malformed`] detail of a READ BINARY answered `90 00` without data.
const EMPTY_READ: &str = "READ BINARY without data";

/// READ BINARY failures a card recovers from when asked again at the same offset: `6B 00`,
/// `69 86`, and `90 00` without data.
fn is_transient_read_failure(e: &JpkiError) -> bool {
    matches!(
        e,
        JpkiError::UnexpectedResponse(StatusWord::WrongP1P2 | StatusWord::NoCurrentEf)
    ) || *e == JpkiError::Malformed(EMPTY_READ)
}

fn short_len(n: u8) -> usize {
    if n == 0 { 256 } else { usize::from(n) }
}

fn expect_success(status: StatusWord) -> Result<(), JpkiError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(status_error(status))
    }
}

/// The meaning of a failing status word anywhere in the JPKI AP.
fn status_error(status: StatusWord) -> JpkiError {
    match status {
        StatusWord::TriesLeft(0)
        | StatusWord::ReferenceDataNotUsable
        | StatusWord::AuthenticationBlocked => JpkiError::PinBlocked,
        StatusWord::TriesLeft(tries_left) => JpkiError::WrongPin { tries_left },
        StatusWord::SecurityStatusNotSatisfied => JpkiError::NotAuthorized,
        other => JpkiError::UnexpectedResponse(other),
    }
}

/// DER DigestInfo for SHA-256 of `message`, as COMPUTE DIGITAL SIGNATURE expects.
pub fn sha256_digest_info(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SHA256_DIGEST_INFO_PREFIX.len() + 32);
    out.extend_from_slice(&SHA256_DIGEST_INFO_PREFIX);
    out.extend_from_slice(&Sha256::digest(message));
    out
}

/// The whole card part of a login: select, read the certificate, verify the PIN, and sign
/// SHA-256(`challenge`) as a PKCS#1 v1.5 DigestInfo.
pub async fn authenticate(
    transport: impl Transport,
    pin: &Pin,
    challenge: &[u8],
) -> Result<Authentication, JpkiError> {
    let mut ap = JpkiAp::new(transport);
    ap.select_ap().await?;
    let certificate_der = ap.read_certificate(EF_USER_AUTH_CERT).await?;
    ap.verify_pin(pin).await?;
    let signature = ap.sign_digest_info(&sha256_digest_info(challenge)).await?;
    Ok(Authentication {
        certificate_der,
        signature,
    })
}

/// The visual-check flow (目視確認): reads the user-authentication certificate without a PIN.
pub async fn read_certificate_without_pin(transport: impl Transport) -> Result<Vec<u8>, JpkiError> {
    let mut ap = JpkiAp::new(transport);
    ap.select_ap().await?;
    ap.read_certificate(EF_USER_AUTH_CERT).await
}

/// Tries left on the user-authentication PIN, without spending one.
pub async fn pin_status(transport: impl Transport) -> Result<PinStatus, JpkiError> {
    let mut ap = JpkiAp::new(transport);
    ap.select_ap().await?;
    ap.pin_status().await
}
