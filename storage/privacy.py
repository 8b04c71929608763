"""Personal data: every table that holds rows about a user, what an export shows of them, and
what deleting the account does to them.

``REGISTRY`` is the one list. Each ``Relation`` names a table, how its rows relate to a user
(``where``: SQL over the alias ``t``, ``$1`` the user id; a join when the table has no user
column, e.g. ``booking_seats`` through ``bookings``), the columns holding a user id (a test
compares them with the schema: a new table that refers to users must be added here), the
columns an export leaves out (secrets, other people's ids), and what deletion does:

- ``erase``: the rows go (refresh tokens, preferences, devices, …);
- ``anonymize``: the rows stay, their personal fields blanked (``blank``: column → SQL value).
  Bookings, holds and payments keep only ids, amounts and times: the theater's figures and the
  books stay right, and the user id points at an account that holds nothing any more;
- ``keep``: rows that hold no personal field by design (ids, counts, the append-only audit
  log) stay as they are.

The account itself (``users``) is not in the registry: ``storage.privacy_ops`` exports it
with its email and phone opened, and erases its personal fields last.

    >>> [r.table for r in REGISTRY if r.on_delete == "erase"]
    ['refresh_tokens', 'idempotency_keys', 'notification_prefs', 'push_devices', ...]
    >>> await unregistered_columns(conn)      # a table that refers to users, not listed here
    [('wishlists', 'user_id')]
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["erase", "anonymize", "keep"]


@dataclass(frozen=True)
class Relation:
    """One table's rows about a user (see the module's docstring)."""

    table: str
    where: str
    on_delete: Action
    user_columns: tuple[str, ...] = ()
    blank: Mapping[str, str] = field(default_factory=dict)
    omit: tuple[str, ...] = ()  # columns an export leaves out
    columns: tuple[str, ...] = ()  # the only columns exported (when the rows are others' too)
    order: str = ""
    section: str = ""  # the export's name for these rows (the table's by default)
    why: str = ""

    @property
    def name(self) -> str:
        return self.section or self.table


_MY_BOOKINGS = "(SELECT b.booking_id FROM bookings b WHERE b.user_id = $1)"
_MY_PAYMENTS = "(SELECT p.payment_id FROM payments p WHERE p.user_id = $1)"
_MY_DECISIONS = "(SELECT d.id FROM fraud_decisions d WHERE d.user_id = $1)"
_MY_OUTBOX = "(t.payload ->> 'user_id') = $1::bigint::text"

REGISTRY: tuple[Relation, ...] = (
    # -- erased ---------------------------------------------------------------------------
    Relation(
        "refresh_tokens",
        "t.user_id = $1",
        "erase",
        user_columns=("user_id",),
        omit=("token_hash",),
        order="t.created_at",
        why="sessions: nothing to keep once the account is gone",
    ),
    Relation(
        "idempotency_keys",
        "t.user_id = $1",
        "erase",
        user_columns=("user_id",),
        order="t.created_at",
        why="stored answers may quote the account (its email, say)",
    ),
    Relation(
        "notification_prefs",
        "t.user_id = $1",
        "erase",
        user_columns=("user_id",),
        order="t.kind, t.channel",
        why="the user's wishes: nothing to send to any more",
    ),
    Relation(
        "push_devices",
        "t.user_id = $1",
        "erase",
        user_columns=("user_id",),
        order="t.id",
        why="a device's push token is personal",
    ),
    Relation(
        "theater_admins",
        "t.user_id = $1",
        "erase",
        user_columns=("user_id",),
        order="t.theater_id",
        why="a staff grant of the account",
    ),
    # -- anonymized: the books and the figures stay --------------------------------------
    Relation(
        "holds",
        "t.user_id = $1",
        "keep",
        user_columns=("user_id",),
        order="t.created_at, t.hold_id",
        why="seats, prices and times only",
    ),
    Relation(
        "bookings",
        "t.user_id = $1",
        "keep",
        user_columns=("user_id",),
        order="t.confirmed_at, t.booking_id",
        why="seats, prices and times only: the theater's figures count them",
    ),
    Relation(
        "booking_seats",
        f"t.booking_id IN {_MY_BOOKINGS}",
        "keep",
        order="t.booking_id, t.seat",
        why="the seats of the user's bookings",
    ),
    Relation(
        "payments",
        "t.user_id = $1",
        "anonymize",
        user_columns=("user_id",),
        blank={"client_secret": "NULL", "last_error": "NULL"},
        omit=("client_secret",),
        order="t.created_at, t.payment_id",
        why="amounts stay for the books; the card's decline code and the secret go",
    ),
    Relation(
        "refunds",
        f"t.payment_id IN {_MY_PAYMENTS}",
        "anonymize",
        blank={"last_error": "NULL"},
        order="t.created_at, t.refund_id",
        why="amounts stay for the books",
    ),
    Relation(
        "payment_steps",
        f"t.payment_id IN {_MY_PAYMENTS}",
        "keep",
        order="t.id",
        why="the saga's steps: states and codes",
    ),
    Relation(
        "fraud_decisions",
        "t.user_id = $1",
        "keep",
        user_columns=("user_id",),
        order="t.id",
        why="counts, a score and reasons; no address, device or card",
    ),
    Relation(
        "fraud_labels",
        f"t.decision_id IN {_MY_DECISIONS}",
        "anonymize",
        user_columns=("analyst_id",),
        blank={"note": "''"},
        omit=("analyst_id", "note"),
        order="t.decision_id",
        why="an analyst's verdict stays for training; their note about the user goes",
    ),
    Relation(
        "fraud_labels",
        "t.analyst_id = $1",
        "keep",
        columns=("decision_id", "is_fraud", "labelled_at"),
        section="fraud_labels_given",
        why="verdicts the user gave as an analyst (the customers' notes are theirs)",
    ),
    Relation(
        "outbox",
        _MY_OUTBOX,
        "anonymize",
        blank={"last_error": "NULL"},
        order="t.id",
        why="events about the user: ids, seats and prices (one not fanned out yet finds the "
        "account gone and goes to nobody)",
    ),
    Relation(
        "notification_deliveries",
        "t.user_id = $1",
        "anonymize",
        user_columns=("user_id",),
        blank={
            "failed_at": "CASE WHEN t.sent_at IS NULL THEN coalesce(t.failed_at, now()) "
            "ELSE t.failed_at END",
            "dropped": "t.dropped OR (t.sent_at IS NULL AND t.failed_at IS NULL)",
            "last_error": "NULL",
        },
        order="t.id",
        why="what was sent when stays; unsent ones are dropped, errors (which may quote an "
        "address) go",
    ),
    Relation(
        "experiment_exposures",
        "t.user_id = $1",
        "keep",
        user_columns=("user_id",),
        order="t.experiment",
        why="the arm shown: the experiment's results count it",
    ),
    Relation(
        "rec_impressions",
        "t.user_id = $1",
        "keep",
        user_columns=("user_id",),
        order="t.hour, t.movie_id, t.source",
        why="recommendations shown and clicked: counts",
    ),
    Relation(
        "chat_usage",
        "t.user_id = $1",
        "anonymize",
        user_columns=("user_id",),
        blank={"user_id": "NULL"},
        order="t.updated_at, t.conversation_id, t.model",
        why="token counts stay for the costs, as a visitor's",
    ),
    Relation(
        "chat_handoffs",
        "t.user_id = $1",
        "anonymize",
        user_columns=("user_id", "taken_by"),
        blank={
            "user_id": "NULL",
            "transcript": "'[]'::jsonb",
            "status": "'closed'",
            "closed_at": "coalesce(t.closed_at, now())",
        },
        omit=("taken_by",),
        order="t.id",
        why="what the user wrote goes; the queue's times stay",
    ),
    Relation(
        "chat_handoffs",
        "t.taken_by = $1",
        "keep",
        columns=("id", "status", "taken_at", "answered_at", "closed_at"),
        section="chat_handoffs_taken",
        why="conversations the user answered as staff (the transcripts are the customers')",
    ),
    # -- the audit log: append-only, ids only ---------------------------------------------
    Relation(
        "audit_log",
        "t.actor_id = $1",
        "keep",
        user_columns=("actor_id", "subject_id"),
        order="t.id",
        why="what the user did that was audited; never changed (Postgres refuses it)",
    ),
    Relation(
        "audit_log",
        "t.subject_id = $1 AND t.actor_id IS DISTINCT FROM $1",
        "keep",
        columns=("id", "at", "actor_role", "action", "target_type", "target_id", "status"),
        section="audit_log_about_me",
        why="who (by role) read or changed the user's data",
    ),
    # -- staff actions: ids only -----------------------------------------------------------
    Relation(
        "flash_sales",
        "t.updated_by = $1",
        "keep",
        user_columns=("updated_by",),
        order="t.show_id",
        why="sale terms the user set as staff",
    ),
    Relation(
        "experiments",
        "t.stopped_by = $1",
        "keep",
        user_columns=("stopped_by",),
        order="t.name",
        why="experiments the user stopped as staff",
    ),
    Relation(
        "alerts",
        "t.acked_by = $1",
        "keep",
        user_columns=("acked_by",),
        order="t.id",
        why="alerts the user acknowledged as staff",
    ),
)


def relations() -> tuple[Relation, ...]:
    """The registry (a function, so a caller may be handed a narrower one in tests)."""
    return REGISTRY


def plain(value: Any) -> Any:
    """A database value as JSON: ids and instants as text, bytes as base64."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


# Column names that hold a user's id (besides foreign keys to users), and names that hold
# personal data: a table with either must be in the registry.
USER_REFERENCE = re.compile(
    r"^(user_id|.+_user_id|owner|owner_id|customer|customer_id|.+_by|analyst_id|actor_id"
    r"|subject_id|recipient|recipient_id)$"
)
PERSONAL_NAME = re.compile(r"email|phone|token|transcript|password")


async def unregistered_columns(conn: Any) -> list[tuple[str, str]]:
    """(table, column) pairs of this schema the registry does not account for: columns that
    refer to a user (a foreign key to ``users`` or a name like ``user_id``, ``*_by``) but are
    not a relation's ``user_columns``, and personal-looking columns (email, phone, token, …)
    of tables the registry does not list. An empty list is the registry being complete."""
    rows = await conn.fetch(
        """SELECT c.relname AS table_name, a.attname AS column_name,
                  EXISTS (SELECT FROM pg_constraint k
                          WHERE k.conrelid = c.oid AND k.contype = 'f'
                            AND k.confrelid = 'users'::regclass
                            AND a.attnum = ANY (k.conkey)) AS refers
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
           WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
             AND c.relname <> 'users'
           ORDER BY 1, 2"""
    )
    known = {(r.table, c) for r in relations() for c in r.user_columns}
    tables = {r.table for r in relations()}
    missing = []
    for row in rows:
        table, column = row["table_name"], row["column_name"]
        refers = row["refers"] or USER_REFERENCE.match(column)
        unknown_reference = refers and (table, column) not in known
        unknown_personal = PERSONAL_NAME.search(column) and table not in tables
        if unknown_reference or unknown_personal:
            missing.append((table, column))
    return missing


__all__ = [
    "PERSONAL_NAME",
    "REGISTRY",
    "USER_REFERENCE",
    "Action",
    "Relation",
    "plain",
    "relations",
    "unregistered_columns",
]
