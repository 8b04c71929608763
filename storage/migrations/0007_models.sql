-- What the models decide, kept for the customer's bill, for ops and for the next training.

-- The pricing experiment's arm a hold was quoted under ('control': the show's price table,
-- 'dynamic': the optimizer's price), carried onto the booking it became.
ALTER TABLE holds ADD COLUMN price_arm text NOT NULL DEFAULT 'control'
    CHECK (price_arm IN ('control', 'dynamic'));
ALTER TABLE bookings ADD COLUMN price_arm text NOT NULL DEFAULT 'control'
    CHECK (price_arm IN ('control', 'dynamic'));

-- Every dynamic price a show's seat category got, newest last; the latest row is the price in
-- force. The optimizer reads the latest one to keep to one change an hour.
CREATE TABLE price_changes (
    show_id      bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    category     text NOT NULL CHECK (category <> ''),
    price_cents  integer NOT NULL CHECK (price_cents >= 0),
    base_cents   integer NOT NULL CHECK (base_cents >= 0),
    changed_at   timestamptz NOT NULL,
    source       text NOT NULL CHECK (source IN ('model', 'fallback')),
    model_version text,
    PRIMARY KEY (show_id, category, changed_at)
);

-- Genres a customer picked (cold-start recommendations).
ALTER TABLE users ADD COLUMN favourite_genres text[] NOT NULL DEFAULT '{}';

-- Each fraud check at checkout: the features it saw, its score and decision, and why.
CREATE TABLE fraud_decisions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at     timestamptz NOT NULL DEFAULT now(),
    user_id        bigint NOT NULL,
    show_id        bigint NOT NULL,
    hold_id        uuid NOT NULL,
    features       jsonb NOT NULL,
    score          double precision NOT NULL CHECK (score BETWEEN 0 AND 1),
    decision       text NOT NULL CHECK (decision IN ('allow', 'verify', 'block')),
    source         text NOT NULL CHECK (source IN ('model', 'fallback')),
    model_version  text,
    reasons        jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX fraud_decisions_created_idx ON fraud_decisions (created_at DESC);
CREATE INDEX fraud_decisions_user_idx ON fraud_decisions (user_id, created_at);

-- An analyst's verdict on a decision; retraining reads these as ground truth.
CREATE TABLE fraud_labels (
    decision_id  bigint PRIMARY KEY REFERENCES fraud_decisions (id) ON DELETE CASCADE,
    is_fraud     boolean NOT NULL,
    analyst_id   bigint REFERENCES users (id),
    note         text NOT NULL DEFAULT '',
    labelled_at  timestamptz NOT NULL DEFAULT now()
);
