"""How the ``seatserver`` command's process logs: JSON lines (``actors.JsonFormatter``: ts,
level, logger, message, request_id and any extra fields) for machines, or the classic text
line for people.

``--log-format`` picks; without it, development (``SEATSERVER_ENVIRONMENT``, the default)
logs text and test and production log JSON. The show hosts log JSON lines in their own Ray
processes whatever this says (``actors.HostConfig.log_format``).
"""

from __future__ import annotations

import logging

from actors.logs import FORMATS, configure_logging

__all__ = ["FORMATS", "default_format", "setup_logging"]


def default_format(environment: str) -> str:
    return "text" if environment == "development" else "json"


def setup_logging(fmt: str | None, *, verbose: bool, environment: str) -> str:
    """Log to stderr in ``fmt`` (None: the environment's default) at INFO with ``verbose``,
    else WARNING; returns the format chosen."""
    chosen = fmt or default_format(environment)
    configure_logging(chosen, logging.INFO if verbose else logging.WARNING)
    return chosen
