-- Notification channels: what each customer wants on which channel, their push devices, and
-- one delivery per (event, channel, device) fanned out from the outbox.

-- A customer's choice for one kind of notification on one channel; a missing cell takes the
-- default (notifications.prefs).
CREATE TABLE notification_prefs (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL
                CHECK (kind IN ('confirmation', 'reminder', 'cancellation', 'admission')),
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    enabled     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind, channel)
);

-- Push devices: a Firebase Cloud Messaging registration token is personal data. One token
-- belongs to one user (registering it again moves it to whoever registered it last).
CREATE TABLE push_devices (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token         text NOT NULL UNIQUE,
    platform      text NOT NULL CHECK (platform IN ('web', 'android', 'ios')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_devices_user_idx ON push_devices (user_id);

-- An outbox row is now an event: the worker fans it out into deliveries, once. Rows sent or
-- given up before this migration count as fanned out.
ALTER TABLE outbox ADD COLUMN fanned_out_at timestamptz;
UPDATE outbox SET fanned_out_at = coalesce(sent_at, failed_at)
WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_fan_out_idx ON outbox (id) WHERE fanned_out_at IS NULL AND failed_at IS NULL;

-- One message on one channel (and, for push, to one device). It holds no address: the email
-- and phone number are opened at send time, the device token read then. Each claim counts an
-- attempt, which fences the claim's lease; send_attempt marks an attempt whose send began and
-- whose outcome was never recorded (a crash), which the next attempt settles before sending.
CREATE TABLE notification_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id        bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    user_id          bigint NOT NULL,
    kind             text NOT NULL
                     CHECK (kind IN ('confirmation', 'reminder', 'cancellation', 'admission')),
    channel          text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    device_id        bigint NOT NULL DEFAULT 0,       -- the push device; 0 for email and SMS
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    send_attempt     integer,                         -- the attempt whose send is in doubt
    send_started_at  timestamptz,
    sent_at          timestamptz,
    failed_at        timestamptz,
    dropped          boolean NOT NULL DEFAULT false,  -- given up as no longer due (a reminder
                                                      -- of a cancelled booking, say)
    provider_id      text,                            -- Message-ID, Twilio SID, FCM name
    last_error       text,
    UNIQUE (outbox_id, channel, device_id)            -- nothing is sent twice on a channel
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX notification_deliveries_user_idx ON notification_deliveries (user_id);
