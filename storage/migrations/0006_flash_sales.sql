-- Flash sales: the waiting room's terms per show. A flash-sale show without a row here gets
-- the defaults (queue open 30 minutes before the sale, 600 visitors a minute, tokens of 10
-- minutes); shows.sale_opens_at stays the sale's start.
CREATE TABLE flash_sales (
    show_id            bigint PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    queue_opens_at     timestamptz NOT NULL,
    admission_per_min  integer NOT NULL CHECK (admission_per_min BETWEEN 1 AND 1000000),
    token_ttl_s        integer NOT NULL CHECK (token_ttl_s BETWEEN 30 AND 86400),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         bigint REFERENCES users (id)
);
