"""``seatserver train``, ``retrain``, ``models`` and ``eval``: the models' commands."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import storage
from seatserver import bootstrap
from seatserver.settings import Settings

KINDS = ("recommender", "pricing", "fraud")
HEADLINE = {  # the metrics `models` shows per kind, by their paths in the metrics
    "recommender": (("model", "hr@10"), ("model", "ndcg@10"), ("itemknn", "hr@10")),
    "pricing": (
        ("model", "poisson_deviance"),
        ("baseline", "poisson_deviance"),
        ("backtest", "lift"),
    ),
    "fraud": (
        ("test", "model", "verify", "precision"),
        ("test", "model", "verify", "recall"),
        ("test", "model", "verify", "fpr"),
    ),
}


def add_parsers(commands: Any, data_dir_option: Any, seed: Any) -> None:
    """The models' subcommands; ``seed`` parses a seed (the command line's own check)."""
    train = commands.add_parser(
        "train",
        help="train a model on the bookings in the database",
        description="Train a model on the database's history (the demo's, or real bookings), "
        "evaluate it against its baselines, and keep it as a new version with its metrics "
        "and an evaluation plot. The Serve deployments pick up a new version that passed "
        "its evaluation gate within half a minute. Exits 1 when the gate was not passed.",
    )
    data_dir_option(train)
    train.add_argument("kind", choices=KINDS)
    train.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")

    retrain = commands.add_parser(
        "retrain",
        help="retrain the models that are stale",
        description="Retrain each model (all kinds, or those named) whose serving version is "
        "older than its retraining period (SEATSERVER_RETRAIN_<KIND>_DAYS), that has none, or "
        "whose drift alert is open; with --force, every one named. A new version serves only "
        "if it passes its evaluation gate; otherwise the old one keeps serving. Fresh models "
        "are skipped. Exits 1 when a retrained model failed its gate.",
    )
    data_dir_option(retrain)
    retrain.add_argument("kind", nargs="*", choices=KINDS, help="only these kinds")
    retrain.add_argument("--force", action="store_true", help="retrain even fresh models")
    retrain.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    retrain.add_argument("--no-progress", action="store_true", help="no progress bars")
    retrain.add_argument("--json", action="store_true", help="print the outcome as JSON")

    models = commands.add_parser(
        "models",
        help="list trained model versions and their metrics",
        description="Every trained version, newest first; '*' marks the one that serves "
        "(the newest that passed its gate).",
    )
    data_dir_option(models)
    models.add_argument("kind", nargs="?", choices=KINDS, help="only this kind")
    models.add_argument("--json", action="store_true", help="print JSON")

    evaluate = commands.add_parser(
        "eval",
        help="evaluate the recommender on MovieLens or on the database",
        description="Train the recommender and evaluate it with the NCF protocol (the latest "
        "interaction of each user left out, ranked among 100 sampled unseen items): HR@10 "
        "and NDCG@10 of the model, popularity and item-kNN; and a time split's Precision@10, "
        "Recall@10 and coverage. On a MovieLens directory (ml-100k's u.data or ml-1m's "
        "ratings.dat) or, without --movielens, on the database's bookings. Keeps nothing.",
    )
    data_dir_option(evaluate)
    evaluate.add_argument("kind", choices=("recommender",))
    evaluate.add_argument("--movielens", type=_directory, metavar="DIR", help="a MovieLens dir")
    evaluate.add_argument("--json", type=Path, metavar="PATH", help="also write the report here")
    evaluate.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")


def _directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a directory: {text}")
    return path


def _say(message: str) -> None:
    print(f"seatserver: {message}", file=sys.stderr, flush=True)


async def _on_database(settings: Settings, database_url: str, work: Any) -> Any:
    conn = await storage.connect(database_url, schema=settings.database_schema)
    try:
        return await work(conn)
    finally:
        await conn.close()


def train(settings: Settings, args: argparse.Namespace) -> int:
    from ml.artifacts import ArtifactStore

    trainer = importlib.import_module(f"ml.{args.kind}.train")
    store = ArtifactStore(settings.models_path)
    services = bootstrap.open_services(settings, redis=False)
    try:

        async def work(conn: Any) -> Any:
            return await trainer.train(conn, store, progress=not args.no_progress, seed=args.seed)

        artifact = asyncio.run(_on_database(settings, services.database_url, work))
    finally:
        services.close()
    print(_line(artifact, serving=False))
    print(f"  kept in {artifact.path} (evaluation plot: {artifact.file('eval.png')})")
    if not artifact.gate.passed:
        _say(f"the model did not pass its gate ({artifact.gate.rule}): it will not serve")
        return 1
    _say(f"{args.kind} {artifact.version} passed its gate ({artifact.gate.rule})")
    return 0


def retrain(settings: Settings, args: argparse.Namespace) -> int:
    from ml.artifacts import ArtifactStore

    kinds = tuple(dict.fromkeys(args.kind)) or KINDS
    store = ArtifactStore(settings.models_path)
    periods = {kind: float(getattr(settings, f"retrain_{kind}_days")) for kind in KINDS}
    services = bootstrap.open_services(settings, redis=False)
    try:

        async def work(conn: Any) -> Any:
            return await retrain_stale(
                conn,
                store,
                kinds,
                periods=periods,
                force=args.force,
                seed=args.seed,
                progress=not args.no_progress,
            )

        outcome = asyncio.run(_on_database(settings, services.database_url, work))
    finally:
        services.close()
    if args.json:
        print(json.dumps(outcome, indent=2, default=str))
    for item in outcome:
        _say(f"{item['kind']}: {item['action']} ({item['why']})")
    return 1 if any(item["action"] == "not_promoted" for item in outcome) else 0


async def retrain_stale(
    conn: Any,
    store: Any,
    kinds: tuple[str, ...],
    *,
    periods: dict[str, float],
    force: bool = False,
    seed: int = 0,
    progress: bool = False,
    now: dt.datetime | None = None,
    trainers: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Retrain each of ``kinds`` that is stale (older than its period in days, never trained,
    or with an open drift alert) or, with ``force``, every one; what happened to each:
    "skipped" (fresh), "promoted" (passed its gate: it serves now) or "not_promoted" (failed
    its gate: the previous version keeps serving). ``trainers``: kind -> ``train`` function
    (default ``ml.<kind>.train.train``)."""
    now = now or dt.datetime.now(dt.UTC)
    drifting = await _drift_alerts(conn)
    outcome: list[dict[str, Any]] = []
    for kind in kinds:
        current = store.latest(kind)
        why = _stale(kind, current, periods[kind], kind in drifting, force, now)
        item: dict[str, Any] = {"kind": kind, "serving": getattr(current, "version", None)}
        if why is None:
            age = _age_days(current, now)
            item.update(action="skipped", why=f"fresh: {age:.1f} of {periods[kind]:g} days")
            outcome.append(item)
            continue
        train_fn = (trainers or {}).get(kind) or importlib.import_module(f"ml.{kind}.train").train
        artifact = await train_fn(conn, store, progress=progress, seed=seed)
        passed = artifact.gate.passed
        serving = store.latest(kind)
        item.update(
            action="promoted" if passed else "not_promoted",
            why=why if passed else f"{why}; the new version failed its gate ({artifact.gate.rule})",
            version=artifact.version,
            serving=getattr(serving, "version", None),
        )
        outcome.append(item)
    return outcome


def _age_days(artifact: Any, now: dt.datetime) -> float:
    created = dt.datetime.fromisoformat(artifact.created_at)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return (now - created).total_seconds() / 86400


def _stale(
    kind: str, current: Any, period: float, drifting: bool, force: bool, now: dt.datetime
) -> str | None:
    """Why ``kind`` is retrained, or None when it is fresh."""
    if current is None:
        return "no version serves"
    if force:
        return "forced"
    if drifting:
        return "its drift alert is open"
    age = _age_days(current, now)
    return f"stale: {age:.1f} days old, retrained every {period:g}" if age > period else None


async def _drift_alerts(conn: Any) -> set[str]:
    """The models with an open drift alert (none when monitoring's table is not there)."""
    import asyncpg

    try:
        rows = await conn.fetch("SELECT model FROM alerts WHERE state = 'open' AND kind = 'drift'")
    except asyncpg.UndefinedTableError:
        return set()
    return {r["model"] for r in rows}


def models(settings: Settings, args: argparse.Namespace) -> int:
    from ml.artifacts import ArtifactStore

    store = ArtifactStore(settings.models_path)
    found = store.list(args.kind)
    serving = {kind: store.latest(kind) for kind in KINDS}
    if args.json:
        print(json.dumps([a.summary() for a in found], indent=2, default=str))
        return 0
    if not found:
        print(f"no trained models in {settings.models_path}: run `seatserver train KIND`")
        return 0
    for artifact in found:
        current = serving.get(artifact.kind)
        print(_line(artifact, serving=current is not None and current.version == artifact.version))
    return 0


def _line(artifact: Any, *, serving: bool) -> str:
    figures = []
    for path in HEADLINE[artifact.kind]:
        value: Any = artifact.metrics
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            figures.append(f"{'.'.join(path)}={value:.4g}")
    gate = "passed" if artifact.gate.passed else "FAILED"
    mark = "*" if serving else " "
    return (
        f"{mark} {artifact.kind:<11} {artifact.version}  gate {gate:<6}  "
        f"trained in {artifact.training_s:.0f} s  {'  '.join(figures)}"
    )


def evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from ml.recommender import evaluate as recommender_eval
    from ml.recommender import train as recommender_train

    progress = not args.no_progress
    if args.movielens is not None:
        try:
            report = recommender_eval.evaluate_movielens(
                args.movielens, progress=progress, seed=args.seed
            )
        except ValueError as exc:
            _say(str(exc))
            return 2
    else:
        services = bootstrap.open_services(settings, redis=False)
        try:

            async def work(conn: Any) -> Any:
                return await recommender_train.evaluate_database(
                    conn, progress=progress, seed=args.seed
                )

            report = asyncio.run(_on_database(settings, services.database_url, work))
        finally:
            services.close()
    print(recommender_eval.format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        _say(f"report written to {args.json}")
    return 0
