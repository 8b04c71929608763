"""Model monitoring's rows: each gateway process's counts of each model (``model_stats``), the
recommendations shown, clicked and booked (``rec_impressions``), and alerts (``alerts``).

    await add_stats(conn, [StatsRow("fraud", "gw-1:4242", "2026...", calls=120, ...)])
    rows = await stats_since(conn, since)          # merged by the gateway
    alert_id = await open_alert(conn, "latency", "fraud", {"p99_ms": 300})  # None: already open
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALERT_KINDS = ("latency", "error_rate", "ctr_drop", "drift", "stale_model")


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


@dataclass(kw_only=True)
class ModelCounts:
    """What was counted of one model: calls, model answers, errors, and histograms keyed by
    bucket (fallbacks by reason, latency, predictions, each input feature's bins, other
    counters). Counts add up: a process's counters between flushes, a window's rows merged.

        total = ModelCounts()
        total.add(row)
    """

    calls: int = 0
    answers: int = 0
    errors: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)
    latency: dict[str, int] = field(default_factory=dict)
    predictions: dict[str, int] = field(default_factory=dict)
    features: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.calls or self.predictions or self.features or self.extra)

    def add(self, other: ModelCounts, *, features: bool = True) -> None:
        """Add ``other``'s counts to these (its feature bins only when ``features``)."""
        self.calls += other.calls
        self.answers += other.answers
        self.errors += other.errors
        _add(self.fallbacks, other.fallbacks)
        _add(self.latency, other.latency)
        _add(self.predictions, other.predictions)
        _add(self.extra, other.extra)
        if features:
            for name, bins in other.features.items():
                _add(self.features.setdefault(name, {}), bins)


@dataclass
class StatsRow(ModelCounts):
    """One process's counts of one model over one flush, binned on ``version``'s reference."""

    model: str
    process: str
    version: str | None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    model: str
    state: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    acked_at: dt.datetime | None
    acked_by: int | None
    details: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "state": self.state,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "acked_at": self.acked_at.isoformat() if self.acked_at else None,
            "acked_by": self.acked_by,
            "details": self.details,
        }


# -- per-model counts ---------------------------------------------------------------------------


async def add_stats(conn: Any, rows: Sequence[StatsRow]) -> None:
    """Keep one flush's counts (one row per model)."""
    if not rows:
        return
    await conn.executemany(
        """INSERT INTO model_stats (model, process, at, version, calls, answers, errors,
                                    fallbacks, latency, predictions, features, extra)
           VALUES ($1, $2, coalesce($3, now()), $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        [
            (
                r.model,
                r.process,
                r.at,
                r.version,
                r.calls,
                r.answers,
                r.errors,
                r.fallbacks,
                r.latency,
                r.predictions,
                r.features,
                r.extra,
            )
            for r in rows
        ],
    )


async def stats_since(conn: Any, since: dt.datetime) -> list[StatsRow]:
    """Every row kept at or after ``since`` (of every process), oldest first."""
    rows = await conn.fetch(
        """SELECT model, process, version, calls, answers, errors, fallbacks, latency,
                  predictions, features, extra, at
           FROM model_stats WHERE at >= $1 ORDER BY at, id""",
        since,
    )
    return [StatsRow(**dict(r)) for r in rows]


async def prune(conn: Any, before: dt.datetime) -> int:
    """Forget counts and impressions older than ``before``; how many rows went."""
    stats = await conn.execute("DELETE FROM model_stats WHERE at < $1", before)
    shown = await conn.execute("DELETE FROM rec_impressions WHERE hour < $1", before)
    return int(stats.split()[-1]) + int(shown.split()[-1])


# -- recommendations shown, clicked, booked ----------------------------------------------------

# (hour, user_id (0 when not logged in), movie_id, source, shown, clicked)
Impression = tuple[dt.datetime, int, int, str, int, int]


async def add_impressions(conn: Any, rows: Sequence[Impression]) -> None:
    """Add shown and clicked counts per (hour, customer, movie, source)."""
    if not rows:
        return
    await conn.executemany(
        """INSERT INTO rec_impressions (hour, user_id, movie_id, source, shown, clicked)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (hour, user_id, movie_id, source) DO UPDATE
           SET shown = rec_impressions.shown + excluded.shown,
               clicked = rec_impressions.clicked + excluded.clicked""",
        rows,
    )


async def mark_conversions(conn: Any, since: dt.datetime) -> int:
    """Mark the impressions shown since ``since`` whose customer booked the movie within 24 h
    of being shown it (from the impression's hour); how many were marked."""
    done = await conn.execute(
        """UPDATE rec_impressions AS i SET converted_at = b.first_at
           FROM (
               SELECT i2.hour, i2.user_id, i2.movie_id, i2.source, min(b.confirmed_at) AS first_at
               FROM rec_impressions i2
               JOIN bookings b ON b.user_id = i2.user_id AND b.status = 'confirmed'
                    AND b.confirmed_at >= i2.hour
                    AND b.confirmed_at < i2.hour + interval '25 hours'
               JOIN shows s ON s.id = b.show_id AND s.movie_id = i2.movie_id
               WHERE i2.hour >= $1 AND i2.user_id <> 0 AND i2.converted_at IS NULL
                     AND i2.shown > 0
               GROUP BY i2.hour, i2.user_id, i2.movie_id, i2.source
           ) AS b
           WHERE i.hour = b.hour AND i.user_id = b.user_id AND i.movie_id = b.movie_id
                 AND i.source = b.source""",
        since,
    )
    return int(done.split()[-1])


async def recommendation_totals(
    conn: Any, start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, int]]:
    """Per source: impressions, clicks and conversions (impressions of logged-in customers
    that were booked) in hours ``[start, end)``."""
    rows = await conn.fetch(
        """SELECT source, sum(shown) AS shown, sum(clicked) AS clicked,
                  sum(shown) FILTER (WHERE user_id <> 0) AS shown_known,
                  count(*) FILTER (WHERE converted_at IS NOT NULL) AS converted
           FROM rec_impressions WHERE hour >= $1 AND hour < $2 GROUP BY source""",
        start,
        end,
    )
    return {
        r["source"]: {
            "impressions": int(r["shown"] or 0),
            "clicks": int(r["clicked"] or 0),
            "impressions_logged_in": int(r["shown_known"] or 0),
            "conversions": int(r["converted"] or 0),
        }
        for r in rows
    }


async def recommendation_days(conn: Any, since: dt.datetime) -> list[dict[str, Any]]:
    """Impressions, clicks and conversions per UTC day since ``since``, oldest first."""
    rows = await conn.fetch(
        """SELECT (hour AT TIME ZONE 'UTC')::date AS day, sum(shown) AS shown,
                  sum(clicked) AS clicked,
                  count(*) FILTER (WHERE converted_at IS NOT NULL) AS converted
           FROM rec_impressions WHERE hour >= $1 GROUP BY 1 ORDER BY 1""",
        since,
    )
    return [
        {
            "day": r["day"].isoformat(),
            "impressions": int(r["shown"] or 0),
            "clicks": int(r["clicked"] or 0),
            "conversions": int(r["converted"] or 0),
        }
        for r in rows
    ]


# -- alerts ------------------------------------------------------------------------------------


def _alert(r: Any) -> Alert:
    return Alert(**dict(r))


_ALERT_COLUMNS = "id, kind, model, state, opened_at, resolved_at, acked_at, acked_by, details"


async def open_alert(conn: Any, kind: str, model: str, details: Mapping[str, Any]) -> int | None:
    """Open an alert of ``kind`` on ``model``; its id, or None when one is already open (its
    details are brought up to date)."""
    opened = await conn.fetchval(
        """INSERT INTO alerts (kind, model, details) VALUES ($1, $2, $3)
           ON CONFLICT (kind, model) WHERE state = 'open' DO NOTHING RETURNING id""",
        kind,
        model,
        dict(details),
    )
    if opened is None:
        await conn.execute(
            "UPDATE alerts SET details = $3 WHERE kind = $1 AND model = $2 AND state = 'open'",
            kind,
            model,
            dict(details),
        )
        return None
    return int(opened)


async def resolve_alert(conn: Any, kind: str, model: str) -> int | None:
    """Resolve the open alert of ``kind`` on ``model``; its id, or None when none was open."""
    found = await conn.fetchval(
        """UPDATE alerts SET state = 'resolved', resolved_at = now()
           WHERE kind = $1 AND model = $2 AND state = 'open' RETURNING id""",
        kind,
        model,
    )
    return None if found is None else int(found)


async def list_alerts(conn: Any, *, state: str | None = None, limit: int = 100) -> list[Alert]:
    """Alerts, newest first (only those in ``state`` when given)."""
    rows = await conn.fetch(
        f"""SELECT {_ALERT_COLUMNS} FROM alerts WHERE $1::text IS NULL OR state = $1
            ORDER BY opened_at DESC, id DESC LIMIT $2""",
        state,
        limit,
    )
    return [_alert(r) for r in rows]


async def ack_alert(conn: Any, alert_id: int, user_id: int) -> Alert | None:
    """Mark an alert as seen by ``user_id`` (the first acknowledgement stands); None: no such
    alert."""
    row = await conn.fetchrow(
        f"""UPDATE alerts SET acked_at = coalesce(acked_at, now()),
                              acked_by = coalesce(acked_by, $2)
            WHERE id = $1 RETURNING {_ALERT_COLUMNS}""",
        alert_id,
        user_id,
    )
    return None if row is None else _alert(row)
