-- Seat holds, bookings (partitioned by show date), payments, the outbox and idempotency keys.

CREATE TABLE holds (
    hold_id          uuid PRIMARY KEY,
    show_id          bigint NOT NULL REFERENCES shows (id),
    user_id          bigint NOT NULL,
    seats            text[] NOT NULL,
    price_cents      integer NOT NULL CHECK (price_cents >= 0),
    status           text NOT NULL
                     CHECK (status IN ('live', 'released', 'expired', 'confirmed')),
    payment_started  boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    ended_at         timestamptz
);
CREATE INDEX holds_live_idx ON holds (show_id) WHERE status = 'live';

-- Seats an admin took out of sale for one show (house seats, a broken seat on the day).
CREATE TABLE show_blocked_seats (
    show_id     bigint NOT NULL REFERENCES shows (id),
    seat        text NOT NULL,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (show_id, seat)
);

-- show_date is the show's start date in UTC; it is the partition key.
CREATE TABLE bookings (
    booking_id    uuid NOT NULL,
    show_date     date NOT NULL,
    show_id       bigint NOT NULL,
    user_id       bigint NOT NULL,
    hold_id       uuid,
    seats         text[] NOT NULL,
    price_cents   integer NOT NULL CHECK (price_cents >= 0),
    currency      text NOT NULL DEFAULT 'USD',
    status        text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    confirmed_at  timestamptz NOT NULL,
    cancelled_at  timestamptz,
    PRIMARY KEY (booking_id, show_date)
) PARTITION BY RANGE (show_date);
CREATE INDEX bookings_show_idx ON bookings (show_id);
CREATE INDEX bookings_user_idx ON bookings (user_id, confirmed_at);

CREATE TABLE booking_seats (
    booking_id  uuid NOT NULL,
    show_date   date NOT NULL,
    show_id     bigint NOT NULL,
    seat        text NOT NULL,
    live        boolean NOT NULL DEFAULT true       -- false once the booking is cancelled
) PARTITION BY RANGE (show_date);
-- The last guard against a seat sold twice (show_date follows from show_id).
CREATE UNIQUE INDEX booking_seats_live_uniq ON booking_seats (show_id, seat, show_date) WHERE live;
CREATE INDEX booking_seats_booking_idx ON booking_seats (booking_id);

-- Monthly partitions of bookings and booking_seats for [first_month, last_month].
CREATE FUNCTION ensure_booking_partitions(first_month date, last_month date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', first_month)::date;
    parent text;
    child text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.booking_partitions'));
    WHILE month <= last_month LOOP
        FOREACH parent IN ARRAY ARRAY['bookings', 'booking_seats'] LOOP
            child := parent || '_' || to_char(month, 'YYYY_MM');
            IF to_regclass(format('%I.%I', current_schema(), child)) IS NULL THEN
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
                               current_schema(), child, current_schema(), parent,
                               month, (month + interval '1 month')::date);
                created := created + 1;
            END IF;
        END LOOP;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;

CREATE TABLE payments (
    payment_id    uuid PRIMARY KEY,
    hold_id       uuid NOT NULL,
    booking_id    uuid,
    user_id       bigint NOT NULL,
    provider      text NOT NULL,
    provider_ref  text,                             -- e.g. the PaymentIntent id
    amount_cents  integer NOT NULL CHECK (amount_cents >= 0),
    currency      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed',
                                                  'refunded', 'partially_refunded')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_ref)
);
CREATE INDEX payments_hold_idx ON payments (hold_id);

-- Messages to send (emails, webhooks), written in the transaction that causes them.
CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic            text NOT NULL,
    dedup_key        text NOT NULL UNIQUE,          -- nothing is sent twice
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    last_error       text
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- A retried request with the same key gets the first answer.
CREATE TABLE idempotency_keys (
    user_id        bigint NOT NULL,
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash   text NOT NULL,
    status_code    integer,                          -- null while the first request runs
    response       jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
