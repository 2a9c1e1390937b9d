-- 閲覧履歴 (issue 15 §1): the patient sees, on 同意照会, every read of their information.
--
-- The audit row of a read (same institution_id and seq, appended in the same transaction) holds
-- when and which staff ID; this table adds what the patient's page needs and the audit row does
-- not carry: which reception was read, which category (資格情報 'eligibility', 診療・薬剤情報
-- 'clinical_medication', 特定健診等情報 'checkups'), and the role the staff member had at that
-- moment ('administrator', 'general', 'medical_viewer'). One audit row may name several
-- receptions (an export of a day's receptions for the レセコン). Refusals are never written
-- here: only reads that answered.
--
-- No foreign key to audit_log: the patient's page joins the two, so a row whose audit row is
-- gone is never shown.
CREATE TABLE audit_reads (
    institution_id  TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    reception_id    TEXT NOT NULL,
    category        TEXT NOT NULL,
    role            TEXT NOT NULL,
    PRIMARY KEY (institution_id, seq, reception_id, category)
);

CREATE INDEX audit_reads_by_reception ON audit_reads (reception_id);
