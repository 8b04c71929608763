"""The locust load suite: one user class per journey (browse and search, seat-map watchers on
websockets, the booking funnel, the flash sale, a mixed day) and the driver that runs the
standard set and writes its report (``python -m loadtest``).

Two sides, kept apart because locust patches the standard library (gevent) as it loads:

- in the locust process only: ``locustfile`` (the entry point, ``locust -f``), ``customer``,
  ``browse``, ``watchers``, ``funnel``, ``flash``, ``mixed``, ``recorder``;
- in the driver: ``stack``, ``local`` and ``remote`` (what the load runs against), ``runner``
  (one locust run, with the CPU of each process group), ``cpu``, ``suite`` (the standard set),
  ``analysis``, ``plots``, ``writeup``.

``scenarios`` is plain data both sides read. The driver never imports locust or gevent.
"""

from loadtest.locust.scenarios import SCENARIOS, STANDARD, Scenario, group_of, mixed_weights

__all__ = ["SCENARIOS", "STANDARD", "Scenario", "group_of", "mixed_weights"]
