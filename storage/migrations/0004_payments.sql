-- The booking saga: payment attempts, refunds, its step log and the webhooks it has seen.
-- The `payments` table of 0002 was never written; it gains what the saga records.

ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments
    ADD COLUMN show_id        bigint NOT NULL REFERENCES shows (id),
    ADD COLUMN seats          text[] NOT NULL,
    ADD COLUMN attempt        integer NOT NULL CHECK (attempt >= 1),
    ADD COLUMN client_secret  text,
    ADD COLUMN refunded_cents integer NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    ADD COLUMN last_error     text,
    -- creating: the intent is being made; open: waiting for the customer; succeeded: money
    -- taken, not yet settled; booked: the booking is durable; refunding / refunded: money
    -- taken but no seat to give (hold lost); failed: declined; canceled: abandoned.
    ADD CONSTRAINT payments_status_check CHECK (status IN (
        'creating', 'open', 'succeeded', 'booked', 'refunding', 'refunded', 'failed',
        'canceled')),
    ADD CONSTRAINT payments_refund_bound CHECK (refunded_cents <= amount_cents),
    ADD CONSTRAINT payments_attempt_uniq UNIQUE (hold_id, attempt);
-- At most one attempt of a hold is alive at a time: a second click finds the first.
CREATE UNIQUE INDEX payments_live_per_hold ON payments (hold_id)
    WHERE status IN ('creating', 'open');
-- At most one payment of a hold ever becomes its booking.
CREATE UNIQUE INDEX payments_booked_per_hold ON payments (hold_id) WHERE status = 'booked';
CREATE INDEX payments_unsettled_idx ON payments (updated_at)
    WHERE status IN ('creating', 'open', 'succeeded', 'refunding');
CREATE INDEX payments_booking_idx ON payments (booking_id) WHERE booking_id IS NOT NULL;

-- At most one refund per payment: a cancellation by policy, a show cancelled, or a payment
-- that found no seat. The row is written before any money or seat moves, so a crash resumes.
CREATE TABLE refunds (
    refund_id     uuid PRIMARY KEY,
    payment_id    uuid NOT NULL UNIQUE REFERENCES payments (payment_id),
    booking_id    uuid,
    reason        text NOT NULL CHECK (reason IN ('customer_cancel', 'show_cancelled',
                                                  'hold_lost', 'duplicate_payment')),
    amount_cents  integer NOT NULL CHECK (amount_cents >= 0),
    currency      text NOT NULL,
    -- pending: to do; succeeded: the provider refunded it; none: the policy gave nothing back
    status        text NOT NULL CHECK (status IN ('pending', 'succeeded', 'none')),
    provider_ref  text UNIQUE,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_pending_idx ON refunds (updated_at) WHERE status = 'pending';
CREATE INDEX refunds_booking_idx ON refunds (booking_id) WHERE booking_id IS NOT NULL;

-- Every step of every payment, in order: what happened, and what the saga knew then.
CREATE TABLE payment_steps (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id  uuid NOT NULL,
    step        text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX payment_steps_payment_idx ON payment_steps (payment_id, id);

-- Webhooks received: a replay of a processed event is answered without acting again.
CREATE TABLE webhook_events (
    provider      text NOT NULL,
    event_id      text NOT NULL,
    type          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    deliveries    integer NOT NULL DEFAULT 1,
    processed_at  timestamptz,
    outcome       text,
    PRIMARY KEY (provider, event_id)
);
