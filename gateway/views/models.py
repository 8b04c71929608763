"""The models for ops (versions, metrics, answers by source) and the fraud check's views:
decisions and analysts' labels, and the customer's step-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway import keys
from gateway.endpoint import Call
from serve.client import ANSWERS
from storage import risk


async def list_models(call: Call) -> dict[str, Any]:
    from ml.artifacts import KINDS, ArtifactStore

    where = call.app[keys.MODELS].config.models_dir
    found: list[dict[str, Any]] = []
    if where:
        store = ArtifactStore(Path(where))
        serving = {kind: getattr(store.latest(kind), "version", None) for kind in KINDS}
        for artifact in store.list():
            summary = artifact.summary()
            summary["serving"] = serving.get(artifact.kind) == artifact.version
            found.append(summary)
    return {"models": found, "answers": _answers()}


def _answers() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for metric in ANSWERS.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            labels = sample.labels
            source = labels["source"] + (f":{labels['reason']}" if labels["reason"] else "")
            out.setdefault(labels["model"], {})[source] = sample.value
    return out


async def fraud_decisions(call: Call) -> dict[str, Any]:
    q = call.query
    async with call.app[keys.POOL].acquire() as conn:
        found = await risk.list_decisions(
            conn, decision=q.decision, before_id=q.before_id, limit=q.limit
        )
    return {"decisions": [d.public() for d in found]}


async def label_fraud_decision(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        labelled = await risk.label_decision(
            conn,
            call.path.decision_id,
            is_fraud=call.body.is_fraud,
            analyst_id=call.user.user_id,
            note=call.body.note,
        )
    return labelled.public()


async def step_up(call: Call) -> dict[str, Any]:
    b = call.body
    return await call.app[keys.FRAUD].step_up(
        call.app[keys.AUTH], call.user.user_id, b.password, str(b.hold_id)
    )
