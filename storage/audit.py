"""The audit log (``audit_log``): append-only rows of who did what to what, when, and with what
outcome; every admin action and every access to personal data.

Rows are only ever inserted: Postgres refuses UPDATE, DELETE and TRUNCATE on the table (a
trigger, for its owner too). A row holds ids, never personal data: ``details`` takes ids and
counts only (numbers, booleans, identifier-like strings, flat lists of them), checked here
and again by a constraint in Postgres.

    await record(conn, AuditEntry("create_theater", actor_id=7, actor_role="admin",
                                  target_type="theater", target_id="12", status=201))
    page = await list_entries(conn, actor_id=7, limit=50)          # newest first
    more = await list_entries(conn, actor_id=7, after=page[-1].id, limit=50)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ROLES = ("customer", "theater_admin", "admin", "system")
MAX_PAGE = 500
ACTION = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")  # what a string in details may look like

Scalar = int | float | bool | str | None
Detail = Scalar | Sequence[Scalar]


@dataclass(frozen=True)
class AuditEntry:
    """One thing to record. ``actor_id`` None with role "system" when no user acted."""

    action: str
    actor_id: int | None = None
    actor_role: str = "system"
    target_type: str | None = None
    target_id: str | None = None
    subject_id: int | None = None
    method: str | None = None
    route: str | None = None
    status: int | None = None
    request_id: str | None = None
    details: Mapping[str, Detail] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """A stored row."""

    id: int
    at: dt.datetime
    entry: AuditEntry

    def public(self) -> dict[str, Any]:
        e = self.entry
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor_id": e.actor_id,
            "actor_role": e.actor_role,
            "action": e.action,
            "target_type": e.target_type,
            "target_id": e.target_id,
            "subject_id": e.subject_id,
            "method": e.method,
            "route": e.route,
            "status": e.status,
            "request_id": e.request_id,
            "details": dict(e.details),
        }


def _safe_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and TOKEN.match(value) is not None


def check_entry(entry: AuditEntry) -> None:
    """ValueError when ``entry`` could not be stored, or its details could carry more than
    ids and counts (the same rules as the table's constraints)."""
    if not ACTION.match(entry.action):
        raise ValueError(f"not an action name: {entry.action!r}")
    if entry.actor_role not in ROLES:
        raise ValueError(f"not a role: {entry.actor_role!r}")
    if entry.target_id is not None and not TOKEN.match(entry.target_id):
        raise ValueError("target_id must be an id")
    for key, value in entry.details.items():
        if not NAME.match(key):
            raise ValueError(f"not a details key: {key!r}")
        items = value if isinstance(value, list | tuple) else [value]
        if not all(_safe_value(item) for item in items):
            raise ValueError(f"details[{key!r}] must be ids or counts")


_INSERT = """
    INSERT INTO audit_log (actor_id, actor_role, action, target_type, target_id, subject_id,
                           method, route, status, request_id, details)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""


def _args(entry: AuditEntry) -> tuple[Any, ...]:
    check_entry(entry)
    details = {k: list(v) if isinstance(v, list | tuple) else v for k, v in entry.details.items()}
    return (
        entry.actor_id,
        entry.actor_role,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.subject_id,
        entry.method,
        entry.route,
        entry.status,
        entry.request_id,
        details,
    )


async def record(conn: Any, entry: AuditEntry) -> int:
    """Append one row; returns its id."""
    found: int = await conn.fetchval(_INSERT + " RETURNING id", *_args(entry))
    return found


async def record_many(conn: Any, entries: Sequence[AuditEntry]) -> None:
    """Append rows in one round trip (all or none: in one transaction)."""
    if not entries:
        return
    rows = [_args(e) for e in entries]
    async with conn.transaction():
        await conn.executemany(_INSERT, rows)


@dataclass(frozen=True)
class AuditFilters:
    """What ``list_entries`` narrows to; None: any. ``since`` inclusive, ``until`` exclusive."""

    actor_id: int | None = None
    subject_id: int | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


_WHERE = (
    ("actor_id", "actor_id = ${}"),
    ("subject_id", "subject_id = ${}"),
    ("action", "action = ${}"),
    ("target_type", "target_type = ${}"),
    ("target_id", "target_id = ${}"),
    ("since", "at >= ${}"),
    ("until", "at < ${}"),
)


async def list_entries(
    conn: Any,
    filters: AuditFilters = AuditFilters(),
    *,
    after: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Rows matching ``filters``, newest first, those older than row ``after`` (the last id of
    the previous page) when given; at most ``limit`` (1 to ``MAX_PAGE``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}")
    clauses: list[str] = []
    args: list[Any] = []
    for name, clause in _WHERE:
        value = getattr(filters, name)
        if value is not None:
            args.append(value)
            clauses.append(clause.format(len(args)))
    if after is not None:
        args.append(after)
        clauses.append(f"id < ${len(args)}")
    args.append(limit)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await conn.fetch(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ${len(args)}", *args
    )
    return [_record(r) for r in rows]


def _details(raw: Any) -> dict[str, Detail]:
    """The details as a dict, from a connection with or without a jsonb codec."""
    found = json.loads(raw) if isinstance(raw, str) else raw
    return found if isinstance(found, dict) else {}


def _record(row: Any) -> AuditRecord:
    entry = AuditEntry(
        action=row["action"],
        actor_id=row["actor_id"],
        actor_role=row["actor_role"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        subject_id=row["subject_id"],
        method=row["method"],
        route=row["route"],
        status=row["status"],
        request_id=row["request_id"],
        details=_details(row["details"]),
    )
    return AuditRecord(row["id"], row["at"], entry)


__all__ = [
    "MAX_PAGE",
    "ROLES",
    "AuditEntry",
    "AuditFilters",
    "AuditRecord",
    "check_entry",
    "list_entries",
    "record",
    "record_many",
]
