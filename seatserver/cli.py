"""The ``seatserver`` command: ``up``, ``migrate``, ``demo-data``, ``doctor``, ``status``,
``gateway``, and the models' ``train``, ``retrain``, ``models`` and ``eval``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from seatserver.flags import whole_number
from seatserver.settings import Settings


def _positive_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError("scale must be > 0 and <= 100")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError("seed must be in [0, 2**32)")
    return value


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the embedded Postgres and Redis keep their data "
        "(default: SEATSERVER_DATA_DIR or the user's data directory)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seatserver", description="A real-time movie ticket booking server."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=None,
        help="log lines as JSON (ts, level, logger, message, request_id, ...) or as text "
        "(default: text in development, JSON otherwise)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the whole system",
        description="Start Postgres, Redis and Ray (embedded/local unless configured), apply "
        "migrations, load demo data into an empty database, and serve until "
        "interrupted.",
    )
    _data_dir_option(up)
    up.add_argument(
        "--demo-scale",
        type=_positive_scale,
        default=1.0,
        metavar="X",
        help="size of the demo data loaded into an empty database (default 1.0)",
    )
    up.add_argument("--no-demo-data", action="store_true", help="never load demo data")
    up.add_argument("--seed", type=_seed, default=None, help="demo data seed")

    migrate = commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply pending migrations and create booking partitions ahead of time.",
    )
    _data_dir_option(migrate)

    demo = commands.add_parser(
        "demo-data",
        help="load deterministic demo data",
        description="Generate cities, theaters, screens, movies, a week of shows, users and a "
        "year of past bookings, deterministically from a seed.",
    )
    _data_dir_option(demo)
    demo.add_argument(
        "--scale",
        type=_positive_scale,
        default=1.0,
        metavar="X",
        help="1.0 is 60 theaters and 50,000 users; grows toward 5,000 theaters",
    )
    demo.add_argument("--seed", type=_seed, default=None, help="random seed (default 42)")
    demo.add_argument(
        "--today",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="first day of the generated week of shows (default today)",
    )
    demo.add_argument(
        "--replace", action="store_true", help="delete the existing catalog and bookings first"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")

    gateway = commands.add_parser(
        "gateway",
        help="run one more gateway process beside a running instance",
        description="Serve the HTTP API, websockets and the web page, joined to the instance "
        "`seatserver up` runs in the same data directory (or to the servers and Ray cluster "
        "named by SEATSERVER_DATABASE_URL, SEATSERVER_REDIS_URL, SEATSERVER_RAY_ADDRESS).",
    )
    _data_dir_option(gateway)
    gateway.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    gateway.add_argument(
        "--port",
        type=whole_number(0, 65535),
        default=8081,
        help="port (default 8081; 0 picks a free one)",
    )

    doctor = commands.add_parser(
        "doctor",
        help="check that Postgres, Redis and Ray are reachable",
        description="Check each service and say what is wrong and how to fix it. "
        "Exits 1 when a check fails.",
    )
    _data_dir_option(doctor)
    from seatserver import status

    status.add_parser(commands, _data_dir_option)
    from seatserver import modelcmds

    modelcmds.add_parsers(commands, _data_dir_option, _seed)
    from seatserver import keycmds

    keycmds.add_parsers(commands, _data_dir_option)
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    overrides = {"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"seatserver: invalid setting {field}: {error['msg']}", file=sys.stderr)
        return 2
    from seatserver import bootstrap, keycmds, modelcmds, status
    from seatserver import commands as run

    if settings.ray_address is None:
        bootstrap.local_ray_environment()  # before anything imports Ray
    from seatserver.logs import setup_logging  # (imports Ray: the formatter is the actors')

    setup_logging(args.log_format, verbose=args.verbose, environment=settings.environment)

    handler = {
        "up": run.up,
        "migrate": run.migrate,
        "demo-data": run.demo_data,
        "doctor": run.doctor,
        "status": status.run,
        "gateway": run.gateway,
        "train": modelcmds.train,
        "retrain": modelcmds.retrain,
        "models": modelcmds.models,
        "eval": modelcmds.evaluate,
        "new-key": keycmds.new_key,
        "rotate-keys": keycmds.rotate_keys,
    }[args.command]
    try:
        return handler(settings, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
