"""A mail catcher for the one-command local run: an SMTP server on loopback that keeps every
message it receives in a Maildir, where a mail client (or ``messages()``) can read them::

    python -m notifications.catcher --dir /tmp/mail --port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import mailbox
import sys
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _ToMaildir:
    def __init__(self, directory: Path) -> None:
        self.box = mailbox.Maildir(directory, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.box.add(envelope.content)  # the bytes as received
        return "250 OK"


@dataclass
class Catcher:
    controller: Controller
    directory: Path

    @property
    def port(self) -> int:
        return int(self.controller.port)

    async def stop(self) -> None:
        await asyncio.to_thread(self.controller.stop)


def _check_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the mail catcher listens on a loopback address only, not {host!r}")


async def start_catcher(directory: Path, port: int = 0, host: str = "127.0.0.1") -> Catcher:
    """Start catching on ``host:port`` (0: a free port) into the Maildir ``directory``.

    >>> catcher = await start_catcher(tmp / "mail")
    >>> ...  # send to 127.0.0.1:catcher.port
    >>> await catcher.stop()
    """
    _check_loopback(host)
    if port == 0:
        import socket

        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    controller = Controller(_ToMaildir(directory), hostname=host, port=port)
    await asyncio.to_thread(controller.start)
    return Catcher(controller, directory)


def messages(directory: Path) -> list[dict[str, str]]:
    """What was caught: subject, recipient and date of each message, oldest first."""
    box = mailbox.Maildir(directory, create=False)
    found: list[tuple[float, dict[str, str]]] = []
    for key in box.iterkeys():
        m = message_from_bytes(box.get_bytes(key), policy=policy.default)
        date = str(m["Date"] or "")
        found.append(
            (
                _when(date, key),
                {"subject": str(m["Subject"]).strip(), "to": str(m["To"]), "date": date},
            )
        )
    return [entry for _, entry in sorted(found, key=lambda pair: pair[0])]


def _when(date: str, key: str) -> float:
    """A message's Date as epoch seconds; else when the Maildir got it (its key begins so)."""
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return float(key.split(".", 1)[0]) if key.split(".", 1)[0].isdigit() else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="catch mail on loopback into a Maildir")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    try:
        _check_loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))

    async def serve() -> None:
        catcher = await start_catcher(args.dir, args.port, args.host)
        print(f"catching mail on {args.host}:{catcher.port} into {args.dir}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await catcher.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
