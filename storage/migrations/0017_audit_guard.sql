-- The audit log's guard. 0015's trigger stops UPDATE, DELETE and TRUNCATE, but the table's owner
-- could still disable or drop that trigger, drop or alter the table, replace the trigger
-- functions, or grant around them. From here Postgres refuses all of that, the owner included.
--
-- 1. Privileges (any role): nobody but the owner holds TRUNCATE, UPDATE, DELETE, REFERENCES or
--    TRIGGER on audit_log.
-- 2. The seal (any role): the table's comment says it is guarded. The guard protects exactly the
--    sealed tables, so it never stands in the way of a schema's own migrations up to here.
-- 3. The guard (a superuser, once per database): the function
--    seatserver_audit_guard.audit_log_guard(), run by two event triggers,
--    seatserver_audit_log_guard (ddl_command_end) and seatserver_audit_log_drop_guard (sql_drop).
--    It refuses any DDL command that
--      - alters, renames, moves, re-owns, re-comments or drops a sealed audit_log, one of its
--        columns, constraints, triggers, rules or policies, or its id sequence,
--      - creates a trigger, rule or policy on it, or a table inheriting from it,
--      - replaces, alters or drops a function its triggers or constraints call,
--      - grants one of the privileges above on it to another role.
--    Indexes stay free (they change no row), and so does dropping the whole schema (an operator
--    tearing down, the tests).
--
-- One guard for the database, not one per schema: event triggers are database-wide, and a
-- guard dropped with its schema while another session runs DDL makes that session fail
-- ("cache lookup failed for function"): the session's list of event triggers is older than the
-- catalog it reads the function from. So the guard lives in a schema of its own, owned by the
-- superuser who created it, and is never dropped with an application schema; dropping a schema
-- leaves nothing of that schema behind. Two processes migrating two schemas at once serialize on
-- an advisory lock to create it, and the second finds it made.
--
-- The function reads only pg_catalog (the roles that run DDL elsewhere need no privilege on our
-- schemas) and is owned by a superuser: event trigger functions run as whoever runs the DDL, a
-- superuser included, so a function the application's role could replace would be a way up.
-- Without a superuser the guard is skipped with a NOTICE; the README says how an operator adds it
-- (rerun this file as a superuser, search_path set to the schema).

DO $do$
DECLARE
    grantee text;
BEGIN
    REVOKE TRUNCATE, UPDATE, DELETE, REFERENCES, TRIGGER ON audit_log FROM PUBLIC;
    FOR grantee IN
        SELECT DISTINCT quote_ident(r.rolname)
        FROM pg_catalog.pg_class c
        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
        JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
        WHERE c.oid = 'audit_log'::regclass
          AND a.grantee <> c.relowner
          AND a.privilege_type IN ('TRUNCATE', 'UPDATE', 'DELETE', 'REFERENCES', 'TRIGGER')
    LOOP
        EXECUTE format(
            'REVOKE TRUNCATE, UPDATE, DELETE, REFERENCES, TRIGGER ON audit_log FROM %s', grantee);
    END LOOP;
END
$do$;

COMMENT ON TABLE audit_log IS
    'append-only, sealed: the seatserver_audit_log_guard event triggers refuse DDL on it';

DO $do$
DECLARE
    -- The guard, made (or brought to this text) once per database.
    body CONSTANT text := $body$
DECLARE
    seal CONSTANT text :=
        'append-only, sealed: the seatserver_audit_log_guard event triggers refuse DDL on it';
    culprit text;
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        -- The log's own parts, unless their whole schema goes: while the table stays, it is
        -- known sealed by its comment; a dropped table by its dropped append-only trigger.
        SELECT d.object_type || ' ' || d.object_identity INTO culprit
        FROM pg_event_trigger_dropped_objects() AS d
        WHERE d.object_type IN ('table', 'trigger', 'rule', 'policy', 'table column',
                                'table constraint', 'default value')
          AND d.address_names[2] = 'audit_log'
          AND NOT EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS s
                          WHERE s.object_type = 'schema' AND s.object_name = d.address_names[1])
          AND (EXISTS (SELECT FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       JOIN pg_description m ON m.objoid = c.oid
                            AND m.classoid = 'pg_class'::regclass AND m.objsubid = 0
                       WHERE n.nspname = d.address_names[1] AND c.relname = 'audit_log'
                         AND m.description = seal)
               OR EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS t
                          WHERE t.object_type = 'trigger'
                            AND t.address_names = ARRAY[d.address_names[1], 'audit_log',
                                                        'audit_log_append_only']))
        LIMIT 1;
    ELSE
        WITH sealed AS (
            SELECT m.objoid AS oid FROM pg_description m
            WHERE m.classoid = 'pg_class'::regclass AND m.objsubid = 0 AND m.description = seal
        ), touched AS (
            SELECT d.*, CASE
                WHEN d.classid = 'pg_class'::regclass THEN (
                    SELECT s.oid FROM sealed s
                    WHERE s.oid = d.objid
                       OR s.oid IN (SELECT i.inhparent FROM pg_inherits i
                                    WHERE i.inhrelid = d.objid)
                       OR (d.object_type = 'sequence'
                           AND s.oid IN (SELECT p.refobjid FROM pg_depend p
                                         WHERE p.classid = 'pg_class'::regclass
                                           AND p.objid = d.objid AND p.deptype IN ('a', 'i'))))
                WHEN d.classid = 'pg_trigger'::regclass THEN
                    (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = d.objid)
                WHEN d.classid = 'pg_rewrite'::regclass THEN
                    (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = d.objid)
                WHEN d.classid = 'pg_policy'::regclass THEN
                    (SELECT p.polrelid FROM pg_policy p WHERE p.oid = d.objid)
                WHEN d.classid = 'pg_proc'::regclass THEN (
                    SELECT s.oid FROM sealed s
                    WHERE s.oid IN (SELECT t.tgrelid FROM pg_trigger t WHERE t.tgfoid = d.objid)
                       OR s.oid IN (SELECT c.conrelid FROM pg_constraint c
                                    JOIN pg_depend p ON p.objid = c.oid
                                         AND p.classid = 'pg_constraint'::regclass
                                    WHERE p.refclassid = 'pg_proc'::regclass
                                      AND p.refobjid = d.objid))
            END AS log
            FROM pg_event_trigger_ddl_commands() AS d
        )
        SELECT t.object_type || ' ' || coalesce(t.object_identity, '?') INTO culprit
        FROM touched t
        WHERE CASE WHEN t.command_tag = 'COMMENT' AND t.classid = 'pg_class'::regclass
                   -- a comment on the log may seal it, never unseal it
                   THEN t.objid NOT IN (SELECT oid FROM sealed)
                        AND EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = t.objid
                                    AND g.tgname = 'audit_log_append_only')
                   ELSE t.log IN (SELECT oid FROM sealed) END
        LIMIT 1;
        IF culprit IS NULL
           AND EXISTS (SELECT FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'GRANT')
        THEN
            SELECT 'table ' || c.oid::regclass::text INTO culprit
            FROM pg_description m
            JOIN pg_class c ON c.oid = m.objoid
            CROSS JOIN LATERAL aclexplode(c.relacl) AS a
            WHERE m.classoid = 'pg_class'::regclass AND m.objsubid = 0 AND m.description = seal
              AND a.grantee <> c.relowner
              AND a.privilege_type IN ('TRUNCATE', 'UPDATE', 'DELETE', 'REFERENCES', 'TRIGGER')
            LIMIT 1;
        END IF;
    END IF;
    IF culprit IS NOT NULL THEN
        RAISE EXCEPTION 'audit_log is append-only: % is refused (%)', TG_TAG, culprit
            USING HINT = 'the audit log, its parts and its functions are never altered or '
                         'dropped (only its whole schema); for a planned change a superuser '
                         'disables the seatserver_audit_log_guard event triggers meanwhile';
    END IF;
END
$body$;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        IF (SELECT count(*) FROM pg_catalog.pg_event_trigger
            WHERE evtname IN ('seatserver_audit_log_guard', 'seatserver_audit_log_drop_guard')
              AND evtenabled <> 'D') < 2 THEN
            RAISE NOTICE 'audit_log guard skipped: % is not a superuser', current_user
                USING HINT = 'rerun storage/migrations/0017_audit_guard.sql as a superuser '
                             'with search_path = ' || quote_ident(current_schema())
                             || ' (see the README, "Audit log")';
        END IF;
        RETURN;
    END IF;
    -- Two processes migrating two schemas at once: the second waits, then finds it all made.
    PERFORM pg_catalog.pg_advisory_xact_lock(hashtext('seatserver_audit_log_guard'));
    CREATE SCHEMA IF NOT EXISTS seatserver_audit_guard;
    IF (SELECT prosrc FROM pg_catalog.pg_proc
        WHERE oid = to_regprocedure('seatserver_audit_guard.audit_log_guard()'))
       IS DISTINCT FROM body THEN
        EXECUTE 'CREATE OR REPLACE FUNCTION seatserver_audit_guard.audit_log_guard() '
                'RETURNS event_trigger LANGUAGE plpgsql '
                'SET search_path = pg_catalog, pg_temp AS ' || quote_literal(body);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger
                   WHERE evtname = 'seatserver_audit_log_guard') THEN
        CREATE EVENT TRIGGER seatserver_audit_log_guard ON ddl_command_end
            EXECUTE FUNCTION seatserver_audit_guard.audit_log_guard();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger
                   WHERE evtname = 'seatserver_audit_log_drop_guard') THEN
        CREATE EVENT TRIGGER seatserver_audit_log_drop_guard ON sql_drop
            EXECUTE FUNCTION seatserver_audit_guard.audit_log_guard();
    END IF;
END
$do$;
