-- Personal data at rest: emails and phone numbers are sealed by the application (AES-256-GCM
-- under a key of its keyring, storage/crypto.py); an HMAC blind index finds a user by email.
-- The plaintext column stays only until `seal_personal_data` has sealed the rows written
-- before this migration; after that it is always NULL, and a CHECK keeps it so once sealed.
ALTER TABLE users RENAME COLUMN email TO email_plain;
ALTER TABLE users ALTER COLUMN email_plain DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_check;
DROP INDEX users_email_idx;
ALTER TABLE users
    ADD COLUMN email_enc   bytea,
    ADD COLUMN email_index bytea,
    ADD COLUMN phone_enc   bytea,
    ADD COLUMN pii_key     text,          -- the id of the key that sealed this row's values
    ADD COLUMN deleted_at  timestamptz;   -- the account was deleted: personal fields erased
CREATE UNIQUE INDEX users_email_index_idx ON users (email_index);
-- Rows sealed under a key other than the current one: what a rotation still has to do.
CREATE INDEX users_pii_key_idx ON users (pii_key);
-- A live account has an email, sealed or (until sealed) plain; a deleted one has none.
ALTER TABLE users ADD CONSTRAINT users_email_present CHECK (
    (deleted_at IS NULL AND (email_enc IS NOT NULL OR email_plain IS NOT NULL))
    OR (deleted_at IS NOT NULL AND email_enc IS NULL AND email_plain IS NULL
        AND phone_enc IS NULL AND email_index IS NULL)
);
ALTER TABLE users ADD CONSTRAINT users_sealed_together CHECK (
    (email_enc IS NULL) = (email_index IS NULL)
);
