//! Reception sessions and their one-time challenges. The challenge is what makes a card
//! signature fresh: it is issued for one session, for the exact binding shown on the review
//! screen, and it can be consumed once, within five minutes. Consumption is one conditional
//! UPDATE, so two concurrent submissions of the same signature (two tabs, two server instances)
//! cannot both succeed.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{
    Db, StorageError,
    ids::{looks_like_id, new_id},
};

/// How long a challenge may be answered (SPEC §5: short-lived).
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// How long a reception session lives without finishing.
pub const SESSION_TTL_MS: i64 = 30 * 60 * 1000;
/// Challenge entropy: 256 bits.
const CHALLENGE_BYTES: usize = 32;

/// A session just started: the value for the patient's cookie, and the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedSession {
    /// 128 random bits (see [`new_id`]): goes into the cookie and nowhere else.
    pub token: String,
    /// [`session_key`] of the token: the row's id, by which challenges and receptions name it.
    pub id: String,
}

/// The key a session is stored under: the SHA-256 (lower-case hex) of the cookie's value, so
/// that a copy of the database holds no cookie that would open a session. `None` for a value
/// that is not a well-formed id (junk never reaches SQL).
pub fn session_key(token: &str) -> Option<String> {
    looks_like_id(token).then(|| sha256_hex(token.as_bytes()))
}

/// Starts a reception session for a link.
pub async fn start_session(
    db: &Db,
    link_id: &str,
    now_ms: i64,
) -> Result<StartedSession, StorageError> {
    let token = new_id();
    let id = sha256_hex(token.as_bytes());
    let _turn = super::write_turn(db).await;
    sqlx::query(
        "INSERT INTO reception_sessions (id, link_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(link_id)
    .bind(now_ms)
    .bind(now_ms + SESSION_TTL_MS)
    .execute(db)
    .await?;
    Ok(StartedSession { token, id })
}

/// What a challenge is for. A challenge verifies only a text of its own purpose: a challenge of
/// the reception or of 同意照会 never verifies a 健康保険証利用登録 text, and the other way round
/// (the binding's hash tells the texts apart too; the purpose says so before the hash is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The consent binding of a registration.
    Reception,
    /// 同意照会: the management binding.
    Manage,
    /// 健康保険証利用登録: the insurance-use binding.
    InsuranceUse,
}

impl Purpose {
    pub const fn code(self) -> &'static str {
        match self {
            Purpose::Reception => "reception",
            Purpose::Manage => "manage",
            Purpose::InsuranceUse => "insurance_use",
        }
    }
}

/// A challenge handed to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// base64url text, as it goes into the binding and back in the registration.
    pub value: String,
    pub expires_at: i64,
}

/// Why a presented challenge is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued, or issued to another session (told apart only in logs).
    Unknown,
    /// Already consumed: a replay.
    AlreadyUsed,
    Expired,
    /// The session it belongs to has ended.
    SessionExpired,
    /// The signed binding is not the one the challenge was issued for (other choices, other
    /// origin, other institution…). The challenge is spent all the same.
    BindingMismatch,
    /// Issued for another purpose (see [`Purpose`]). It is not spent.
    OtherPurpose,
}

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("challenge refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for ChallengeError {
    fn from(e: sqlx::Error) -> Self {
        ChallengeError::Storage(StorageError::Query(e))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Issues a challenge for `session_id`. `binding` builds the exact message the card will sign
/// from the challenge text (the backend contract's `ChallengeBinding::message`).
pub async fn issue(
    db: &Db,
    session_id: &str,
    purpose: Purpose,
    binding: impl FnOnce(&str) -> Vec<u8>,
    now_ms: i64,
) -> Result<Issued, ChallengeError> {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // Issued only to a live session, and never outliving it: the check and the insert are one
    // statement.
    let turn = super::write_turn(db).await;
    let issued = sqlx::query(
        "INSERT INTO challenges \
            (value, session_id, binding_sha256, issued_at, expires_at, purpose) \
         SELECT $1, id, $3, $4, CASE WHEN expires_at < $5 THEN expires_at ELSE $5 END, $6 \
         FROM reception_sessions WHERE id = $2 AND expires_at > $4 \
         RETURNING expires_at",
    )
    .bind(&value)
    .bind(session_id)
    .bind(sha256_hex(&binding(&value)))
    .bind(now_ms)
    .bind(now_ms + CHALLENGE_TTL_MS)
    .bind(purpose.code())
    .fetch_optional(db)
    .await?;
    drop(turn);
    let Some(issued) = issued else {
        let known = sqlx::query("SELECT expires_at FROM reception_sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(db)
            .await?;
        return Err(ChallengeError::Refused(if known.is_some() {
            Refusal::SessionExpired
        } else {
            Refusal::Unknown
        }));
    };
    let expires_at: i64 = issued.try_get("expires_at")?;
    Ok(Issued { value, expires_at })
}

/// Spends the challenge `value` of `session_id` if it is live and unused, then checks that
/// `signed_binding` is the message it was issued for. Exactly one caller can ever succeed. A
/// challenge of another `purpose` is refused and left as it was.
pub async fn consume(
    db: &Db,
    session_id: &str,
    purpose: Purpose,
    value: &str,
    signed_binding: &[u8],
    now_ms: i64,
) -> Result<(), ChallengeError> {
    let turn = super::write_turn(db).await;
    let spent = sqlx::query(
        "UPDATE challenges SET used_at = $1 \
         WHERE value = $2 AND session_id = $3 AND used_at IS NULL AND expires_at > $1 \
           AND purpose = $4 \
         RETURNING binding_sha256",
    )
    .bind(now_ms)
    .bind(value)
    .bind(session_id)
    .bind(purpose.code())
    .fetch_optional(db)
    .await?;
    drop(turn);
    let Some(row) = spent else {
        return Err(ChallengeError::Refused(
            refusal_reason(db, session_id, purpose, value, now_ms).await?,
        ));
    };
    let expected: String = row.try_get("binding_sha256")?;
    if expected != sha256_hex(signed_binding) {
        return Err(ChallengeError::Refused(Refusal::BindingMismatch));
    }
    Ok(())
}

async fn refusal_reason(
    db: &Db,
    session_id: &str,
    purpose: Purpose,
    value: &str,
    now_ms: i64,
) -> Result<Refusal, ChallengeError> {
    let row = sqlx::query(
        "SELECT session_id, used_at, expires_at, purpose FROM challenges WHERE value = $1",
    )
    .bind(value)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(Refusal::Unknown);
    };
    let owner: String = row.try_get("session_id")?;
    if owner != session_id {
        tracing::warn!("a challenge was presented by another session");
        return Ok(Refusal::Unknown);
    }
    let issued_for: String = row.try_get("purpose")?;
    if issued_for != purpose.code() {
        return Ok(Refusal::OtherPurpose);
    }
    let used_at: Option<i64> = row.try_get("used_at")?;
    if used_at.is_some() {
        return Ok(Refusal::AlreadyUsed);
    }
    let expires_at: i64 = row.try_get("expires_at")?;
    if expires_at <= now_ms {
        return Ok(Refusal::Expired);
    }
    // Live and unused, yet not spent: only a concurrent consumer can have raced us between the
    // two statements, which means it was used.
    Ok(Refusal::AlreadyUsed)
}

/// Deletes the challenges that expired at or before `now_ms`, used or not: past its expiry a
/// challenge is refused whatever its state, so it holds nothing worth keeping. Returns how many
/// went. (A challenge never outlives its session: it expires at the earlier of the two.)
pub async fn sweep_expired(db: &Db, now_ms: i64) -> Result<u64, StorageError> {
    Ok(sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(db)
        .await?
        .rows_affected())
}
