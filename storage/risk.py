"""Fraud decisions at checkout and analysts' labels on them.

Every check is kept with the features it saw, so ops can see why a checkout was refused and the
next training can learn from the labels analysts give.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import NotFound


@dataclass(frozen=True, slots=True)
class FraudDecision:
    id: int
    created_at: dt.datetime
    user_id: int
    show_id: int
    hold_id: str
    features: dict[str, float]
    score: float
    decision: str
    source: str
    model_version: str | None
    reasons: list[str]
    label: bool | None  # the analyst's verdict: fraud or not; None while unlabelled
    labelled_by: int | None
    note: str

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "user_id": self.user_id,
            "show_id": self.show_id,
            "hold_id": self.hold_id,
            "features": self.features,
            "score": self.score,
            "decision": self.decision,
            "source": self.source,
            "model_version": self.model_version,
            "reasons": self.reasons,
            "label": self.label,
            "labelled_by": self.labelled_by,
            "note": self.note,
        }


async def record_decision(
    conn: Any,
    *,
    user_id: int,
    show_id: int,
    hold_id: str,
    features: Mapping[str, float],
    score: float,
    decision: str,
    source: str,
    model_version: str | None,
    reasons: Sequence[str],
) -> int:
    decision_id: int = await conn.fetchval(
        """INSERT INTO fraud_decisions (user_id, show_id, hold_id, features, score, decision,
                                        source, model_version, reasons)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9::jsonb) RETURNING id""",
        user_id,
        show_id,
        uuid.UUID(hold_id),
        json.dumps(dict(features)),
        min(1.0, max(0.0, float(score))),
        decision,
        source,
        model_version,
        json.dumps(list(reasons)),
    )
    return decision_id


_SELECT = """SELECT d.id, d.created_at, d.user_id, d.show_id, d.hold_id, d.features, d.score,
                    d.decision, d.source, d.model_version, d.reasons,
                    l.is_fraud, l.analyst_id, coalesce(l.note, '') AS note
             FROM fraud_decisions d LEFT JOIN fraud_labels l ON l.decision_id = d.id"""


def _decision(r: Any) -> FraudDecision:
    def parsed(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    return FraudDecision(
        id=r["id"],
        created_at=r["created_at"],
        user_id=r["user_id"],
        show_id=r["show_id"],
        hold_id=str(r["hold_id"]),
        features=parsed(r["features"]),
        score=r["score"],
        decision=r["decision"],
        source=r["source"],
        model_version=r["model_version"],
        reasons=parsed(r["reasons"]),
        label=r["is_fraud"],
        labelled_by=r["analyst_id"],
        note=r["note"],
    )


async def list_decisions(
    conn: Any, *, decision: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[FraudDecision]:
    """Newest first; ``decision`` keeps one kind (allow, verify, block); ``before_id`` pages."""
    rows = await conn.fetch(
        _SELECT
        + """ WHERE ($1::text IS NULL OR d.decision = $1)
                AND ($2::bigint IS NULL OR d.id < $2)
              ORDER BY d.id DESC LIMIT $3""",
        decision,
        before_id,
        limit,
    )
    return [_decision(r) for r in rows]


async def get_decision(conn: Any, decision_id: int) -> FraudDecision:
    row = await conn.fetchrow(_SELECT + " WHERE d.id = $1", decision_id)
    if row is None:
        raise NotFound(f"no fraud decision {decision_id}", {"decision_id": decision_id})
    return _decision(row)


async def label_decision(
    conn: Any, decision_id: int, *, is_fraud: bool, analyst_id: int, note: str
) -> FraudDecision:
    """Set (or change) the analyst's verdict on a decision."""
    async with conn.transaction():
        exists = await conn.fetchval(
            "SELECT true FROM fraud_decisions WHERE id = $1 FOR UPDATE", decision_id
        )
        if not exists:
            raise NotFound(f"no fraud decision {decision_id}", {"decision_id": decision_id})
        await conn.execute(
            """INSERT INTO fraud_labels (decision_id, is_fraud, analyst_id, note)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (decision_id) DO UPDATE SET is_fraud = EXCLUDED.is_fraud,
                   analyst_id = EXCLUDED.analyst_id, note = EXCLUDED.note,
                   labelled_at = now()""",
            decision_id,
            is_fraud,
            analyst_id,
            note,
        )
    return await get_decision(conn, decision_id)
