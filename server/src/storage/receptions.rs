//! Reception sessions and receptions. A session belongs to one patient's visit to a link and
//! carries their choices up to the review screen; submitting it creates the reception and, in
//! the same transaction, the outbox entry that relays it, so a reception is never recorded
//! without its relay or relayed without being recorded.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use sqlx::{Row, any::AnyRow};
use uketsuke_app::api::InvalidLink;
use uketsuke_backend::contract::{ConsentChoices, PrescriptionMethod};
use uketsuke_domain::{ReceptionKind, Window, WindowInput, window};

use super::{
    Db, StorageError,
    ids::looks_like_id,
    ids::new_id,
    institutions::RelayIdentity,
    links::{Found, OpenLink},
};
use crate::clock::from_ms;

/// What the patient chose (visit date, consents, prescription method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choices {
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    pub prescription: Option<PrescriptionMethod>,
}

/// A live session as the patient API sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored key ([`super::challenges::session_key`] of `token`).
    pub id: String,
    /// The cookie's value, as this request presented it; never stored.
    pub token: String,
    pub link_id: String,
    pub expires_at: i64,
    pub choices: Option<Choices>,
    pub reception_id: Option<String>,
    /// The cancel token of the submitted reception, until the done screen has shown it
    /// ([`take_cancel_token`]); opened from its sealed copy with `token`.
    pub cancel_token: Option<String>,
}

/// Label of the pad that seals a session's cancel token (see [`seal_cancel_token`]).
const CANCEL_SEAL_LABEL: &[u8] = b"uketsuke-cancel-token-seal-v1\n";

/// The pad for `session_token`: SHA-256 of a label and the cookie's value, which only the
/// patient's browser holds.
fn cancel_pad(session_token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(CANCEL_SEAL_LABEL);
    hasher.update(session_token.as_bytes());
    hasher.finalize().into()
}

/// Seals a cancel token (26 ASCII characters) for storage in its session row: XOR with the pad
/// of the session's cookie value, as lower-case hex. A reader of the database, who has only the
/// session's hash, cannot open it.
pub fn seal_cancel_token(cancel_token: &str, session_token: &str) -> String {
    let pad = cancel_pad(session_token);
    cancel_token
        .bytes()
        .zip(pad.iter().cycle())
        .map(|(b, p)| format!("{:02x}", b ^ p))
        .collect()
}

/// Opens [`seal_cancel_token`]'s result; `None` when it is not well formed or was sealed for
/// another session.
pub fn open_cancel_token(sealed: &str, session_token: &str) -> Option<String> {
    if !sealed.len().is_multiple_of(2) || !sealed.is_ascii() {
        return None;
    }
    let pad = cancel_pad(session_token);
    let bytes = (0..sealed.len())
        .step_by(2)
        .zip(pad.iter().cycle())
        .map(|(i, p)| {
            u8::from_str_radix(&sealed[i..i + 2], 16)
                .ok()
                .map(|b| b ^ p)
        })
        .collect::<Option<Vec<u8>>>()?;
    let token = String::from_utf8(bytes).ok()?;
    looks_like_id(&token).then_some(token)
}

fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn prescription_from(code: Option<String>) -> Option<PrescriptionMethod> {
    match code.as_deref() {
        Some("electronic") => Some(PrescriptionMethod::Electronic),
        Some("paper") => Some(PrescriptionMethod::Paper),
        _ => None,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The columns [`session_in`] reads, from a query that names the session `s`.
macro_rules! session_columns {
    () => {
        "s.id, s.link_id, s.expires_at AS s_expires_at, s.visit_date AS s_visit_date, \
         s.clinical_medication, s.checkups, s.prescription, s.reception_id, \
         s.cancel_token_sealed"
    };
}

/// The session whose cookie value is `token`, if it exists and has not expired at `now_ms`.
pub async fn session(db: &Db, token: &str, now_ms: i64) -> Result<Option<Session>, StorageError> {
    let Some(key) = super::challenges::session_key(token) else {
        return Ok(None);
    };
    let row = sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM reception_sessions s WHERE s.id = $1 AND s.expires_at > $2"
    ))
    .bind(&key)
    .bind(now_ms)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    session_in(&row, token).map(Some)
}

/// [`session`] and, read in the same statement, the link it was started from as
/// `links::resolve` gives it at `now_ms` (each patient step after the first needs both).
pub async fn session_with_link(
    db: &Db,
    token: &str,
    now_ms: i64,
) -> Result<Option<(Session, Result<OpenLink, InvalidLink>)>, StorageError> {
    let Some(key) = super::challenges::session_key(token) else {
        return Ok(None);
    };
    let row = sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        ", ",
        super::links::link_columns!(),
        " FROM reception_sessions s \
           LEFT JOIN reception_links l ON l.id = s.link_id \
           LEFT JOIN institutions i ON i.id = l.institution_id \
         WHERE s.id = $1 AND s.expires_at > $2"
    ))
    .bind(&key)
    .bind(now_ms)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let session = session_in(&row, token)?;
    let link = if looks_like_id(&session.link_id) {
        super::links::found_in(&row, &session.link_id)?
    } else {
        None
    };
    Ok(Some((session, Found::resolve(link, now_ms))))
}

/// The session `token` opens, from a row of a query that read `session_columns!`.
fn session_in(row: &AnyRow, token: &str) -> Result<Session, StorageError> {
    let visit_date: Option<String> = row.try_get("s_visit_date")?;
    let clinical: Option<i64> = row.try_get("clinical_medication")?;
    let checkups: Option<i64> = row.try_get("checkups")?;
    let choices = match (
        visit_date.as_deref().and_then(parse_date),
        clinical,
        checkups,
    ) {
        (Some(visit_date), Some(clinical), Some(checkups)) => Some(Choices {
            visit_date,
            consent: ConsentChoices {
                clinical_medication: clinical != 0,
                checkups: checkups != 0,
            },
            prescription: prescription_from(row.try_get("prescription")?),
        }),
        _ => None,
    };
    let sealed: Option<String> = row.try_get("cancel_token_sealed")?;
    Ok(Session {
        id: row.try_get("id")?,
        token: token.to_owned(),
        link_id: row.try_get("link_id")?,
        expires_at: row.try_get("s_expires_at")?,
        choices,
        reception_id: row.try_get("reception_id")?,
        cancel_token: sealed.and_then(|s| open_cancel_token(&s, token)),
    })
}

/// Takes the session's cancel token for the one showing of the done screen: clears its sealed
/// copy, and returns true only to the one caller that cleared it (a reload, a second tab, finds
/// it gone).
pub async fn take_cancel_token(db: &Db, session: &Session) -> Result<bool, StorageError> {
    let Some(token) = session.cancel_token.as_deref() else {
        return Ok(false);
    };
    let taken = sqlx::query(
        "UPDATE reception_sessions SET cancel_token_sealed = NULL \
         WHERE id = $1 AND cancel_token_sealed = $2",
    )
    .bind(&session.id)
    .bind(seal_cancel_token(token, &session.token))
    .execute(db)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Ends a session at once (the done screen on an institution device): its row and its
/// challenges go, so its cookie opens nothing any more. The reception it made stays.
pub async fn end_session(db: &Db, session_id: &str) -> Result<(), StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    sqlx::query("DELETE FROM challenges WHERE session_id = $1")
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM reception_sessions WHERE id = $1")
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Records the choices of a session that has not been submitted yet; false otherwise.
pub async fn set_choices(
    db: &Db,
    session_id: &str,
    choices: &Choices,
) -> Result<bool, StorageError> {
    let _turn = super::write_turn(db).await;
    let updated = sqlx::query(
        "UPDATE reception_sessions \
         SET visit_date = $1, clinical_medication = $2, checkups = $3, prescription = $4 \
         WHERE id = $5 AND reception_id IS NULL",
    )
    .bind(date_text(choices.visit_date))
    .bind(i64::from(choices.consent.clinical_medication))
    .bind(i64::from(choices.consent.checkups))
    .bind(choices.prescription.map(PrescriptionMethod::code))
    .bind(session_id)
    .execute(db)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// How the patient was identified, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Card,
    VisualCheck { staff_account: String },
}

/// A reception to record with the relay request that registers it.
#[derive(Debug, Clone)]
pub struct NewReception<'a> {
    pub institution_id: &'a str,
    pub link_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    /// The cookie value of that session: seals the cancel token kept for its done screen.
    pub session_token: Option<&'a str>,
    pub kind: ReceptionKind,
    pub choices: Choices,
    pub identity: Identity,
    /// The card reference of a card-verified reception (see `trust::Trust::verify`).
    pub card_ref: Option<&'a str>,
    /// The outbox id, which is also the request's idempotency key.
    pub outbox_id: &'a str,
    /// The registration request (JSON) the relay will send.
    pub payload: &'a str,
}

/// What the patient gets back on submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub reception_id: String,
    /// Shown once, on the done screen; only its hash is stored.
    pub cancel_token: String,
}

/// Records the reception, its relay request and the link's use, in one transaction. `None`
/// when the session was already submitted (a double click, a second tab, a replay).
pub async fn submit(
    db: &Db,
    new: &NewReception<'_>,
    now_ms: i64,
) -> Result<Option<Submitted>, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    let submitted = submit_in(&mut tx, new, now_ms).await?;
    if submitted.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(submitted)
}

/// [`submit`] inside the caller's transaction (目視確認 adds its audit row to it); the caller
/// commits, or rolls back on `None`.
pub async fn submit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    new: &NewReception<'_>,
    now_ms: i64,
) -> Result<Option<Submitted>, StorageError> {
    let reception_id = new_id();
    // 128 random bits, like every id here.
    let cancel_token = new_id();
    let (method, staff) = match &new.identity {
        Identity::Card => ("card", None),
        Identity::VisualCheck { staff_account } => ("visual_check", Some(staff_account.as_str())),
    };
    if let Some(session_id) = new.session_id {
        let claimed = sqlx::query(
            "UPDATE reception_sessions SET reception_id = $1, cancel_token_sealed = $2 \
             WHERE id = $3 AND reception_id IS NULL",
        )
        .bind(&reception_id)
        .bind(
            new.session_token
                .map(|session_token| seal_cancel_token(&cancel_token, session_token)),
        )
        .bind(session_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            return Ok(None);
        }
    }
    sqlx::query(
        "INSERT INTO receptions \
            (id, institution_id, link_id, session_id, kind, visit_date, clinical_medication, \
             checkups, prescription, identity_method, staff_account, status, submitted_at, \
             cancel_token_sha256, updated_at, card_ref) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $13, $12, $14)",
    )
    .bind(&reception_id)
    .bind(new.institution_id)
    .bind(new.link_id)
    .bind(new.session_id)
    .bind(new.kind.code())
    .bind(date_text(new.choices.visit_date))
    .bind(i64::from(new.choices.consent.clinical_medication))
    .bind(i64::from(new.choices.consent.checkups))
    .bind(new.choices.prescription.map(PrescriptionMethod::code))
    .bind(method)
    .bind(staff)
    .bind(now_ms)
    .bind(sha256_hex(cancel_token.as_bytes()))
    .bind(new.card_ref)
    .execute(&mut **tx)
    .await?;
    super::outbox::enqueue(
        tx,
        new.outbox_id,
        &reception_id,
        super::outbox::Operation::Register,
        new.payload,
        now_ms,
    )
    .await?;
    if let Some(link_id) = new.link_id {
        sqlx::query("UPDATE reception_links SET use_count = use_count + 1 WHERE id = $1")
            .bind(link_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Some(Submitted {
        reception_id,
        cancel_token,
    }))
}

/// Where a reception stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the backend; `attempts` failed sends so far.
    Queued {
        attempts: i64,
    },
    Confirmed,
    Refused {
        code: String,
    },
}

/// A stored reception.
#[derive(Debug, Clone)]
pub struct Reception {
    pub id: String,
    pub institution_id: String,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    pub prescription: Option<PrescriptionMethod>,
    pub status: Status,
    pub submitted_at: i64,
    pub registration_id: Option<String>,
    pub reception_number: Option<String>,
    pub registered_at: Option<i64>,
    pub withdrawn_at: Option<i64>,
    pub home_visits: Vec<NaiveDate>,
}

impl Reception {
    /// The consent window as this server computes it (domain rules, the server's own record of
    /// visits and withdrawal); `None` until the backend confirmed the registration.
    pub fn window(&self) -> Option<Window> {
        let registered_at = self.registered_at?;
        Some(window(&WindowInput {
            kind: self.kind,
            registered_at: from_ms(registered_at),
            visit_date: Some(self.visit_date),
            home_visits: self.home_visits.clone(),
            withdrawn_at: self.withdrawn_at.map(from_ms),
        }))
    }
}

/// The columns [`reception_in`] reads, from a query that names the reception `r`.
macro_rules! reception_columns {
    () => {
        "r.id, r.institution_id, r.kind, r.visit_date, r.clinical_medication, r.checkups, \
         r.prescription, r.status, r.refusal_code, r.submitted_at, r.registration_id, \
         r.reception_number, r.registered_at, r.withdrawn_at, \
         (SELECT MAX(o.attempts) FROM outbox o \
           WHERE o.reception_id = r.id AND o.operation = 'register') AS attempts"
    };
}

/// One reception by id.
pub async fn get(db: &Db, reception_id: &str) -> Result<Option<Reception>, StorageError> {
    if !looks_like_id(reception_id) {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        reception_columns!(),
        " FROM receptions r WHERE r.id = $1"
    ))
    .bind(reception_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(mut reception) = reception_in(&row)? else {
        return Ok(None);
    };
    let visits = sqlx::query("SELECT visit_date FROM home_visits WHERE reception_id = $1")
        .bind(reception_id)
        .fetch_all(db)
        .await?;
    for v in visits {
        let text: String = v.try_get("visit_date")?;
        if let Some(date) = parse_date(&text) {
            reception.home_visits.push(date);
        }
    }
    reception.home_visits.sort();
    Ok(Some(reception))
}

/// A reception as the relay sends its requests: [`Reception`] without the home visits, which
/// no request the relay sends reads from here.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub id: String,
    pub institution_id: String,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    pub status: Status,
    pub registration_id: Option<String>,
}

/// The reception `reception_id` as the relay needs it, and its institution's signer
/// (`institutions::signer`), in one statement. `None` for a reception that is not there (or
/// cannot be read); the signer is `None` when the institution has no usable key.
pub async fn for_relay(
    db: &Db,
    reception_id: &str,
) -> Result<Option<(Relayed, Option<RelayIdentity>)>, StorageError> {
    if !looks_like_id(reception_id) {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        reception_columns!(),
        ", ",
        super::institutions::signer_columns!(),
        " FROM receptions r LEFT JOIN institutions i ON i.id = r.institution_id \
         WHERE r.id = $1"
    ))
    .bind(reception_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(reception) = reception_in(&row)? else {
        return Ok(None);
    };
    let signer = super::institutions::signer_in(&row, &reception.institution_id)?;
    Ok(Some((
        Relayed {
            id: reception.id,
            institution_id: reception.institution_id,
            kind: reception.kind,
            visit_date: reception.visit_date,
            consent: reception.consent,
            status: reception.status,
            registration_id: reception.registration_id,
        },
        signer,
    )))
}

/// The reception in a row of a query that read `reception_columns!`, without its home visits
/// (empty); `None` (logged) when the row cannot be read.
fn reception_in(row: &AnyRow) -> Result<Option<Reception>, StorageError> {
    let kind: String = row.try_get("kind")?;
    let visit_date: String = row.try_get("visit_date")?;
    let (Some(kind), Some(visit_date)) = (ReceptionKind::from_code(&kind), parse_date(&visit_date))
    else {
        tracing::error!("a reception row cannot be read");
        return Ok(None);
    };
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "confirmed" => Status::Confirmed,
        "refused" => Status::Refused {
            code: row
                .try_get::<Option<String>, _>("refusal_code")?
                .unwrap_or_else(|| "internal".to_owned()),
        },
        _ => Status::Queued {
            attempts: row.try_get::<Option<i64>, _>("attempts")?.unwrap_or(0),
        },
    };
    let clinical: i64 = row.try_get("clinical_medication")?;
    let checkups: i64 = row.try_get("checkups")?;
    Ok(Some(Reception {
        id: row.try_get("id")?,
        institution_id: row.try_get("institution_id")?,
        kind,
        visit_date,
        consent: ConsentChoices {
            clinical_medication: clinical != 0,
            checkups: checkups != 0,
        },
        prescription: prescription_from(row.try_get("prescription")?),
        status,
        submitted_at: row.try_get("submitted_at")?,
        registration_id: row.try_get("registration_id")?,
        reception_number: row.try_get("reception_number")?,
        registered_at: row.try_get("registered_at")?,
        withdrawn_at: row.try_get("withdrawn_at")?,
        home_visits: Vec::new(),
    }))
}

/// The reception whose cancel token is `token`.
/// The link reception `id` was made through, if it is known.
pub async fn link_of(db: &Db, id: &str) -> Result<Option<String>, StorageError> {
    let link: Option<Option<String>> =
        sqlx::query_scalar("SELECT link_id FROM receptions WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(link.flatten())
}

pub async fn by_cancel_token(db: &Db, token: &str) -> Result<Option<String>, StorageError> {
    if !looks_like_id(token) {
        return Ok(None);
    }
    let row = sqlx::query("SELECT id FROM receptions WHERE cancel_token_sha256 = $1")
        .bind(sha256_hex(token.as_bytes()))
        .fetch_optional(db)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    })
}

/// Withdraws all consents of a reception: the window closes here at once, whatever the backend
/// says, and the withdrawal is queued for the backend in the same transaction. Returns false
/// when it was already withdrawn (the first instant stays).
pub async fn withdraw(
    db: &Db,
    reception_id: &str,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    if !withdraw_in(&mut tx, reception_id, payload, now_ms).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// [`withdraw`] inside the caller's transaction (the console writes its audit row in it too).
/// On `false` nothing was written, and the caller rolls back or commits as it likes.
pub async fn withdraw_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    reception_id: &str,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let changed = sqlx::query(
        "UPDATE receptions SET withdrawn_at = $1, updated_at = $1 \
         WHERE id = $2 AND withdrawn_at IS NULL",
    )
    .bind(now_ms)
    .bind(reception_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Ok(false);
    }
    // Medical information fetched so far goes at once, not at the next sweep.
    sqlx::query("DELETE FROM medical_data WHERE reception_id = $1")
        .bind(reception_id)
        .execute(&mut **tx)
        .await?;
    super::outbox::enqueue(
        tx,
        &new_id(),
        reception_id,
        super::outbox::Operation::Withdraw,
        payload,
        now_ms,
    )
    .await?;
    Ok(true)
}

/// 同意の更新: sets both consent categories of a reception that is not withdrawn, and queues
/// the change for the backend in the same transaction. The gate reads these columns, so staff
/// see the new consent at once; `updated_at` moves, so the console's live list hears of it.
/// Medical information already fetched for a category that is no longer consented goes at once,
/// as on withdrawal. Returns false when nothing was written (withdrawn, or nothing to change).
pub async fn update_consent(
    db: &Db,
    reception_id: &str,
    consent: ConsentChoices,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    if !update_consent_in(&mut tx, reception_id, consent, payload, now_ms).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// [`update_consent`] inside the caller's transaction (the patient's change writes its audit
/// row in it too). On `false` nothing was written, and the caller rolls back or commits.
pub async fn update_consent_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    reception_id: &str,
    consent: ConsentChoices,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let changed = sqlx::query(
        "UPDATE receptions SET clinical_medication = $1, checkups = $2, updated_at = $3 \
         WHERE id = $4 AND withdrawn_at IS NULL \
           AND (clinical_medication <> $1 OR checkups <> $2)",
    )
    .bind(i64::from(consent.clinical_medication))
    .bind(i64::from(consent.checkups))
    .bind(now_ms)
    .bind(reception_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Ok(false);
    }
    let revoked = [
        (!consent.clinical_medication).then_some("clinical_medication"),
        (!consent.checkups).then_some("checkups"),
    ];
    for category in revoked.into_iter().flatten() {
        sqlx::query("DELETE FROM medical_data WHERE reception_id = $1 AND category = $2")
            .bind(reception_id)
            .bind(category)
            .execute(&mut **tx)
            .await?;
    }
    super::outbox::enqueue(
        tx,
        &new_id(),
        reception_id,
        super::outbox::Operation::ConsentUpdate,
        payload,
        now_ms,
    )
    .await?;
    Ok(true)
}

/// Records a home visit (訪問診療等) and queues it for the backend. False if it was recorded.
pub async fn record_home_visit(
    db: &Db,
    reception_id: &str,
    date: NaiveDate,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    if !record_home_visit_in(&mut tx, reception_id, date, payload, now_ms).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// [`record_home_visit`] inside the caller's transaction; on `false` nothing was written.
pub async fn record_home_visit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    reception_id: &str,
    date: NaiveDate,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let exists =
        sqlx::query("SELECT 1 AS one FROM home_visits WHERE reception_id = $1 AND visit_date = $2")
            .bind(reception_id)
            .bind(date_text(date))
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO home_visits (reception_id, visit_date, recorded_at) VALUES ($1, $2, $3)",
    )
    .bind(reception_id)
    .bind(date_text(date))
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE receptions SET updated_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(reception_id)
        .execute(&mut **tx)
        .await?;
    super::outbox::enqueue(
        tx,
        &new_id(),
        reception_id,
        super::outbox::Operation::HomeVisit,
        payload,
        now_ms,
    )
    .await?;
    Ok(true)
}

/// What a session proved on the management page (同意照会): the card, and the person when the
/// backend named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenPatient {
    /// The card reference (SHA-256 hex of the certificate serial, `trust::Trust::verify`).
    pub card_ref: String,
    /// The backend's reference of the person at this institution (PROTOCOL.md §6.7); `None`
    /// when the backend could not say, so receptions of an earlier certificate stay unfound.
    pub person_ref: Option<String>,
}

/// Records that this session proved `patient` (同意照会) at `now_ms`.
pub async fn prove_card(
    db: &Db,
    session_id: &str,
    patient: &ProvenPatient,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE reception_sessions SET card_ref = $1, person_ref = $2, card_used_at = $3 \
         WHERE id = $4",
    )
    .bind(&patient.card_ref)
    .bind(patient.person_ref.as_deref())
    .bind(now_ms)
    .bind(session_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets any card this session proved earlier: a new proof that fails after its challenge
/// was used must not leave the previous patient's proof in force (a shared device).
pub async fn forget_card(db: &Db, session_id: &str) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE reception_sessions SET card_ref = NULL, person_ref = NULL, card_used_at = NULL \
         WHERE id = $1",
    )
    .bind(session_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves the receptions stored at this institution under a card's earlier reference
/// (`legacy`, the v1 hash of the serial alone) to its current reference; returns how many.
pub async fn adopt_card_ref(
    db: &Db,
    institution_id: &str,
    legacy: &str,
    current: &str,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "UPDATE receptions SET card_ref = $1 WHERE institution_id = $2 AND card_ref = $3",
    )
    .bind(current)
    .bind(institution_id)
    .bind(legacy)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// How long a proof of 同意照会 lasts without use: five minutes after the last request that
/// used it, the list of someone's consents is no longer shown on a device left open (a shared
/// device, a waiting-room tablet). The patient proves the card again.
pub const CARD_IDLE_MS: i64 = 5 * 60 * 1000;

/// What a session proved on the management page, as of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenCard {
    /// No card was proven in this session.
    None,
    /// A card was proven, but not used for [`CARD_IDLE_MS`]: the proof is forgotten.
    Idle,
    Proven(ProvenPatient),
}

/// The patient this session proved, if the proof was used within [`CARD_IDLE_MS`] of `now_ms`;
/// a live proof's idle time starts again, a lapsed one is forgotten.
pub async fn proven_card(
    db: &Db,
    session_id: &str,
    now_ms: i64,
) -> Result<ProvenCard, StorageError> {
    let row = sqlx::query(
        "SELECT card_ref, person_ref, card_used_at FROM reception_sessions WHERE id = $1",
    )
    .bind(session_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(ProvenCard::None);
    };
    let card_ref: Option<String> = row.try_get("card_ref")?;
    let person_ref: Option<String> = row.try_get("person_ref")?;
    let used_at: Option<i64> = row.try_get("card_used_at")?;
    let Some(card_ref) = card_ref else {
        return Ok(ProvenCard::None);
    };
    // Touch only a proof that is still live, and only if nobody touched or forgot it since.
    let touched = match used_at {
        Some(used_at) if now_ms.saturating_sub(used_at) < CARD_IDLE_MS => sqlx::query(
            "UPDATE reception_sessions SET card_used_at = $1 \
             WHERE id = $2 AND card_ref = $3 AND card_used_at >= $4",
        )
        .bind(now_ms.max(used_at))
        .bind(session_id)
        .bind(&card_ref)
        .bind(now_ms - CARD_IDLE_MS + 1)
        .execute(db)
        .await?
        .rows_affected(),
        _ => 0,
    };
    if touched != 1 {
        forget_card(db, session_id).await?;
        return Ok(ProvenCard::Idle);
    }
    Ok(ProvenCard::Proven(ProvenPatient {
        card_ref,
        person_ref,
    }))
}

/// Records the backend's reference of the person with the receptions of their card here that
/// have none yet (made before references existed, or still waiting for the backend), now that
/// the backend named the holder of that card: after the next renewal they are found by the
/// person, not only by the old card. Returns how many receptions were linked.
pub async fn link_person(
    db: &Db,
    institution_id: &str,
    patient: &ProvenPatient,
) -> Result<u64, StorageError> {
    let Some(person_ref) = patient.person_ref.as_deref() else {
        return Ok(0);
    };
    let linked = sqlx::query(
        "UPDATE receptions SET person_ref = $1 \
         WHERE institution_id = $2 AND card_ref = $3 AND person_ref IS NULL",
    )
    .bind(person_ref)
    .bind(institution_id)
    .bind(&patient.card_ref)
    .execute(db)
    .await?
    .rows_affected();
    Ok(linked)
}

/// Whether `institution_id` holds a reception that no person reference links yet, made with
/// another card than `card_ref`, whose consents still stand at `now_ms` (confirmed, not
/// withdrawn, window open): it may be this patient's, made with an earlier certificate before
/// person references existed, and only that card could find it. The page then says where else
/// to withdraw. Says nothing about whose it is.
pub async fn unlinked_open_elsewhere(
    db: &Db,
    institution_id: &str,
    card_ref: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let rows = sqlx::query(
        "SELECT id FROM receptions WHERE institution_id = $1 AND person_ref IS NULL \
           AND card_ref IS NOT NULL AND card_ref <> $2 AND withdrawn_at IS NULL \
           AND status = 'confirmed' \
         ORDER BY submitted_at DESC LIMIT 50",
    )
    .bind(institution_id)
    .bind(card_ref)
    .fetch_all(db)
    .await?;
    let now = from_ms(now_ms);
    for row in rows {
        let id: String = row.try_get("id")?;
        if let Some(window) = get(db, &id).await?.and_then(|r| r.window())
            && uketsuke_domain::window::is_open(&window, now)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The receptions of `patient` at `institution_id`, newest first: those made by the same person
/// with any certificate of theirs, and those made with this card (rows without a person).
pub async fn of_card(
    db: &Db,
    institution_id: &str,
    patient: &ProvenPatient,
) -> Result<Vec<Reception>, StorageError> {
    let rows = sqlx::query(
        "SELECT id FROM receptions WHERE institution_id = $1 \
           AND (card_ref = $2 OR person_ref = $3) \
         ORDER BY submitted_at DESC LIMIT 100",
    )
    .bind(institution_id)
    .bind(&patient.card_ref)
    .bind(patient.person_ref.as_deref())
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        if let Some(reception) = get(db, &id).await? {
            out.push(reception);
        }
    }
    Ok(out)
}

/// The ids of every reception of `patient` at `institution_id` not withdrawn yet, however many
/// (「すべての同意を取消す」 must reach all of them, not only the newest listed).
pub async fn open_ids_of_card(
    db: &Db,
    institution_id: &str,
    patient: &ProvenPatient,
) -> Result<Vec<String>, StorageError> {
    let rows = sqlx::query(
        "SELECT id FROM receptions WHERE institution_id = $1 \
           AND (card_ref = $2 OR person_ref = $3) AND withdrawn_at IS NULL",
    )
    .bind(institution_id)
    .bind(&patient.card_ref)
    .bind(patient.person_ref.as_deref())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| row.try_get("id").map_err(StorageError::from))
        .collect()
}

/// One reception of `patient` at `institution_id` (as in [`of_card`]); `None` for any other
/// reception, whoever holds it, so that a patient can never learn of receptions not theirs.
pub async fn of_card_by_id(
    db: &Db,
    institution_id: &str,
    patient: &ProvenPatient,
    reception_id: &str,
) -> Result<Option<Reception>, StorageError> {
    if !looks_like_id(reception_id) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id FROM receptions WHERE id = $1 AND institution_id = $2 \
           AND (card_ref = $3 OR person_ref = $4)",
    )
    .bind(reception_id)
    .bind(institution_id)
    .bind(&patient.card_ref)
    .bind(patient.person_ref.as_deref())
    .fetch_optional(db)
    .await?;
    match row {
        Some(_) => get(db, reception_id).await,
        None => Ok(None),
    }
}

/// Deletes the reception sessions that expired at or before `now_ms`, with any challenge of
/// theirs still left (a session shortened after its challenge was issued); returns how many
/// sessions went. The receptions themselves stay: the cancel link and the console find them
/// by their own columns.
pub async fn sweep_expired_sessions(db: &Db, now_ms: i64) -> Result<u64, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    sqlx::query(
        "DELETE FROM challenges WHERE session_id IN \
         (SELECT id FROM reception_sessions WHERE expires_at <= $1)",
    )
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    let swept = sqlx::query("DELETE FROM reception_sessions WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(swept)
}
