-- The backend's reference of the person (PROTOCOL.md §6.7): opaque, per institution, the same
-- for every certificate of one person. The 利用者証明用電子証明書 is renewed every five years and
-- with a reissued card, and its serial changes each time, so card_ref alone loses the patient's
-- receptions after a renewal; person_ref finds them with the new certificate. Set from the
-- registration's answer, or when the patient proves the same card on the management page while
-- the backend names them. Rows from before this migration keep only card_ref and are found by
-- it. No name or birth date is stored for this.
ALTER TABLE receptions ADD COLUMN person_ref TEXT;
CREATE INDEX receptions_by_person ON receptions (institution_id, person_ref);

-- The person reference the backend answered for the card this session proved (同意照会); NULL
-- when it could not answer, and the page then says that receptions made with an earlier card
-- may be missing.
ALTER TABLE reception_sessions ADD COLUMN person_ref TEXT;
