"""The keys that seal personal data: make one (``new-key``), and re-seal every account under
the current key after a rotation (``rotate-keys``).

A rotation: put a new key first in ``SEATSERVER_DATA_KEYS`` (``new:KEY,old:KEY``) and restart
the gateways (both keys open everything, new values are sealed under the new key); run
``seatserver rotate-keys``; once it reports nothing left, drop the old key and restart again.

A rotation opens every account's sealed email and phone, so each run leaves one row in the
audit log (``personal_data.reseal`` by the system, ids and counts only: how many accounts were
to do, re-sealed and left, under which key id, and whether the run finished), written even
when the run fails midway.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import storage
from seatserver import bootstrap
from seatserver.flags import whole_number
from seatserver.settings import Settings
from storage import audit


def add_parsers(commands: Any, data_dir_option: Any) -> None:
    commands.add_parser(
        "new-key",
        help="print a new random key for SEATSERVER_DATA_KEYS",
        description="Print a fresh 256-bit key, base64url, to put in SEATSERVER_DATA_KEYS as "
        "ID:KEY (the current key first).",
    )
    rotate = commands.add_parser(
        "rotate-keys",
        help="re-seal every account's email and phone under the current data key",
        description="Re-seal every live account whose email or phone is sealed under another "
        "key of SEATSERVER_DATA_KEYS (or not yet sealed) under the current (first) key, with "
        "fresh blind indexes, in batches; safe to run beside live gateways and to run again. "
        "Every key that sealed a row must still be in the ring.",
    )
    data_dir_option(rotate)
    rotate.add_argument(
        "--batch",
        type=whole_number(1, 10_000),
        default=500,
        help="accounts per transaction (default 500)",
    )


def new_key(settings: Settings, args: argparse.Namespace) -> int:
    print(storage.new_key())
    return 0


async def rotate(database_url: str, schema: str, keyring: storage.Keyring, batch: int) -> int:
    """Re-seal until nothing is left; prints progress; returns how many were re-sealed."""
    conn = await storage.connect(database_url, schema=schema)
    counts = {"batch": batch, "accounts": 0, "resealed": 0, "completed": False}
    try:
        left = counts["accounts"] = await storage.unsealed_users(conn, keyring=keyring)
        print(f"rotate-keys: {left:,} accounts to re-seal under key {keyring.current!r}")
        done, started = 0, time.monotonic()
        while count := await storage.reseal_users(conn, keyring=keyring, batch=batch):
            done += count
            counts["resealed"] = done
            print(f"\rrotate-keys: {done:,} / {left:,}", end="", file=sys.stderr, flush=True)
        if done:
            print(file=sys.stderr)
        rest = counts["left"] = await storage.unsealed_users(conn, keyring=keyring)
        counts["completed"] = True
        print(
            f"rotate-keys: re-sealed {done:,} accounts in {time.monotonic() - started:.1f} s; "
            f"{rest:,} left under other keys"
        )
        return done
    finally:
        try:
            await audit.record(conn, _reseal_entry(keyring, counts))
        finally:
            await conn.close()


def _reseal_entry(keyring: storage.Keyring, counts: dict[str, int | bool]) -> audit.AuditEntry:
    """The run's audit row: the system opened the accounts' sealed values to re-seal them."""
    key = keyring.current if audit.TOKEN.match(keyring.current) else None
    return audit.AuditEntry(
        "personal_data.reseal",
        actor_role="system",
        target_type="data_key",
        target_id=key,
        details=counts,
    )


def rotate_keys(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap.open_services(settings, redis=False)
    try:
        asyncio.run(
            rotate(services.database_url, settings.database_schema, settings.keyring(), args.batch)
        )
    except storage.KeyringError as exc:
        print(f"seatserver: {exc}: put every key that sealed a row in the ring", file=sys.stderr)
        return 1
    finally:
        services.close()
    return 0
