-- Periodic jobs that any gateway may run (rollups, forecasts, experiment results, model
-- monitoring): a lease per job, so that with many gateways each run happens once per interval.
CREATE TABLE jobs (
    name              text PRIMARY KEY CHECK (name <> ''),
    lease_until       timestamptz NOT NULL DEFAULT '-infinity',
    last_started_at   timestamptz,
    last_finished_at  timestamptz,
    last_error        text,
    runs              bigint NOT NULL DEFAULT 0,
    failures          bigint NOT NULL DEFAULT 0
);
