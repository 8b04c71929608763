"""The wire between ``ShowClient`` and a host: commands and replies as plain lists.

A host answers each command with a ``Reply``: ``Done`` (answered now), ``Failed`` (a domain
error, as a value, so a batch carries each caller's own error) or ``Pending`` (decided in memory,
answered once its flush commits). Ray packs lists of strings and numbers with msgpack, many
times cheaper than it pickles frozen dataclasses and exceptions; at thousands of commands a
second that was most of a caller's and a host's serialization time. So ``pack_request`` /
``unpack_reply`` on the caller's side and ``call_packed`` on the host's turn commands, holds,
bookings and errors into lists and back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from actors.commands import (
    Block,
    Cancel,
    Command,
    Confirm,
    Expire,
    Extend,
    HoldBest,
    HoldSeats,
    Release,
    SetPrices,
    SetStatus,
    StartPayment,
    Unblock,
)
from actors.errors import BookingError
from actors.events import Booking, Hold


@dataclass(frozen=True)
class Done:
    value: Any


@dataclass(frozen=True)
class Failed:
    error: BaseException


@dataclass(frozen=True)
class Pending:
    """Decided in memory, answered once the flush holding it commits (``ticket``)."""

    value: Any
    ticket: int


Reply = Done | Failed | Pending


# -- the wire format: plain lists ---------------------------------------------------------------
# Ray packs lists of strings and numbers with msgpack and pickles anything else (tuples too), so
# commands and replies travel as lists, with sequences inside them (seats) as lists.

_COMMANDS: tuple[type, ...] = (
    HoldSeats,
    HoldBest,
    Release,
    Extend,
    StartPayment,
    Confirm,
    Cancel,
    Block,
    Unblock,
    SetStatus,
    Expire,
    SetPrices,  # new codes go last: the numbering is the wire format
)
_DONE, _FAILED, _PENDING = 0, 1, 2
_PLAIN, _TUPLE, _HOLD, _BOOKING, _HOLDS = 0, 1, 2, 3, 4


def _getter(cls: type) -> Callable[[Any], list[Any]]:
    """A function giving the dataclass's field values in field order, tuples as lists."""
    names = [f.name for f in fields(cls)]
    if not names:
        return lambda obj: []
    get = attrgetter(*names)
    if len(names) == 1:
        return lambda obj: _fields_out((get(obj),))
    return lambda obj: _fields_out(get(obj))


def _fields_out(values: tuple[Any, ...]) -> list[Any]:
    return [list(v) if type(v) is tuple else v for v in values]


def _fields(values: list[Any]) -> list[Any]:
    return [tuple(v) if type(v) is list else v for v in values]


_COMMAND_CODES = {cls: (code, _getter(cls)) for code, cls in enumerate(_COMMANDS)}
_hold_fields = _getter(Hold)
_booking_fields = _getter(Booking)


def _error_classes(base: type[BookingError]) -> dict[str, type[BookingError]]:
    """Error classes by code; a subclass that keeps its parent's code does not replace it."""
    found = {base.code: base}
    for sub in base.__subclasses__():
        for code, cls in _error_classes(sub).items():
            found.setdefault(code, cls)
    return found


_ERRORS = _error_classes(BookingError)


def pack_request(show_id: int, command: Command) -> list[Any]:
    """``(show_id, command)`` as plain values for ``call_packed``."""
    code, values = _COMMAND_CODES[type(command)]
    return [show_id, code, values(command)]


def unpack_command(code: int, values: list[Any]) -> Command:
    command: Command = _COMMANDS[code](*_fields(values))
    return command


def _pack_value(value: Any) -> list[Any]:
    if isinstance(value, Hold):
        return [_HOLD, _hold_fields(value)]
    if isinstance(value, Booking):
        return [_BOOKING, _booking_fields(value)]
    if isinstance(value, tuple):
        return [_TUPLE, list(value)]
    if isinstance(value, list) and all(isinstance(v, Hold) for v in value):
        return [_HOLDS, [_hold_fields(v) for v in value]]
    return [_PLAIN, value]


def _unpack_value(packed: list[Any]) -> Any:
    kind, value = packed
    if kind == _HOLD:
        return Hold(*_fields(value))
    if kind == _BOOKING:
        return Booking(*_fields(value))
    if kind == _TUPLE:
        return tuple(value)
    if kind == _HOLDS:
        return [Hold(*_fields(v)) for v in value]
    return value


def _pack_error(error: BaseException) -> Any:
    if isinstance(error, BookingError) and _ERRORS.get(error.code) is type(error):
        return [error.code, error.message, error.details]
    return error  # anything else travels pickled, as itself


def _unpack_error(packed: Any) -> BaseException:
    if isinstance(packed, list):
        code, message, details = packed
        return _ERRORS[code](message, details)
    error: BaseException = packed
    return error


def pack_reply(reply: Reply) -> list[Any]:
    if isinstance(reply, Done):
        return [_DONE, _pack_value(reply.value)]
    if isinstance(reply, Failed):
        return [_FAILED, _pack_error(reply.error)]
    return [_PENDING, _pack_value(reply.value), reply.ticket]


def unpack_reply(packed: list[Any]) -> Reply:
    """The ``Reply`` a ``call_packed`` answer stands for."""
    kind = packed[0]
    if kind == _DONE:
        return Done(_unpack_value(packed[1]))
    if kind == _FAILED:
        return Failed(_unpack_error(packed[1]))
    return Pending(_unpack_value(packed[1]), packed[2])
