-- Keeping data (issue 17): institutions' request-signing keys sealed under a key-encryption key
-- kept outside the database, and the audit log's pruning anchor. Same portable conventions as
-- 0001: instants BIGINT ms.

-- The institution's P-256 private scalar sealed with AES-256-GCM under the key-encryption key
-- (config `key_encryption_key_file`): 'v1.<key fingerprint>.<nonce>.<ciphertext+tag>', base64url
-- parts, the institution code and key id as associated data. Keys stored in the clear before this
-- migration (`signing_key`) are sealed at the next start and the clear column set to NULL.
ALTER TABLE institutions ADD COLUMN signing_key_sealed TEXT;

-- The key-encryption key the sealed keys of this database are made with, named by its
-- fingerprint (an HMAC of a fixed text under the key; never the key). One row.
CREATE TABLE key_encryption (
    id              BIGINT PRIMARY KEY,
    key_id          TEXT NOT NULL,
    installed_at    BIGINT NOT NULL
);

-- Audit rows older than `audit_retention_days` are deleted by the sweeper. The chain then starts
-- after the last deleted row: its sequence number and hash are kept here (the anchor), and the
-- pruning itself is a keyed row 'audit.pruned' naming the same anchor, so that the anchor cannot
-- be moved without the audit key. NULL: nothing pruned.
ALTER TABLE audit_heads ADD COLUMN pruned_through BIGINT;
ALTER TABLE audit_heads ADD COLUMN pruned_hash TEXT;
