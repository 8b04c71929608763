-- Accounts: which theaters a theater admin runs, and refresh tokens.

CREATE TABLE theater_admins (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    theater_id  bigint NOT NULL REFERENCES theaters (id) ON DELETE CASCADE,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, theater_id)
);
CREATE INDEX theater_admins_theater_idx ON theater_admins (theater_id);

-- Refresh tokens are opaque; only their SHA-256 is kept. Each refresh replaces the token by a
-- new one of the same family; presenting a replaced token again revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash   bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family       uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    replaced_at  timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
