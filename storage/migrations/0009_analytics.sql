-- Business figures: one rollup row per show (the figures' grain), kept current incrementally.
-- Writes to the tables a show's figures come from append the show's id to show_stats_dirty
-- (statement-level triggers over transition tables: one cheap INSERT per statement, no unique
-- check, so concurrent write-behind flushes never wait on each other there); a periodic job
-- recomputes the dirty shows in chunks (storage.analytics.refresh_chunk).

CREATE TABLE show_stats (
    show_id            bigint PRIMARY KEY REFERENCES shows (id),
    theater_id         bigint NOT NULL,
    city_id            bigint NOT NULL,
    movie_id           bigint NOT NULL,
    local_date         date NOT NULL,                 -- the show's day at its theater
    starts_at          timestamptz NOT NULL,
    status             text NOT NULL,                 -- the show's status (cancelled: no capacity)
    capacity           integer NOT NULL,              -- sellable seats: the screen's less blocked
    currency           text NOT NULL,
    tickets            integer NOT NULL DEFAULT 0,    -- seats of live (confirmed) bookings
    bookings           integer NOT NULL DEFAULT 0,    -- live bookings
    revenue_cents      bigint NOT NULL DEFAULT 0,     -- gross, of live bookings
    cancellations      integer NOT NULL DEFAULT 0,    -- bookings cancelled
    cancelled_tickets  integer NOT NULL DEFAULT 0,
    refunds            integer NOT NULL DEFAULT 0,    -- refunds the provider paid out
    refunded_cents     bigint NOT NULL DEFAULT 0,
    holds              integer NOT NULL DEFAULT 0,    -- holds ever taken
    checkouts          integer NOT NULL DEFAULT 0,    -- holds with a payment attempt
    seatmap_views      bigint NOT NULL DEFAULT 0,     -- seat-map reads and websocket connects
    queue_admissions   bigint NOT NULL DEFAULT 0,     -- waiting-room admissions
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX show_stats_theater_day_idx ON show_stats (theater_id, local_date);
CREATE INDEX show_stats_city_day_idx ON show_stats (city_id, local_date);
CREATE INDEX show_stats_movie_day_idx ON show_stats (movie_id, local_date);
CREATE INDEX show_stats_day_idx ON show_stats (local_date);

-- Funnel steps the gateways count in memory and add up here (every few seconds).
CREATE TABLE show_funnel (
    show_id           bigint PRIMARY KEY REFERENCES shows (id),
    seatmap_views     bigint NOT NULL DEFAULT 0,
    queue_admissions  bigint NOT NULL DEFAULT 0
);

-- Shows whose rollup row is out of date: an append-only log (duplicates welcome).
CREATE TABLE show_stats_dirty (
    show_id  bigint NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX show_stats_dirty_show_idx ON show_stats_dirty (show_id);

-- What the rollup reads per show: without these, each chunk would scan holds and payments.
CREATE INDEX holds_show_idx ON holds (show_id);
CREATE INDEX payments_show_idx ON payments (show_id);

CREATE FUNCTION show_stats_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO show_stats_dirty (show_id) SELECT DISTINCT show_id FROM changed;
    RETURN NULL;
END
$$;

CREATE FUNCTION show_stats_mark_shows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO show_stats_dirty (show_id) SELECT id FROM changed;
    RETURN NULL;
END
$$;

-- The write-behind bumps shows.seat_version on every flush: only changes the figures read count.
CREATE FUNCTION show_stats_mark_show_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO show_stats_dirty (show_id)
    SELECT n.id FROM changed n JOIN before o ON o.id = n.id
    WHERE (n.screen_id, n.movie_id, n.starts_at, n.status, n.currency)
          IS DISTINCT FROM (o.screen_id, o.movie_id, o.starts_at, o.status, o.currency);
    RETURN NULL;
END
$$;

CREATE FUNCTION show_stats_mark_refunds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO show_stats_dirty (show_id)
    SELECT DISTINCT p.show_id FROM changed c JOIN payments p ON p.payment_id = c.payment_id;
    RETURN NULL;
END
$$;

-- A new layout changes the capacity of the screen's shows to come (past shows keep theirs).
CREATE FUNCTION show_stats_mark_screens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO show_stats_dirty (show_id)
    SELECT s.id FROM changed c JOIN shows s ON s.screen_id = c.id WHERE s.starts_at > now();
    RETURN NULL;
END
$$;
CREATE TRIGGER screens_stats_upd AFTER UPDATE ON screens REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION show_stats_mark_screens();

-- One trigger per table and event: a trigger with transition tables takes a single event.
DO $$
DECLARE
    source text;
    fn text;
BEGIN
    FOREACH source IN ARRAY ARRAY['bookings', 'holds', 'payments', 'refunds', 'shows',
                                  'show_blocked_seats', 'show_funnel'] LOOP
        fn := CASE source WHEN 'shows' THEN 'show_stats_mark_shows'
                          WHEN 'refunds' THEN 'show_stats_mark_refunds'
                          ELSE 'show_stats_mark' END;
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I()', source || '_stats_ins',
                       source, fn);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS before '
                       'NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION %I()',
                       source || '_stats_upd', source,
                       CASE source WHEN 'shows' THEN 'show_stats_mark_show_changes' ELSE fn END);
        IF source IN ('show_blocked_seats', 'bookings', 'holds') THEN
            EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS '
                           'changed FOR EACH STATEMENT EXECUTE FUNCTION %I()',
                           source || '_stats_del', source, fn);
        END IF;
    END LOOP;
END
$$;

-- Shows that exist already (an upgraded database) get their first rollup.
INSERT INTO show_stats_dirty (show_id) SELECT id FROM shows;
