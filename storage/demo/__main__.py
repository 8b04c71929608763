"""Measure a demo data run in a throwaway schema, then drop it (the CLI proper is
``seatserver demo-data``)::

    python -m storage.demo postgresql://postgres@127.0.0.1:5432/test --scale 1

Creates a fresh schema, migrates it, generates, prints the report, the wall time and the disk
the schema's tables take, and drops the schema again, leaving nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
import uuid

from storage.crypto import Keyring, new_key
from storage.db import connect
from storage.demo.generate import generate_demo_data
from storage.migrations import migrate

_DISK = """
    SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')"""


async def measure(dsn: str, *, scale: float, seed: int, today: dt.date) -> None:
    schema = f"demo_measure_{uuid.uuid4().hex[:8]}"
    admin = await connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        conn = await connect(dsn, schema=schema)
        try:
            await migrate(conn)
            started = time.perf_counter()
            ring = Keyring.parse("measure:" + new_key())
            report = await generate_demo_data(
                conn, scale=scale, seed=seed, today=today, keyring=ring
            )
            wall = time.perf_counter() - started
            disk = await conn.fetchval(_DISK, schema)
        finally:
            await conn.close()
        print(f"scale {scale}: {wall:.1f} s wall, {disk / 1e6:.0f} MB on disk")
        for table, count in report.counts.items():
            print(f"  {table:14} {count:>12,}")
        print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m storage.demo", description=__doc__)
    parser.add_argument("dsn", help="a Postgres URL; a throwaway schema is made and dropped")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date(2026, 11, 24))
    args = parser.parse_args()
    asyncio.run(measure(args.dsn, scale=args.scale, seed=args.seed, today=args.today))


if __name__ == "__main__":
    main()
