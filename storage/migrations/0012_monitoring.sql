-- Model monitoring: what each gateway process counted of each model per flush (calls, answers,
-- fallbacks, errors, latency and prediction histograms, input features binned on the training
-- reference of the version serving), the recommendations shown, clicked and booked, and alerts.
CREATE TABLE model_stats (
    id           bigserial PRIMARY KEY,
    model        text NOT NULL,
    process      text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    version      text,                            -- the serving version the features were binned on
    calls        bigint NOT NULL DEFAULT 0,
    answers      bigint NOT NULL DEFAULT 0,       -- answered by the model
    errors       bigint NOT NULL DEFAULT 0,       -- the model failed or timed out
    fallbacks    jsonb NOT NULL DEFAULT '{}',     -- reason -> count
    latency      jsonb NOT NULL DEFAULT '{}',     -- bucket's upper edge in ms -> count
    predictions  jsonb NOT NULL DEFAULT '{}',     -- bin -> count
    features     jsonb NOT NULL DEFAULT '{}',     -- feature -> bin -> count
    extra        jsonb NOT NULL DEFAULT '{}'      -- other counters (recommender: requests, cold_start)
);
CREATE INDEX model_stats_at_idx ON model_stats (at, model);

-- Recommended movies shown and clicked, per hour, customer (0: not logged in), movie and the
-- source of the list; converted_at: the customer booked the movie within 24 h of being shown it.
CREATE TABLE rec_impressions (
    hour          timestamptz NOT NULL,
    user_id       bigint NOT NULL,
    movie_id      bigint NOT NULL,
    source        text NOT NULL,
    shown         integer NOT NULL DEFAULT 0,
    clicked       integer NOT NULL DEFAULT 0,
    converted_at  timestamptz,
    PRIMARY KEY (hour, user_id, movie_id, source)
);
CREATE INDEX rec_impressions_open_idx ON rec_impressions (hour) WHERE converted_at IS NULL;

CREATE TABLE alerts (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,                   -- latency, error_rate, ctr_drop, drift, stale_model
    model        text NOT NULL,
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    opened_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    acked_at     timestamptz,
    acked_by     bigint,
    details      jsonb NOT NULL DEFAULT '{}'
);
-- One open alert per (kind, model).
CREATE UNIQUE INDEX alerts_open_uniq ON alerts (kind, model) WHERE state = 'open';
CREATE INDEX alerts_opened_idx ON alerts (opened_at DESC);
