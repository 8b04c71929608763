"""Deterministic demo data: cities, theaters with varied screen layouts, movies and shows,
customers with hidden habits, and a year of bookings that follow them, for demos, load tests
and the models to learn from. The same seed and ``today`` always give the same rows.

    report = await generate_demo_data(conn, scale=1.0, seed=42, today=date(2026, 11, 24))

Modules, one job each: ``places`` and ``words`` (name banks), ``layouts`` (screen layouts),
``seating`` (picking seats for past bookings), ``catalog`` (cities, theaters, movies),
``schedule`` (show times, prices, statuses), ``people`` (users and their habits), ``history``
(bookings), ``loader`` (COPY into Postgres), ``progress`` and ``generate`` (the run).
Inside ``storage`` it imports only ``storage.errors`` and ``storage.partitions``.
"""

from storage.demo.generate import DemoReport, generate_demo_data
from storage.demo.layouts import build_layout
from storage.demo.people import ADMIN_EMAIL, DEMO_PASSWORD

__all__ = ["ADMIN_EMAIL", "DEMO_PASSWORD", "DemoReport", "build_layout", "generate_demo_data"]
