-- Patient sessions and cancel tokens are no longer stored in clear (issue 12, §§5–6).
--
-- From now on a reception session's `id` is the SHA-256 (lower-case hex) of the random value
-- the patient's cookie carries, as console sessions have always been stored; the value itself
-- is only in the browser. SHA-256 cannot be computed in portable SQL (SQLite has no such
-- function), so the sessions stored so far, whose ids are the cookie values themselves, cannot
-- be converted: this migration ends them. A patient in the middle of a reception starts again
-- from the same link (sessions live 30 minutes at most, so few are affected); nothing that was
-- registered is lost. Cancel tokens keep working: receptions have always kept only the token's
-- SHA-256 (`receptions.cancel_token_sha256`); the clear copy the session kept for the done
-- screen is dropped, and replaced by `cancel_token_sealed` below.

DELETE FROM challenges;
DELETE FROM reception_sessions;
-- The session ids receptions recorded (one reception per session) were cookie values too.
UPDATE receptions SET session_id = NULL;

ALTER TABLE reception_sessions DROP COLUMN cancel_token;
-- The cancel token of the submitted reception, sealed for the done screen: the token XOR
-- SHA-256 of a label and the session's cookie value, hex. Only a request carrying that cookie
-- can open it, and it is cleared once the done screen has shown it.
ALTER TABLE reception_sessions ADD COLUMN cancel_token_sealed TEXT;
-- When the card proven in this session (同意照会, `card_ref`) was last used: after a short
-- idle time the proof lapses (a shared device left on the list of someone's consents).
ALTER TABLE reception_sessions ADD COLUMN card_used_at BIGINT;
