"""Versioned model artifacts: one directory per trained model, with its metrics and data.

Layout under the store's root (``DATA_DIR/models`` by default)::

    recommender/20261204T190102Z-3f9a1c/
        meta.json      kind, version, created_at, metrics, gate, data, params, training_s
        model.*        whatever the trainer wrote (weights, index, tables)
        eval.png       the evaluation plot

A trainer writes into a draft directory and commits it: the draft becomes visible under its
version only once ``meta.json`` is complete (a rename), so a reader never sees half an artifact.
The serving side asks for ``latest(kind)``: the newest version whose evaluation gate passed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("recommender", "pricing", "fraud")
META = "meta.json"


class ArtifactError(Exception):
    """An artifact that cannot be read or written."""


@dataclass(frozen=True)
class Gate:
    """Whether a model may serve: ``passed`` and the rule it was held to, in words."""

    passed: bool
    rule: str


@dataclass(frozen=True)
class Artifact:
    kind: str
    version: str
    path: Path
    created_at: str
    metrics: dict[str, Any]
    gate: Gate
    data: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    training_s: float = 0.0

    def file(self, name: str) -> Path:
        return self.path / name

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "created_at": self.created_at,
            "gate": {"passed": self.gate.passed, "rule": self.gate.rule},
            "metrics": self.metrics,
            "data": self.data,
            "params": self.params,
            "training_s": self.training_s,
        }


class Draft:
    """A model being written: files go into ``path``; ``commit`` publishes it."""

    def __init__(self, store: ArtifactStore, kind: str, version: str, path: Path) -> None:
        self.store, self.kind, self.version, self.path = store, kind, version, path
        self.committed: Artifact | None = None

    def commit(
        self,
        *,
        metrics: Mapping[str, Any],
        gate: Gate,
        data: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        training_s: float = 0.0,
    ) -> Artifact:
        meta = {
            "kind": self.kind,
            "version": self.version,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "metrics": dict(metrics),
            "gate": {"passed": bool(gate.passed), "rule": gate.rule},
            "data": dict(data),
            "params": dict(params or {}),
            "training_s": round(float(training_s), 3),
        }
        (self.path / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        final = self.store.root / self.kind / self.version
        os.replace(self.path, final)
        self.committed = _read(final)
        return self.committed


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @contextmanager
    def draft(self, kind: str) -> Iterator[Draft]:
        """A draft directory for a new version of ``kind``; removed unless committed."""
        _check_kind(kind)
        now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        version = f"{now}-{secrets.token_hex(3)}"
        (self.root / kind).mkdir(parents=True, exist_ok=True)
        path = self.root / kind / f".draft-{version}"
        path.mkdir()
        draft = Draft(self, kind, version, path)
        try:
            yield draft
        finally:
            if draft.committed is None:
                shutil.rmtree(path, ignore_errors=True)

    def list(self, kind: str | None = None) -> list[Artifact]:
        """Every committed version, newest first (of one kind, or of all)."""
        kinds = [kind] if kind else list(KINDS)
        found: list[Artifact] = []
        for name in kinds:
            _check_kind(name)
            folder = self.root / name
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(".") or not (entry / META).is_file():
                    continue
                try:
                    found.append(_read(entry))
                except ArtifactError:
                    continue  # a damaged artifact is skipped, never served
        return sorted(found, key=lambda a: (a.version, a.kind), reverse=True)

    def latest(self, kind: str, *, passed: bool = True) -> Artifact | None:
        """The newest version of ``kind`` (that passed its gate, unless ``passed=False``)."""
        for artifact in self.list(kind):
            if artifact.gate.passed or not passed:
                return artifact
        return None

    def get(self, kind: str, version: str) -> Artifact:
        _check_kind(kind)
        path = self.root / kind / version
        if version.startswith(".") or "/" in version or not (path / META).is_file():
            raise ArtifactError(f"no {kind} model version {version!r}")
        return _read(path)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ArtifactError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")


def _read(path: Path) -> Artifact:
    try:
        meta = json.loads((path / META).read_text())
        return Artifact(
            kind=meta["kind"],
            version=meta["version"],
            path=path,
            created_at=meta["created_at"],
            metrics=meta["metrics"],
            gate=Gate(bool(meta["gate"]["passed"]), str(meta["gate"]["rule"])),
            data=meta["data"],
            params=meta.get("params", {}),
            training_s=float(meta.get("training_s", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"unreadable artifact at {path}: {exc}") from exc
