-- Staff, tokens and audit (issue 12 §7). Same portable conventions as 0001: instants BIGINT ms,
-- flags BIGINT 0/1, lists as comma-separated TEXT.

-- 目視確認: the staff roles allowed to do it (role codes, comma-separated). Default 医療情報閲覧
-- and 管理者; an administrator may add 一般利用者.
ALTER TABLE institutions ADD COLUMN visual_check_roles TEXT NOT NULL
    DEFAULT 'medical_viewer,administrator';

-- The passkey that opened a console session, so that removing the passkey ends its sessions.
-- NULL for sessions opened before this migration (they end with their timeouts as before).
ALTER TABLE console_sessions ADD COLUMN passkey_id TEXT;
CREATE INDEX console_sessions_by_passkey ON console_sessions (passkey_id);

-- Who issued an enrolment code (the staff ID of an administrator, or '-cli' / '-demo'); and on
-- the passkey it registered, who enrolled it for whom. NULL on rows from before this migration.
ALTER TABLE enrolment_codes ADD COLUMN issued_by TEXT;
ALTER TABLE staff_passkeys ADD COLUMN enrolled_by TEXT;

-- Institution API tokens: what each may do, and until when. Tokens made before this migration
-- keep what they could do then (every scope) and end a year after they were made.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'links:appointment';
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
UPDATE api_tokens SET scopes = 'links:appointment,links:standing,links:revoke,home_visits:write',
    expires_at = created_at + 31536000000;

-- The token that made a link (NULL: the console); a token revokes only its own links.
ALTER TABLE reception_links ADD COLUMN created_by_token TEXT;

-- The audit chain keyed with HMAC-SHA-256 (a key outside the database). keyed_from is the first
-- row of the chain made with the key (a row with action 'audit.keyed'); rows before it were
-- made with the unkeyed SHA-256 chain and are checked with that rule. NULL: not keyed yet.
ALTER TABLE audit_heads ADD COLUMN keyed_from BIGINT;

-- The key the chains of this database are made with, named by its fingerprint (an HMAC of a
-- fixed text under the key; the key itself is never stored here). One row.
CREATE TABLE audit_keying (
    id              BIGINT PRIMARY KEY,
    key_id          TEXT NOT NULL,
    keyed_at        BIGINT NOT NULL
);

-- 目視確認's per-staff rate limit counts a staff member's rows of the last hour.
CREATE INDEX audit_log_by_account ON audit_log (institution_id, account, action, at);
