"""Benchmark: a scoring run on the 60k town against a bare ``stratum score`` of the same date.

The parent process generates the town (Parquet, as ``stratum generate`` writes it),
trains a model on it (the default run config) and saves the model and its drift
reference. Then two child processes, one per side, each measured on its own
(wall time of the measured call; peak RSS of the whole child, ``ru_maxrss``):

* ``bare``: what ``stratum score`` does: ``Scorer.from_sources`` + ``to_frame(500)``
  and writing the Parquet file;
* ``run``: what ``stratum run`` does: :func:`stratum_ml.runs.create_run` with the
  top 500 explained (English and Dutch), the fallback ranking, drift against the
  reference, the changes against the previous run, every dwelling stored in the
  operational store (SQLite, the default) and the run logged to MLflow (embedded);
* ``run`` once more with the store on PostgreSQL (a server started from the Debian
  package as the tests start it, ``tests/pg_server.py``), for the storing time there.

Both sides first do the same work for the month before, untimed (for the run this
is the previous run its changes are computed against), so that both start warm
and both peak RSS figures cover two scorings. Goal: run / bare <= 1.5 in time and
in peak RSS.

Usage: ``python bench/runs.py [--addresses 60000] [--top-k 500]``.
Writes ``bench/results/runs.json`` and ``bench/results/runs.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
GOAL_RATIO = 1.5


def _prepare(folder: Path, addresses: int) -> dict[str, Any]:
    from stratum_ml.sources import load_sources
    from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.tracking import drift_reference
    from stratum_ml.training.train import train_model

    config = GeneratorConfig(n_addresses=addresses, seed=1)
    start = time.perf_counter()
    generate_municipality(config, folder / "sources", folder / "truth.parquet")
    generated = time.perf_counter() - start
    tables = load_sources(folder / "sources")
    start = time.perf_counter()
    outcome = train_model(tables, None, RunConfig())
    trained = time.perf_counter() - start
    outcome.model.save(folder / "model")
    (folder / "reference.json").write_text(drift_reference(outcome).to_json(), "utf-8")
    return {
        "as_of": config.extract_date.isoformat(),
        "generate_seconds": round(generated, 1),
        "train_seconds": round(trained, 1),
    }


def _child(
    side: str, folder: Path, as_of: dt.date, top_k: int, database_url: str | None
) -> dict[str, Any]:
    from stratum_ml.config import Settings
    from stratum_ml.io import write_frame_atomic
    from stratum_ml.model.reference import DriftReference
    from stratum_ml.model.registry import ModelVersionInfo
    from stratum_ml.model.risk_model import RiskModel
    from stratum_ml.runs import RunModel, create_run
    from stratum_ml.scoring.scorer import Scorer
    from stratum_ml.sources import load_sources
    from stratum_ml.store import open_store

    tables = load_sources(folder / "sources")
    model = RiskModel.load(folder / "model")
    month_before = (as_of.replace(day=1) - dt.timedelta(days=1)).replace(day=as_of.day)

    if side == "bare":

        def once(day: dt.date) -> int:
            frame = Scorer.from_sources(model, tables, day).to_frame(top_k)
            write_frame_atomic(frame, folder / f"bare-{day}.parquet")
            return len(frame)

    else:
        reference = DriftReference.from_json((folder / "reference.json").read_text("utf-8"))
        info = ModelVersionInfo("stratum-risk", "1", ("champion",), "bench", {}, None, None)
        home = folder / ("home-pg" if database_url else "home")
        settings = Settings(home=home, mlflow_uri=None, database_url=database_url)
        store = open_store(settings.store_url)
        run_model = RunModel(model, info, reference)

        def once(day: dt.date) -> int:
            summary = create_run(tables, day, run_model, store, settings=settings, top_k=top_k)
            assert summary.stored_now
            return summary.n_items

    once(month_before)
    start = time.perf_counter()
    n = once(as_of)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict[str, Any] = {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024)}
    out["dwellings"] = n
    if side == "run":
        from stratum_ml.runs import list_runs

        latest = list_runs(store, limit=1)[0]
        out["steps_seconds"] = latest.timings
        out["store_and_mlflow_seconds"] = round(seconds - sum(latest.timings.values()), 2)
        out["changes"] = latest.changes
        out["drifted"] = latest.drifted
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addresses", type=int, default=60_000)
    parser.add_argument("--top-k", type=int, default=500)
    parser.add_argument("--child", choices=["bare", "run"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        as_of = dt.date.fromisoformat(args.as_of)
        out = _child(args.child, args.folder, as_of, args.top_k, args.database_url)
        print(json.dumps(out))
        return
    sys.path.insert(0, str(ROOT))  # tests.pg_server starts the PostgreSQL server
    from tests.pg_server import PostgresServer

    with tempfile.TemporaryDirectory(prefix="stratum-bench-runs-") as tmp:
        folder = Path(tmp)
        prepared = _prepare(folder, args.addresses)
        sides = {}
        server = PostgresServer().start()
        try:
            for side, url in (("bare", None), ("run", None), ("run", server.database_url())):
                command = [sys.executable, __file__, "--child", side, "--folder", str(folder)]
                command += ["--as-of", prepared["as_of"], "--top-k", str(args.top_k)]
                command += ["--database-url", url] if url else []
                done = subprocess.run(command, check=True, capture_output=True, text=True)
                sides[side + ("_postgresql" if url else "")] = json.loads(
                    done.stdout.strip().splitlines()[-1]
                )
        finally:
            server.stop()
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "addresses": args.addresses,
        "top_k": args.top_k,
        **prepared,
        "bare_score": sides["bare"],
        "run": sides["run"],
        "run_postgresql": sides["run_postgresql"],
        "time_ratio": round(sides["run"]["seconds"] / sides["bare"]["seconds"], 2),
        "peak_rss_ratio": round(sides["run"]["peak_rss_mib"] / sides["bare"]["peak_rss_mib"], 2),
        "goal_ratio": GOAL_RATIO,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runs.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    run, bare, pg = sides["run"], sides["bare"], sides["run_postgresql"]
    lines = [
        "# Scoring run benchmark",
        "",
        f"{result['date']} — {result['machine']}; {args.addresses:,} addresses, "
        f"{bare['dwellings']:,} dwellings, top {args.top_k} explained, as of {result['as_of']}",
        "",
        "| | wall seconds | peak RSS (MiB) |",
        "|---|---|---|",
        f"| bare `stratum score` (score, top K reasons, Parquet) | {bare['seconds']} | "
        f"{bare['peak_rss_mib']} |",
        f"| `stratum run` (score, reasons en+nl, fallback, drift, changes, store, MLflow) | "
        f"{run['seconds']} | {run['peak_rss_mib']} |",
        f"| ratio (goal <= {GOAL_RATIO}) | {result['time_ratio']} | {result['peak_rss_ratio']} |",
        f"| `stratum run`, store on PostgreSQL | {pg['seconds']} | {pg['peak_rss_mib']} |",
        "",
        "Steps of the run (seconds): "
        + ", ".join(f"{k} {v}" for k, v in run["steps_seconds"].items())
        + f"; storing every row and logging to MLflow {run['store_and_mlflow_seconds']} "
        f"(SQLite), {pg['store_and_mlflow_seconds']} (PostgreSQL).",
        "",
        f"Changes against the month before: {run['changes']}; drifted: {run['drifted']}.",
        "Each side runs in its own process and first does the month before, untimed. "
        "One timed call per side on a shared 2-core machine: the scoring step alone "
        "varies by about a second between runs; what a run adds to scoring is the sum "
        "of its other steps.",
    ]
    (RESULTS / "runs.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
