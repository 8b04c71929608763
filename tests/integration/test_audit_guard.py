"""The audit log's guard (migration 0017): DDL that would alter, drop, disable or work around the
log is refused by Postgres for its owner too and changes nothing; indexes stay free; dropping the
whole schema still works and leaves nothing of the schema behind; two schemas migrate at once;
and a role that is not a superuser still migrates, is told so, and is guarded once an operator
reruns the migration as a superuser."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import storage
from storage import audit as store
from tests.conftest import random_ref

GUARD_FILE = Path(storage.__file__).parent / "migrations" / "0017_audit_guard.sql"
GUARD_TRIGGERS = {"seatserver_audit_log_guard", "seatserver_audit_log_drop_guard"}
REFUSED = r"audit_log is append-only: .+ is refused"

# As the table's owner, each of these is refused.
ATTEMPTS = {
    "disable_trigger": "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "disable_all": "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "replica_only": "ALTER TABLE audit_log ENABLE REPLICA TRIGGER audit_log_append_only",
    "drop_trigger": "DROP TRIGGER audit_log_append_only ON audit_log",
    "drop_table": "DROP TABLE audit_log",
    "drop_table_cascade": "DROP TABLE audit_log CASCADE",
    "add_column": "ALTER TABLE audit_log ADD COLUMN note text",
    "drop_column": "ALTER TABLE audit_log DROP COLUMN details",
    "rename": "ALTER TABLE audit_log RENAME TO audit_log_old",
    "rename_column": "ALTER TABLE audit_log RENAME COLUMN status TO outcome",
    "drop_check": "ALTER TABLE audit_log DROP CONSTRAINT audit_log_details_ok",
    "add_check": "ALTER TABLE audit_log ADD CONSTRAINT no_rows CHECK (false) NOT VALID",
    "rename_trigger": "ALTER TRIGGER audit_log_append_only ON audit_log RENAME TO gone",
    "new_trigger": "CREATE TRIGGER skip BEFORE INSERT ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_stamp()",
    "rule": "CREATE RULE drop_rows AS ON INSERT TO audit_log DO INSTEAD NOTHING",
    "replace_function": "CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    "drop_function": "DROP FUNCTION audit_log_stamp() CASCADE",
    "drop_check_function": "DROP FUNCTION audit_details_ok(jsonb) CASCADE",
    "unseal": "COMMENT ON TABLE audit_log IS NULL",
    "inherit": "CREATE TABLE forged () INHERITS (audit_log)",
    "grant": "GRANT UPDATE, DELETE ON audit_log TO pg_monitor",
    "owner": "ALTER TABLE audit_log OWNER TO pg_monitor",
    "sequence": "ALTER SEQUENCE audit_log_id_seq RESTART WITH 1",
}


@contextlib.asynccontextmanager
async def connection(database_url: str, schema: str) -> AsyncIterator[Any]:
    conn = await storage.connect(database_url, schema=schema)
    try:
        yield conn
    finally:
        await conn.close()


async def state(conn: Any) -> dict[str, Any]:
    """What the guard keeps: the rows, the columns, the triggers and their state, the seal."""
    return {
        "rows": await conn.fetch("SELECT id, action FROM audit_log ORDER BY id"),
        "columns": await conn.fetch(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = 'audit_log'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        "triggers": await conn.fetch(
            "SELECT tgname, tgenabled, tgfoid::regproc::text FROM pg_trigger "
            "WHERE tgrelid = 'audit_log'::regclass ORDER BY tgname"
        ),
        "checks": await conn.fetch(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'audit_log'::regclass "
            "ORDER BY conname"
        ),
        "seal": await conn.fetchval("SELECT obj_description('audit_log'::regclass, 'pg_class')"),
        "children": await conn.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass"
        ),
        "acl": await conn.fetchval(
            "SELECT relacl::text FROM pg_class WHERE oid = 'audit_log'::regclass"
        ),
    }


async def guard_triggers(conn: Any) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT evtname, evtfoid::regprocedure::text AS function FROM pg_event_trigger"
    )
    return {r["evtname"]: r["function"] for r in rows}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
async def test_ddl_on_the_log_is_refused_and_changes_nothing(
    database_url: str, schema: str, attempt: str
) -> None:
    async with connection(database_url, schema) as conn:
        owner = await conn.fetchval(
            "SELECT relowner::regrole::text = current_user FROM pg_class "
            "WHERE oid = 'audit_log'::regclass"
        )
        assert owner  # the table's own role: refused all the same
        await store.record(conn, store.AuditEntry("create_city", 1, "admin", status=201))
        before = await state(conn)
        with pytest.raises(asyncpg.RaiseError, match=REFUSED):
            await conn.execute(attempt)
        assert await state(conn) == before
        assert [(t["tgname"], t["tgenabled"]) for t in before["triggers"]] == [
            ("audit_log_append_only", b"A"),
            ("audit_log_stamped", b"A"),
        ]
        with pytest.raises(asyncpg.RaiseError, match="append-only: DELETE"):
            await conn.execute("DELETE FROM audit_log")


async def test_indexes_and_the_other_tables_stay_free(database_url: str, schema: str) -> None:
    async with connection(database_url, schema) as conn:
        await conn.execute("CREATE INDEX audit_log_status_idx ON audit_log (status)")
        await conn.execute("DROP INDEX audit_log_status_idx")
        await conn.execute("ALTER TABLE cities ADD COLUMN nickname text")
        await conn.execute("CREATE TABLE scratch (id int); DROP TABLE scratch")
        await conn.execute(
            "COMMENT ON TABLE audit_log IS "
            "'append-only, sealed: the seatserver_audit_log_guard event triggers refuse DDL on it'"
        )  # sealing again is no change


async def test_dropping_the_schema_drops_the_log_and_leaves_nothing_of_it(
    database_url: str,
) -> None:
    name = random_ref("g")
    admin = await storage.connect(database_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
        async with connection(database_url, name) as conn:
            await storage.migrate(conn)
            await store.record(conn, store.AuditEntry("create_city", 1, "admin", status=201))
        guards = await guard_triggers(admin)
        assert {n: guards[n] for n in GUARD_TRIGGERS} == dict.fromkeys(
            GUARD_TRIGGERS, "seatserver_audit_guard.audit_log_guard()"
        )
        await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        assert await admin.fetchval("SELECT to_regnamespace($1)", name) is None
        left = await admin.fetchval(
            "SELECT count(*) FROM pg_event_trigger e LEFT JOIN pg_proc p ON p.oid = e.evtfoid "
            "WHERE e.evtname LIKE '%' || $1 || '%' OR p.oid IS NULL",
            name,
        )
        assert left == 0  # no event trigger of this schema's, none left calling a lost function
        assert set(await guard_triggers(admin)) >= GUARD_TRIGGERS  # the database's guard stays
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


async def test_two_schemas_migrate_at_once(database_url: str) -> None:
    names = [random_ref("g"), random_ref("g")]
    admin = await storage.connect(database_url)
    try:
        for name in names:
            await admin.execute(f'CREATE SCHEMA "{name}"')

        async def migrate(name: str) -> list[int]:
            async with connection(database_url, name) as conn:
                return await storage.migrate(conn)

        applied = await asyncio.gather(*(migrate(n) for n in names))
        assert applied == [[m.version for m in storage.load_migrations()]] * 2
        for name in names:
            async with connection(database_url, name) as conn:
                with pytest.raises(asyncpg.RaiseError, match=REFUSED):
                    await conn.execute(ATTEMPTS["drop_trigger"])
        guards = await guard_triggers(admin)
        assert sum(1 for n in guards if "audit_log" in n) == len(GUARD_TRIGGERS)
    finally:
        for name in names:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


async def test_a_role_that_is_not_a_superuser_migrates_and_an_operator_adds_the_guard(
    database_url: str,
) -> None:
    """In a database of its own (the shared test database has its guard already): the migration
    applies with a NOTICE and no guard; rerun as a superuser it adds the guard, which the role
    can neither pass nor remove."""
    database, role, schema = random_ref("guard"), random_ref("app"), "app"
    admin = await storage.connect(database_url)
    url = database_url.rsplit("/", 1)[0] + "/" + database
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.execute(f'CREATE ROLE "{role}" NOLOGIN')
    try:
        setup = await storage.connect(url)
        await setup.execute(
            f'CREATE SCHEMA "{schema}"; GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"'
        )
        await setup.close()
        notices: list[str] = []
        async with connection(url, schema) as conn:
            conn.add_log_listener(lambda _, message: notices.append(message.message))
            await conn.execute(f'SET ROLE "{role}"')
            applied = await storage.migrate(conn)
            assert applied == [m.version for m in storage.load_migrations()]
            assert await guard_triggers(conn) == {}
            assert notices == [f"audit_log guard skipped: {role} is not a superuser"]
            await conn.execute("ALTER TABLE audit_log ADD COLUMN unguarded int")  # no guard yet
            await conn.execute("ALTER TABLE audit_log DROP COLUMN unguarded")

        async with connection(url, schema) as conn:  # the operator, a superuser, as the README says
            async with conn.transaction():
                await conn.execute(GUARD_FILE.read_text())
            assert set(await guard_triggers(conn)) == GUARD_TRIGGERS

        async with connection(url, schema) as conn:
            await conn.execute(f'SET ROLE "{role}"')
            await store.record(conn, store.AuditEntry("create_city", 1, "admin", status=201))
            for attempt in ("disable_trigger", "drop_table", "add_column", "rename", "unseal"):
                with pytest.raises(asyncpg.RaiseError, match=REFUSED):
                    await conn.execute(ATTEMPTS[attempt])
            for removal in (
                "DROP FUNCTION seatserver_audit_guard.audit_log_guard() CASCADE",
                "DROP EVENT TRIGGER seatserver_audit_log_guard",
                "ALTER EVENT TRIGGER seatserver_audit_log_guard DISABLE",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(removal)
            assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
