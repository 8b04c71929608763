-- The audit log: every admin action and every access to personal data, who, what and when.
-- Append-only, enforced here: a statement-level trigger refuses UPDATE, DELETE and TRUNCATE
-- for every role, the table's owner included (ENABLE ALWAYS: also under
-- session_replication_role = replica). No foreign key to users: rows outlive the accounts they
-- name, and they hold no personal field, only ids (details: ids and counts, checked below).
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),  -- set by Postgres on insert
    actor_id     bigint,                          -- the user who acted; NULL: the system
    actor_role   text NOT NULL
                 CHECK (actor_role IN ('customer', 'theater_admin', 'admin', 'system')),
    action       text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
    target_type  text CHECK (target_type ~ '^[a-z][a-z0-9_]{0,31}$'),
    target_id    text CHECK (target_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    subject_id   bigint,                          -- whose personal data; NULL: nobody's
    method       text CHECK (method ~ '^[A-Z]{3,7}$'),
    route        text CHECK (length(route) <= 200),  -- the route template, never a raw path
    status       smallint CHECK (status BETWEEN 100 AND 599),  -- the outcome answered
    request_id   text CHECK (request_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    details      jsonb NOT NULL DEFAULT '{}'
);

-- Details carry ids and counts only: an object whose keys are names and whose values are
-- numbers, booleans, nulls, short identifier-like strings (no spaces, no '@', no '+'), or flat
-- arrays of those. Free text, emails and phone numbers cannot get in.
CREATE FUNCTION audit_details_ok(d jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_typeof(d) = 'object'
       AND octet_length(d::text) <= 4000
       AND NOT EXISTS (
           SELECT 1
           FROM jsonb_each(d) AS e(key, value)
           LEFT JOIN LATERAL (
               SELECT v FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(e.value) = 'array' THEN e.value ELSE '[]' END) AS a(v)
           ) AS items ON true
           WHERE e.key !~ '^[a-z][a-z0-9_]{0,63}$'
              OR jsonb_typeof(e.value) = 'object'
              OR (jsonb_typeof(e.value) = 'string'
                  AND (e.value #>> '{}') !~ '^[A-Za-z0-9_.:-]{0,64}$')
              OR (items.v IS NOT NULL AND (
                     jsonb_typeof(items.v) IN ('object', 'array')
                  OR (jsonb_typeof(items.v) = 'string'
                      AND (items.v #>> '{}') !~ '^[A-Za-z0-9_.:-]{0,64}$')))
       )
$$;

ALTER TABLE audit_log ADD CONSTRAINT audit_log_details_ok CHECK (audit_details_ok(details));

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP
        USING HINT = 'audit rows are written once and never changed or removed';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;

-- A row is dated by Postgres as it is written: no back-dated entries.
CREATE FUNCTION audit_log_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_stamped
    BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_stamp();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_stamped;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- The read API: newest first (keyset on id), by time range, actor, subject, action, target.
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_subject_idx ON audit_log (subject_id, id) WHERE subject_id IS NOT NULL;
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, id);
