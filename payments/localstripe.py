"""The local payment provider: localstripe (a stateful fake of Stripe's API) on loopback only.

Its own entry point binds every interface and pickles its state to /tmp after each request;
this runner binds 127.0.0.1 (or another loopback address) and keeps the state in a file of
ours, or nowhere::

    python -m payments.localstripe --port 8420 --state ~/.local/share/seatserver/localstripe.pickle

A host that is not a loopback address is refused unless ``--allow-non-loopback`` is given.

``start_localstripe`` runs it as a child process and ``register_webhook`` points its webhooks
at a URL (it signs them as Stripe does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

__all__ = ["LocalStripe", "free_port", "main", "register_webhook", "start_localstripe"]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _serve(host: str, port: int, state: Path | None) -> None:
    from aiohttp import web
    from localstripe import resources, server

    store = resources.store

    def load() -> None:
        if state is not None and state.exists():
            with contextlib.suppress(Exception), state.open("rb") as f:
                store.update(pickle.load(f))

    def dump() -> None:
        if state is not None:
            tmp = state.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(state)

    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
    store.try_load_from_disk = load
    store.dump_to_disk = dump
    load()
    web.run_app(server.app, host=host, port=port, print=None, access_log=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="localstripe on a loopback address")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, default=None, help="keep its state in this file")
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="listen on a non-loopback address (a fake payment provider anyone there can use)",
    )
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        if not args.allow_non_loopback:
            parser.error("the local provider listens on a loopback address only")
        print(f"warning: localstripe on {args.host}, not loopback", file=sys.stderr)
    if not 1 <= args.port <= 65535:
        parser.error("--port must be 1..65535")
    _serve(args.host, args.port, args.state)
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalStripe:
    """A localstripe child process on 127.0.0.1."""

    url: str
    process: subprocess.Popen[bytes]

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"localstripe exited with {self.process.returncode}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.url + "/js.stripe.com/v3/") as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"localstripe did not answer at {self.url}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        """End the child (only it, by its pid)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


async def start_localstripe(port: int = 0, state: Path | None = None) -> LocalStripe:
    """Start localstripe on 127.0.0.1:``port`` (0: a free one); call ``wait_ready`` next."""
    port = port or free_port()
    # This file as a script, not ``-m payments.localstripe``: that would import the whole
    # payments package (the saga, Ray) for nothing. ``-P``: not its own directory on the path,
    # where this file would shadow the localstripe package.
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--port", str(port)]
    if state is not None:
        command += ["--state", str(state)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return LocalStripe(f"http://127.0.0.1:{port}", process)


async def register_webhook(
    base_url: str, name: str, url: str, secret: str, events: list[str] | None = None
) -> None:
    """Send localstripe's webhooks (signed with ``secret``) to ``url``; a name replaces the
    earlier webhook of that name."""
    form: list[tuple[str, str]] = [("url", url), ("secret", secret)]
    form += [("events[]", event) for event in events or ()]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/_config/webhooks/{name}", data=form) as resp,
    ):
        if resp.status != 200:
            raise RuntimeError(f"localstripe refused the webhook: {resp.status}")


if __name__ == "__main__":
    sys.exit(main())
