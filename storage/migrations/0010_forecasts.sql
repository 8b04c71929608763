-- Forecasts of upcoming shows (gateway.ops.forecasts): the latest one per show, refreshed when
-- the show's bookings change (shows.seat_version) or it gets old, and the first one made
-- within each horizon (72 h, 24 h, 3 h before the start), settled against the show's actual
-- final occupancy once it has started, for the accuracy report.
CREATE TABLE show_forecasts (
    show_id           bigint PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    made_at           timestamptz NOT NULL,
    seat_version      bigint NOT NULL,              -- shows.seat_version it was made at
    horizon_h         integer,                      -- smallest horizon it falls within, or NULL
    capacity          integer NOT NULL CHECK (capacity >= 0),
    sold              integer NOT NULL CHECK (sold >= 0),
    seats             real NOT NULL,                -- expected final seats
    seats_lo          real NOT NULL,                -- the 80 % interval
    seats_hi          real NOT NULL,
    naive_seats       real NOT NULL,                -- same weekday last week, at the same time
    revenue_cents     bigint NOT NULL,
    revenue_lo_cents  bigint NOT NULL,
    revenue_hi_cents  bigint NOT NULL,
    currency          text NOT NULL,
    flag              text CHECK (flag IN ('sell_out', 'empty')),
    source            text NOT NULL CHECK (source IN ('model', 'fallback')),
    model_version     text
);
CREATE INDEX show_forecasts_flag_idx ON show_forecasts (flag) WHERE flag IS NOT NULL;

CREATE TABLE forecast_snapshots (
    show_id        bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    horizon_h      integer NOT NULL CHECK (horizon_h > 0),
    made_at        timestamptz NOT NULL,
    starts_at      timestamptz NOT NULL,
    capacity       integer NOT NULL,
    seats          real NOT NULL,
    seats_lo       real NOT NULL,
    seats_hi       real NOT NULL,
    naive_seats    real NOT NULL,
    source         text NOT NULL CHECK (source IN ('model', 'fallback')),
    model_version  text,
    actual_seats   integer,                         -- set once the show has started
    settled_at     timestamptz,
    PRIMARY KEY (show_id, horizon_h)
);
CREATE INDEX forecast_snapshots_open_idx ON forecast_snapshots (starts_at)
    WHERE actual_seats IS NULL;
CREATE INDEX forecast_snapshots_start_idx ON forecast_snapshots (starts_at);
