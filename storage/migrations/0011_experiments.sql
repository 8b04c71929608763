-- Experiments (the pricing A/B test and any other): arms with their shares in hash order, and
-- once stopped, the arm everyone gets from then on.
CREATE TABLE experiments (
    name         text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind         text NOT NULL CHECK (kind IN ('pricing', 'generic')),
    arms         jsonb NOT NULL,          -- [{"arm": "dynamic", "share": 0.5}, …], hash order
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped')),
    description  text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz,
    stopped_by   bigint,                  -- the ops user who stopped it
    final_arm    text,                    -- the arm everyone gets once stopped
    CHECK ((status = 'stopped') = (stopped_at IS NOT NULL AND final_arm IS NOT NULL))
);

-- A visitor's first exposure to an experiment: the arm the gateway first decided for something
-- they saw, and the currency of that show (their revenue is counted in it).
CREATE TABLE experiment_exposures (
    experiment        text NOT NULL REFERENCES experiments (name),
    user_id           bigint NOT NULL,
    arm               text NOT NULL,
    currency          text NOT NULL DEFAULT '',
    first_exposed_at  timestamptz NOT NULL,
    PRIMARY KEY (experiment, user_id)
);

-- Results per arm and currency, materialized by a periodic job: counts, and per-visitor revenue
-- (zeros included) as a sum and a sum of squares, enough for Welch's t-test.
CREATE TABLE experiment_results (
    experiment   text NOT NULL REFERENCES experiments (name),
    arm          text NOT NULL,
    currency     text NOT NULL,
    visitors     bigint NOT NULL,
    converted    bigint NOT NULL,
    bookings     bigint NOT NULL,
    revenue      bigint NOT NULL,         -- minor units of the currency
    revenue_sq   numeric NOT NULL,        -- sum over visitors of their revenue squared
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (experiment, arm, currency)
);
