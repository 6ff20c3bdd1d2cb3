"""Benchmark: training at 60k addresses; scoring and explaining against bare LightGBM.

* training time of the default run config (features as of every visit, propensity
  model, LightGBM, calibration, holdout evaluation, mitigation variants, SHAP);
* scoring throughput of ``RiskModel.predict_risk`` on the feature frame (column
  checks, category codes, calibration) against bare ``Booster.predict`` on the same
  ready matrix, in the same run, run alternately (ratio of wall and of CPU time);
* explaining the top K of a priority list against explaining every dwelling (ratio).

Usage: ``python bench/train_score.py [--addresses 60000] [--repeats 3]``.
Writes ``bench/results/train_score.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from stratum_ml.scoring.scorer import Scorer
from stratum_ml.synthetic.generate import GeneratorConfig, generate_tables
from stratum_ml.training.config import RunConfig
from stratum_ml.training.train import train_model

RESULTS = Path(__file__).parent / "results"


def best_of(repeats: int, fn: Any) -> float:
    """Fastest wall time of ``repeats`` calls (the machine is noisy; see stack notes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def paired_best(repeats: int, ours: Any, bare: Any) -> dict[str, float]:
    """Fastest wall and CPU time of each of two calls, run alternately ``repeats`` times.

    Alternating gives both the same share of a busy machine; the process CPU time
    is less disturbed by other jobs than the wall time.
    """
    best = {"ours_wall": float("inf"), "bare_wall": float("inf")}
    best |= {"ours_cpu": float("inf"), "bare_cpu": float("inf")}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("bare", bare)):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            best[f"{name}_wall"] = min(best[f"{name}_wall"], time.perf_counter() - wall)
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], time.process_time() - cpu)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addresses", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args()

    generator = GeneratorConfig(n_addresses=args.addresses, seed=1)
    town = generate_tables(generator)
    start = time.perf_counter()
    outcome = train_model(town.sources, town.audit, RunConfig())
    train_seconds = time.perf_counter() - start
    model = outcome.model

    as_of = generator.extract_date
    start = time.perf_counter()
    scorer = Scorer.from_sources(model, town.sources, as_of)
    scorer_seconds = time.perf_counter() - start
    frame = scorer.features
    matrix = model.matrix(frame)
    n = len(frame)

    paired = paired_best(
        max(args.repeats, 7),
        lambda: model.predict_risk(frame),
        lambda: model.booster_.predict(matrix, num_iteration=model.best_iteration_),
    )
    ours, bare = paired["ours_wall"], paired["bare_wall"]
    explain_top = best_of(args.repeats, lambda: scorer.priority_list(args.top_k))
    start = time.perf_counter()
    model.contributions(matrix)
    explain_all = time.perf_counter() - start
    single = best_of(args.repeats * 20, lambda: scorer.score([frame.index[0]], n_reasons=3))

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "addresses": args.addresses,
        "visits_labelled": int(
            outcome.periods["train_n"] + outcome.periods["tune_n"] + outcome.periods["holdout_n"]
        ),
        "train_seconds": round(train_seconds, 1),
        "scorer_build_seconds (features as of date + scoring)": round(scorer_seconds, 1),
        "dwellings_scored": n,
        "score_rows_per_second": round(n / ours),
        "bare_booster_rows_per_second": round(n / bare),
        "score_over_bare_time_ratio": round(ours / bare, 2),
        "score_over_bare_cpu_time_ratio": round(paired["ours_cpu"] / paired["bare_cpu"], 2),
        "matrix_ms": round(best_of(args.repeats, lambda: model.matrix(frame)) * 1000, 1),
        "explain_top_k": args.top_k,
        "explain_top_k_seconds": round(explain_top, 3),
        "explain_all_seconds": round(explain_all, 1),
        "explain_all_over_top_k_ratio": round(explain_all / explain_top, 1),
        "single_address_score_with_reasons_ms": round(single * 1000, 2),
        "note": "best of repeats (score and bare alternately, at least 7 each); "
        "LightGBM on 1 thread (the run config default)",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_score.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Training and scoring benchmark",
        "",
        f"{result['date']} — {result['machine']}",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in result.items() if k not in ("date", "machine")]
    (RESULTS / "train_score.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
