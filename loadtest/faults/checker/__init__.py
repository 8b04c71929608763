"""The history checker: what a fault run's clients were told, and what Postgres, the show
actors and the payment provider hold at the end, checked against the product's promises. Pure
functions of a ``model.History``: no I/O, no clock.

    violations = check(history)                      # [] when every promise held
    outages = unavailability(history)                # the longest outage a customer saw, per kind
    figures = summary(history, violations)           # operations, faults, watchers, violations

One module per promise (``seats``, ``confirmations``, ``money``, ``holds``, ``watchers``,
``waiting_room``), each check a function named as the ``Violation.check`` it reports;
``verdict`` runs them all, ``downtime`` measures what customers saw, ``figures`` sums a run up.
"""

from __future__ import annotations

from loadtest.faults.checker.downtime import unavailability
from loadtest.faults.checker.figures import summary
from loadtest.faults.checker.verdict import check

__all__ = ["check", "summary", "unavailability"]
