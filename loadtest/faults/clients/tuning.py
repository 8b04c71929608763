"""The pace, patience and odds of the fault run's clients, in one place (``Tuning``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    """Pace, patience and the odds of each journey's branches."""

    think_s: tuple[float, float] = (0.01, 0.05)  # a customer's pause between steps
    request_timeout_s: float = 10.0  # one request, answer read
    tries: int = 8  # of one step, same key
    step_s: float = 20.0  # a step is not tried again after this long
    pause_s: float = 2.0  # the longest pause between tries without a Retry-After
    retry_after_cap_s: float = 5.0  # a longer Retry-After is waited this long
    drain_s: float = 30.0  # after ``stop``, a journey in flight gives up after this long
    seats: tuple[int, int] = (1, 3)
    release_share: float = 0.15
    abandon_share: float = 0.1  # the rest check out
    provider_share: float = 0.3  # of payments: authenticated at the provider
    cancel_share: float = 0.75  # of bookings: seats come back, the shows do not sell out
    refused_s: tuple[float, float] = (0.2, 0.5)  # a customer's pause after a refused hold
    payment_polls: int = 40
    payment_poll_s: float = 0.25
    visitor_spread_s: float = 1.0  # visitors arrive over this long
    admission_wait_s: float = 60.0
    line_poll_s: tuple[float, float] = (0.2, 1.0)  # bounds of the pause between polls
    ws_open_s: float = 5.0
    ws_backoff_s: tuple[float, float] = (0.2, 5.0)  # first and longest pause before reconnecting
    ws_silence_s: float = 45.0  # no message for this long: the connection is taken as lost
    resync_fallback_s: float = 5.0  # no snapshot this long after a resync: read it over HTTP
    catch_up_s: float = 8.0  # after ``finish``, how long a watcher may take to catch up
    catch_up_poll_s: float = 0.5
