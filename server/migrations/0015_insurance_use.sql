-- 健康保険証利用登録 from the flow (issue 15 §2). When the eligibility of a reception comes back
-- `card_not_registered_for_insurance`, the patient who submitted it may register the card for
-- insurance use there: the terms, consent, the card and PIN again, then the backend call goes
-- through the outbox (operation 'insurance_use') and eligibility is fetched again.
--
-- insurance_use_state: NULL (never asked), 'pending' (queued for the backend), 'registered'
-- (the backend registered the card, or it already was), 'refused' (the backend refused:
-- insurance_use_refusal holds its code; the patient may try again). One request at a time: a
-- new one is queued only from NULL or 'refused', by one conditional UPDATE.
ALTER TABLE receptions ADD COLUMN insurance_use_state TEXT;
ALTER TABLE receptions ADD COLUMN insurance_use_requested_at BIGINT;
-- When the backend registered the card (its answer's registered_at: on a repeat, the first
-- time), in milliseconds.
ALTER TABLE receptions ADD COLUMN insurance_use_registered_at BIGINT;
ALTER TABLE receptions ADD COLUMN insurance_use_refusal TEXT;

-- What a challenge is for, so that a challenge issued for one text never verifies another:
-- 'reception' (the consent binding of a registration), 'manage' (同意照会), 'insurance_use'
-- (健康保険証利用登録). Challenges issued before this migration were all of the first two,
-- which the binding's hash already told apart.
ALTER TABLE challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reception';
