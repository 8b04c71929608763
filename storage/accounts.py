"""Accounts: users, the theaters a theater admin runs, and refresh tokens.

Passwords arrive here already hashed (the gateway hashes with argon2); refresh tokens arrive
as their SHA-256. Emails and phone numbers are sealed with the caller's ``Keyring`` and found
by their blind index; emails are unique case-insensitively, whichever key sealed them.

    >>> user = await create_user(conn, "ana@example.com", password_hash, keyring=ring)
    >>> (await find_user_by_email(conn, "ANA@example.com", keyring=ring)).id == user.id
    True
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from storage.crypto import Keyring
from storage.errors import AlreadyExists, NotFound

EMAIL = "users.email"
PHONE = "users.phone"

ROLES = ("customer", "theater_admin", "admin")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    display_name: str
    home_city_id: int | None
    password_hash: str
    phone: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "display_name": self.display_name,
            "home_city_id": self.home_city_id,
            "phone": self.phone,
        }


@dataclass(frozen=True)
class RefreshToken:
    user_id: int
    family: uuid.UUID
    expires_at: dt.datetime
    replaced_at: dt.datetime | None
    revoked_at: dt.datetime | None


_USER_COLUMNS = (
    "id, email_enc, email_plain, phone_enc, role, display_name, home_city_id, password_hash"
)


def _user(row: Any, keyring: Keyring) -> User:
    sealed = row["email_enc"]
    email = keyring.decrypt(sealed, field=EMAIL) if sealed is not None else row["email_plain"]
    phone = row["phone_enc"]
    return User(
        id=row["id"],
        email=email or "",
        role=row["role"],
        display_name=row["display_name"],
        home_city_id=row["home_city_id"],
        password_hash=row["password_hash"],
        phone=None if phone is None else keyring.decrypt(phone, field=PHONE),
    )


def sealed_email(keyring: Keyring, email: str) -> tuple[bytes, bytes, str]:
    """(ciphertext, blind index, key id) of ``email`` under the current key."""
    return (
        keyring.encrypt(email.strip(), field=EMAIL),
        keyring.blind_index(email, field=EMAIL),
        keyring.current,
    )


async def create_user(
    conn: Any,
    email: str,
    password_hash: str,
    *,
    keyring: Keyring,
    display_name: str = "",
    role: str = "customer",
    home_city_id: int | None = None,
) -> User:
    """A new user; ``AlreadyExists`` when the email is taken (in any letter case, under any key
    of the ring: a lock on the email's current index keeps two registrations from racing while
    a rotation has some rows under the old key)."""
    enc, index, key_id = sealed_email(keyring, email)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", index.hex())
            if await conn.fetchval(
                "SELECT EXISTS (SELECT FROM users WHERE email_index = ANY($1::bytea[]))",
                keyring.blind_indexes(email, field=EMAIL),
            ):
                raise AlreadyExists("an account with this email exists", {"field": "email"})
            row = await conn.fetchrow(
                f"""INSERT INTO users (email_enc, email_index, pii_key, password_hash, role,
                                       display_name, home_city_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_USER_COLUMNS}""",
                enc,
                index,
                key_id,
                password_hash,
                role,
                display_name,
                home_city_id,
            )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists("an account with this email exists", {"field": "email"}) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound("no such city", {"home_city_id": home_city_id}) from exc
    return _user(row, keyring)


async def find_user_by_email(conn: Any, email: str, *, keyring: Keyring) -> User | None:
    """The live account with this email (any letter case), or None."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE email_index = ANY($1::bytea[]) "
        "AND deleted_at IS NULL",
        keyring.blind_indexes(email, field=EMAIL),
    )
    return None if row is None else _user(row, keyring)


async def get_user(conn: Any, user_id: int, *, keyring: Keyring) -> User:
    """A live account; ``NotFound`` when there is none (or it was deleted)."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL", user_id
    )
    if row is None:
        raise NotFound(f"no user {user_id}", {"user_id": user_id})
    return _user(row, keyring)


async def set_phone(conn: Any, user_id: int, phone: str | None, *, keyring: Keyring) -> None:
    """Seal and store the user's phone number (E.164, checked by the caller), or remove it."""
    sealed = None if phone is None else keyring.encrypt(phone, field=PHONE)
    done = await conn.execute(
        # The row's key id stays the oldest key of its values: a rotation visits it still.
        """UPDATE users SET phone_enc = $2, pii_key = coalesce(pii_key, $3)
           WHERE id = $1 AND deleted_at IS NULL""",
        user_id,
        sealed,
        keyring.current,
    )
    if done == "UPDATE 0":
        raise NotFound(f"no user {user_id}", {"user_id": user_id})


async def set_role(conn: Any, user_id: int, role: str) -> None:
    done = await conn.execute("UPDATE users SET role = $2 WHERE id = $1", user_id, role)
    if done == "UPDATE 0":
        raise NotFound(f"no user {user_id}", {"user_id": user_id})


async def grant_theater(conn: Any, user_id: int, theater_id: int) -> None:
    """Make ``user_id`` an admin of ``theater_id`` (and a theater admin, unless an ops admin)."""
    async with conn.transaction():
        role = await conn.fetchval("SELECT role FROM users WHERE id = $1 FOR UPDATE", user_id)
        if role is None:
            raise NotFound(f"no user {user_id}", {"user_id": user_id})
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM theaters WHERE id = $1)", theater_id
        ):
            raise NotFound(f"no theater {theater_id}", {"theater_id": theater_id})
        await conn.execute(
            "INSERT INTO theater_admins (user_id, theater_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            user_id,
            theater_id,
        )
        if role == "customer":
            await conn.execute("UPDATE users SET role = 'theater_admin' WHERE id = $1", user_id)


async def theaters_of(conn: Any, user_id: int) -> list[int]:
    """The theaters a theater admin runs."""
    rows = await conn.fetch(
        "SELECT theater_id FROM theater_admins WHERE user_id = $1 ORDER BY theater_id", user_id
    )
    return [r["theater_id"] for r in rows]


async def runs_theater(conn: Any, user_id: int, theater_id: int) -> bool:
    result: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT FROM theater_admins WHERE user_id = $1 AND theater_id = $2)",
        user_id,
        theater_id,
    )
    return result


async def theater_of(conn: Any, *, screen_id: int | None = None, show_id: int | None = None) -> int:
    """The theater a screen or a show belongs to; ``NotFound`` when there is none."""
    if screen_id is not None:
        value = await conn.fetchval("SELECT theater_id FROM screens WHERE id = $1", screen_id)
        what: dict[str, Any] = {"screen_id": screen_id}
    else:
        value = await conn.fetchval(
            "SELECT sc.theater_id FROM shows s JOIN screens sc ON sc.id = s.screen_id "
            "WHERE s.id = $1",
            show_id,
        )
        what = {"show_id": show_id}
    if value is None:
        raise NotFound(f"no such {next(iter(what))[:-3]}", what)
    result: int = value
    return result


async def add_refresh_token(
    conn: Any, token_hash: bytes, user_id: int, family: uuid.UUID, expires_at: dt.datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, family, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        token_hash,
        user_id,
        family,
        expires_at,
    )


async def take_refresh_token(conn: Any, token_hash: bytes) -> RefreshToken | None:
    """Mark the token replaced and return what it was (lock held until the transaction ends)."""
    row = await conn.fetchrow(
        """SELECT user_id, family, expires_at, replaced_at, revoked_at FROM refresh_tokens
           WHERE token_hash = $1 FOR UPDATE""",
        token_hash,
    )
    if row is None:
        return None
    await conn.execute(
        "UPDATE refresh_tokens SET replaced_at = coalesce(replaced_at, now()) "
        "WHERE token_hash = $1",
        token_hash,
    )
    return RefreshToken(
        user_id=row["user_id"],
        family=row["family"],
        expires_at=row["expires_at"],
        replaced_at=row["replaced_at"],
        revoked_at=row["revoked_at"],
    )


async def revoke_family(conn: Any, family: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family = $1",
        family,
    )


async def family_of(conn: Any, token_hash: bytes) -> tuple[int, uuid.UUID] | None:
    row = await conn.fetchrow(
        "SELECT user_id, family FROM refresh_tokens WHERE token_hash = $1", token_hash
    )
    return None if row is None else (row["user_id"], row["family"])


async def reseal_users(
    conn: Any, *, keyring: Keyring, batch: int = 500, only_plain: bool = False
) -> int:
    """Seal one batch of users whose values are not under the current key (or, written before
    sealing began, still plain) under it, with fresh blind indexes; returns how many. Call it
    until it returns 0; several callers at once share the work (rows are skipped when locked).
    With ``only_plain``, only rows still in plain text.

    >>> while await reseal_users(conn, keyring=ring):
    ...     pass
    """
    async with conn.transaction():
        rows = await conn.fetch(
            """SELECT id, email_enc, email_plain, phone_enc FROM users
               WHERE deleted_at IS NULL
                 AND ((NOT $3 AND pii_key IS DISTINCT FROM $1) OR email_plain IS NOT NULL)
               ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
            keyring.current,
            batch,
            only_plain,
        )
        updates = []
        for row in rows:
            email = (
                keyring.decrypt(row["email_enc"], field=EMAIL)
                if row["email_enc"] is not None
                else row["email_plain"]
            )
            phone = row["phone_enc"]
            enc, index, key_id = sealed_email(keyring, email)
            if phone is not None:
                phone = keyring.encrypt(keyring.decrypt(phone, field=PHONE), field=PHONE)
            updates.append((row["id"], enc, index, phone, key_id))
        await conn.executemany(
            """UPDATE users SET email_enc = $2, email_index = $3, phone_enc = $4, pii_key = $5,
                                email_plain = NULL
               WHERE id = $1""",
            updates,
        )
    return len(rows)


async def unsealed_users(conn: Any, *, keyring: Keyring) -> int:
    """How many live users still have a value not under the current key."""
    count: int = await conn.fetchval(
        """SELECT count(*) FROM users WHERE deleted_at IS NULL
           AND (pii_key IS DISTINCT FROM $1 OR email_plain IS NOT NULL)""",
        keyring.current,
    )
    return count
