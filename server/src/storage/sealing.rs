//! Institutions' request-signing keys sealed under a key-encryption key (KEK) that is not in the
//! database: config `key_encryption_key_file`, 32 random bytes, used with AES-256-GCM. A copy of
//! the database (a backup, a stolen disk image of the database volume) then holds no key that
//! can sign for an institution.
//!
//! Why one KEK from the configuration rather than a key file per institution: the sealed keys
//! travel with the database, so a backup restores every institution's key as long as the one KEK
//! file is kept (beside `audit_key_file`); several server instances on one PostgreSQL database
//! need one file each, not one per institution; and `admin create`, run on any of them, makes a
//! key every instance can use at once.
//!
//! Sealed form (TEXT, one line): `v1.<KEK fingerprint>.<nonce>.<ciphertext and tag>`, the last
//! two in base64url without padding; the nonce is 96 random bits, fresh for every sealing; the
//! associated data is a label, the institution's 医療機関等コード and the key id, so a sealed key
//! moved to another institution's row, or given another key id, does not open.
//!
//! Like the audit key, the database names the KEK it is used with (table `key_encryption`, the
//! fingerprint only), and the keys this process has loaded are kept in a registry by
//! fingerprint: a process may serve several databases (the tests do).

use std::{
    collections::HashMap,
    path::Path,
    sync::{LazyLock, RwLock},
};

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Payload},
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uketsuke_backend::contract::{b64_decode, b64_encode};

/// The key-encryption key: exactly 32 secret bytes.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    bytes: [u8; 32],
    id: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyEncryptionKey({})", self.id)
    }
}

/// How to make a key file, for error messages.
const MAKE_ONE: &str = "make one with `head -c 32 /dev/urandom > key-encryption.key; chmod 600 \
                        key-encryption.key`";

/// Prefix of the sealed form's version.
const VERSION: &str = "v1";
/// Associated-data label: what the ciphertext is.
const AAD_LABEL: &[u8] = b"uketsuke-institution-signing-key-v1";

/// Why a sealed key does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed key is not in the form v1.<fingerprint>.<nonce>.<ciphertext>")]
    Malformed,
    #[error(
        "the key was sealed with the key-encryption key {0}, which is not loaded \
         (key_encryption_key_file)"
    )]
    KeyNotLoaded(String),
    #[error("the sealed key does not open (altered, or moved to another institution or key id)")]
    Altered,
}

impl KeyEncryptionKey {
    /// The key from the file's bytes: 32 bytes, or 64 hexadecimal digits (as `openssl rand -hex
    /// 32` writes them) with an optional line end.
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyEncryptionKey, String> {
        let key: [u8; 32] = if bytes.len() == 32 {
            let mut key = [0u8; 32];
            key.copy_from_slice(bytes);
            key
        } else {
            let text = std::str::from_utf8(bytes)
                .ok()
                .map(str::trim_end)
                .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    format!(
                        "the key-encryption key must be 32 bytes (or 64 hex digits); it has {} \
                         bytes; {MAKE_ONE}",
                        bytes.len()
                    )
                })?;
            let mut key = [0u8; 32];
            for (i, slot) in key.iter_mut().enumerate() {
                *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .map_err(|_| "the key-encryption key is not hexadecimal".to_owned())?;
            }
            key
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|_| "the key-encryption key cannot be used".to_owned())?;
        mac.update(b"uketsuke-key-encryption-key-id");
        let id = mac.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(KeyEncryptionKey { bytes: key, id })
    }

    /// Reads the key file at `path`. With `create` (demo mode only), a missing file is made with
    /// 32 random bytes, mode 0600.
    pub fn load(path: &Path, create: bool) -> Result<KeyEncryptionKey, String> {
        let bytes =
            crate::console::audit::read_secret_file(path, create, "the key-encryption key file")?;
        KeyEncryptionKey::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The key's fingerprint (16 hex digits): names it in the database and in sealed keys
    /// without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.bytes.into())
    }

    /// Seals `secret` (an institution's private scalar) for the institution `code` and `key_id`.
    pub fn seal(&self, code: &str, key_id: &str, secret: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(code, key_id);
        // AES-GCM encryption fails only for inputs far beyond a key's size (2^36 bytes).
        let sealed = self
            .cipher()
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        format!(
            "{VERSION}.{}.{}.{}",
            self.id,
            b64_encode(&nonce),
            b64_encode(&sealed)
        )
    }

    /// Opens what [`seal`](Self::seal) made for the same `code` and `key_id`.
    pub fn open(&self, code: &str, key_id: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let parts = Parts::parse(sealed)?;
        if parts.kek_id != self.id {
            return Err(SealError::KeyNotLoaded(parts.kek_id.to_owned()));
        }
        let aad = associated_data(code, key_id);
        self.cipher()
            .decrypt(
                &parts.nonce.into(),
                Payload {
                    msg: &parts.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Altered)
    }
}

fn associated_data(code: &str, key_id: &str) -> Vec<u8> {
    let mut aad = AAD_LABEL.to_vec();
    for part in [code, key_id] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

struct Parts<'a> {
    kek_id: &'a str,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl<'a> Parts<'a> {
    fn parse(sealed: &'a str) -> Result<Parts<'a>, SealError> {
        let mut fields = sealed.split('.');
        let (Some(VERSION), Some(kek_id), Some(nonce), Some(ciphertext), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(SealError::Malformed);
        };
        let nonce: [u8; 12] = b64_decode(nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or(SealError::Malformed)?;
        let ciphertext = b64_decode(ciphertext).ok_or(SealError::Malformed)?;
        Ok(Parts {
            kek_id,
            nonce,
            ciphertext,
        })
    }
}

/// The fingerprint of the KEK a sealed key names, if it is well formed.
pub fn sealed_with(sealed: &str) -> Result<&str, SealError> {
    Parts::parse(sealed).map(|p| p.kek_id)
}

static KEYS: LazyLock<RwLock<HashMap<String, KeyEncryptionKey>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// Makes `key` available to [`registered`] in this process.
pub fn register(key: &KeyEncryptionKey) {
    if let Ok(mut keys) = KEYS.write() {
        keys.insert(key.id.clone(), key.clone());
    }
}

/// The loaded key with fingerprint `id`.
pub fn registered(id: &str) -> Option<KeyEncryptionKey> {
    KEYS.read().ok().and_then(|keys| keys.get(id).cloned())
}

/// Opens `sealed` with whichever loaded key it names.
pub fn open_sealed(code: &str, key_id: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
    let kek_id = sealed_with(sealed)?;
    let key = registered(kek_id).ok_or_else(|| SealError::KeyNotLoaded(kek_id.to_owned()))?;
    key.open(code, key_id, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes(&[byte; 32]).expect("key")
    }

    #[test]
    fn sealed_keys_open_only_for_their_institution_and_key_id() {
        let kek = key(7);
        let sealed = kek.seal("1312345678", "uk-1", b"secret scalar");
        assert!(!sealed.contains("secret"));
        assert_eq!(
            kek.open("1312345678", "uk-1", &sealed).expect("opens"),
            b"secret scalar"
        );
        assert_eq!(
            kek.open("1312345679", "uk-1", &sealed),
            Err(SealError::Altered)
        );
        assert_eq!(
            kek.open("1312345678", "uk-2", &sealed),
            Err(SealError::Altered)
        );
        // Another KEK, and a flipped ciphertext byte.
        assert!(matches!(
            key(8).open("1312345678", "uk-1", &sealed),
            Err(SealError::KeyNotLoaded(_))
        ));
        let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        let mut bytes = b64_decode(&parts[3]).expect("b64");
        bytes[0] ^= 1;
        parts[3] = b64_encode(&bytes);
        assert_eq!(
            kek.open("1312345678", "uk-1", &parts.join(".")),
            Err(SealError::Altered)
        );
        assert_eq!(
            kek.open("1312345678", "uk-1", "v1.x.y"),
            Err(SealError::Malformed)
        );
        // Fresh nonce each time.
        assert_ne!(sealed, kek.seal("1312345678", "uk-1", b"secret scalar"));
    }

    #[test]
    fn key_files_are_32_bytes_or_64_hex_digits() {
        let raw = KeyEncryptionKey::from_bytes(&[0xab; 32]).expect("raw");
        let hex =
            KeyEncryptionKey::from_bytes(format!("{}\n", "ab".repeat(32)).as_bytes()).expect("hex");
        assert_eq!(raw.id(), hex.id());
        assert!(KeyEncryptionKey::from_bytes(&[1; 31]).is_err());
        assert!(KeyEncryptionKey::from_bytes(&[1; 33]).is_err());
        assert!(KeyEncryptionKey::from_bytes("zz".repeat(32).as_bytes()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn demo_creates_the_key_file_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub/key-encryption.key");
        assert!(KeyEncryptionKey::load(&path, false).is_err());
        let made = KeyEncryptionKey::load(&path, true).expect("made");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            KeyEncryptionKey::load(&path, false).expect("read").id(),
            made.id()
        );
    }
}
