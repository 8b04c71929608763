"""Export and deletion of one user's data, driven by the registry (``storage.privacy``).

``export_rows`` reads every registry table's rows about the user, ``account_of`` the account
with its email and phone opened; ``delete_account`` refuses while ``deletion_blockers`` finds
anything in progress, else erases or anonymizes each registry table and then the account's own
personal fields, in one transaction.

    >>> rows = await export_rows(conn, user_id)          # {"bookings": [{...}], ...}
    >>> blockers = await deletion_blockers(conn, user_id)
    >>> done = await delete_account(conn, user_id)       # {"refresh_tokens": 3, ...}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.accounts import EMAIL, PHONE
from storage.crypto import Keyring
from storage.errors import NotFound
from storage.privacy import Relation, plain, relations

# Never a valid argon2 hash: no password verifies against it.
UNUSABLE_PASSWORD = "!deleted"


async def _tables(conn: Any) -> set[str]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')"""
    )
    return {r["relname"] for r in rows}


async def rows_of(conn: Any, relation: Relation, user_id: int) -> list[dict[str, Any]]:
    """The relation's rows about ``user_id`` as an export shows them."""
    chosen = ", ".join(f"t.{c}" for c in relation.columns) if relation.columns else "t.*"
    order = f" ORDER BY {relation.order}" if relation.order else ""
    rows = await conn.fetch(
        f"SELECT {chosen} FROM {relation.table} t WHERE {relation.where}{order}", user_id
    )
    return [{k: plain(v) for k, v in row.items() if k not in relation.omit} for row in rows]


async def export_rows(conn: Any, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every registry table's rows about ``user_id``, by section (a table this database does
    not have yet is left out)."""
    present = await _tables(conn)
    found: dict[str, list[dict[str, Any]]] = {}
    for relation in relations():
        if relation.table in present:
            found[relation.name] = await rows_of(conn, relation, user_id)
    return found


async def account_of(conn: Any, user_id: int, *, keyring: Keyring) -> dict[str, Any]:
    """The account as the user may see it: email and phone opened, no secrets."""
    row = await conn.fetchrow(
        """SELECT id, email_enc, email_plain, phone_enc, role, display_name, home_city_id,
                  favourite_genres, created_at
           FROM users WHERE id = $1 AND deleted_at IS NULL""",
        user_id,
    )
    if row is None:
        raise NotFound(f"no user {user_id}", {"user_id": user_id})
    sealed, phone = row["email_enc"], row["phone_enc"]
    return {
        "id": row["id"],
        "email": keyring.decrypt(sealed, field=EMAIL) if sealed is not None else row["email_plain"],
        "phone": None if phone is None else keyring.decrypt(phone, field=PHONE),
        "role": row["role"],
        "display_name": row["display_name"],
        "home_city_id": row["home_city_id"],
        "favourite_genres": list(row["favourite_genres"]),
        "created_at": plain(row["created_at"]),
    }


@dataclass(frozen=True)
class Blockers:
    """What keeps an account from being deleted now: live holds, payments in flight, and
    confirmed bookings of shows to come (cancel them first, or wait until they are over)."""

    holds: list[str]
    payments: list[str]
    bookings: list[str]

    def __bool__(self) -> bool:
        return bool(self.holds or self.payments or self.bookings)

    def public(self) -> dict[str, list[str]]:
        return {"holds": self.holds, "payments": self.payments, "bookings": self.bookings}


async def deletion_blockers(conn: Any, user_id: int) -> Blockers:
    """Live holds, payments in flight and upcoming confirmed bookings of ``user_id``."""
    holds = await conn.fetch(
        """SELECT hold_id FROM holds WHERE user_id = $1 AND status = 'live'
           AND expires_at > now() ORDER BY created_at""",
        user_id,
    )
    payments = await conn.fetch(
        """SELECT payment_id FROM payments WHERE user_id = $1
           AND status IN ('creating', 'open', 'succeeded', 'refunding') ORDER BY created_at""",
        user_id,
    )
    bookings = await conn.fetch(
        """SELECT b.booking_id FROM bookings b JOIN shows s ON s.id = b.show_id
           WHERE b.user_id = $1 AND b.status = 'confirmed' AND s.status <> 'cancelled'
             AND s.starts_at > now() ORDER BY s.starts_at""",
        user_id,
    )
    return Blockers(
        [str(r["hold_id"]) for r in holds],
        [str(r["payment_id"]) for r in payments],
        [str(r["booking_id"]) for r in bookings],
    )


class AccountInUse(Exception):
    """The account has holds, payments in flight or upcoming bookings (see ``Blockers``)."""

    def __init__(self, blockers: Blockers) -> None:
        super().__init__("the account has holds, payments or bookings in progress")
        self.blockers = blockers


async def delete_account(conn: Any, user_id: int) -> dict[str, int]:
    """Erase and anonymize everything about ``user_id`` per the registry, then the account's
    own personal fields, in one transaction; returns how many rows each section lost or had
    blanked. ``NotFound`` when there is no such live account; ``AccountInUse`` when
    ``deletion_blockers`` finds anything (checked under the account's row lock)."""
    async with conn.transaction():
        locked = await conn.fetchval(
            "SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", user_id
        )
        if locked is None:
            raise NotFound(f"no user {user_id}", {"user_id": user_id})
        blockers = await deletion_blockers(conn, user_id)
        if blockers:
            raise AccountInUse(blockers)
        present = await _tables(conn)
        done: dict[str, int] = {}
        for relation in relations():
            if relation.table in present and relation.on_delete != "keep":
                done[relation.name] = await _apply(conn, relation, user_id)
        await conn.execute(
            """UPDATE users SET email_enc = NULL, email_index = NULL, email_plain = NULL,
                                phone_enc = NULL, pii_key = NULL, display_name = '',
                                password_hash = $2, home_city_id = NULL,
                                favourite_genres = '{}', deleted_at = now()
               WHERE id = $1""",
            user_id,
            UNUSABLE_PASSWORD,
        )
    return done


async def _apply(conn: Any, relation: Relation, user_id: int) -> int:
    table, where = relation.table, relation.where
    if relation.on_delete == "erase":
        status = await conn.execute(f"DELETE FROM {table} t WHERE {where}", user_id)
    else:
        sets = ", ".join(f"{column} = {value}" for column, value in relation.blank.items())
        status = await conn.execute(f"UPDATE {table} t SET {sets} WHERE {where}", user_id)
    return int(status.rsplit(" ", 1)[-1])


__all__ = [
    "UNUSABLE_PASSWORD",
    "AccountInUse",
    "Blockers",
    "account_of",
    "delete_account",
    "deletion_blockers",
    "export_rows",
    "rows_of",
]
