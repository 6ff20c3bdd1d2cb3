"""Benchmark: the scoring pipeline at national scale, per step, with the in-memory or
partitioned feature engine.

Steps (each in its own child process, so its wall time and peak RSS are its own):

* ``generate``: a synthetic municipality of N addresses (Parquet);
* ``validate``: ``load_sources`` (every contract check, normalised tables);
* ``features``: what ``stratum features --engine E`` does: validate, build every
  feature of every address as of a date, write Parquet;
* ``score``: read the model's columns of the dwellings from the feature file
  (``Scorer.from_feature_file``), score every dwelling (the model's matrix, raw score,
  calibration, rank), write the scores;
* ``explain``: read the feature file, score, and explain the top 10,000 (SHAP
  contributions of those rows only, reasons in words).

The model is a small LightGBM model on every feature, trained once on a 12k town (a
setup step, not measured). The 60k run is the baseline of the same invocation: the
cost per address of every step is given relative to it. ``score`` and ``explain`` read
the features of the last engine (every engine gives the same table).

Usage: ``python bench/scale.py --addresses 1000000 [--engine local partitioned dask]
[--partitions N] [--results DIR]``. Results are merged into ``bench/results/scale.json``
(by size and engine; ``--results``: another folder's) and ``scale.md`` is rewritten from it.
CPU seconds are the stage's own and its reaped worker processes' (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
AS_OF = "2026-06-01"
BASELINE = 60_000
TOP_K = 10_000

SETUP = """
import pandas as pd
from stratum_ml.features.build import build_features
from stratum_ml.features.population import population_queries
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.synthetic.generate import GeneratorConfig, generate_tables
from stratum_ml.synthetic.truth import truth_at
town = generate_tables(GeneratorConfig(n_addresses=12_000, seed=2))
q = population_queries(town.sources.addresses, pd.Timestamp("2025-06-01"))
X = build_features(town.sources, q)
y = truth_at(town.truth, X.index, "2025-06-01").astype(int)
params = LightGBMParams(n_estimators=100, early_stopping_rounds=10)
RiskModel(params, "sigmoid", seed=0).fit(X, y, X_tune=X, y_tune=y).save(r"{model}")
"""

STAGES: dict[str, str] = {
    "generate": """
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
generate_municipality(GeneratorConfig(n_addresses={n}, seed=1), out_dir=r"{src}",
                      truth_file=r"{truth}", fmt="parquet", progress=False)
""",
    "validate": """
from stratum_ml.sources import load_sources
load_sources(r"{src}")
""",
    "validate-stream": """
from stratum_ml.sources import SourceStream
stream = SourceStream.open(r"{src}")
for name in stream.tables:
    for block in stream.read(name):
        del block
stream.extract_date()
""",
    "features-partitioned": """
import datetime as dt, logging, sys
from stratum_ml.features.spill import features_to_file
# the phases' wall and CPU seconds (and each table's), for the result's "phases"
logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="PHASE %(message)s")
logging.getLogger("stratum_ml.features.spill").setLevel(logging.INFO)
features_to_file(r"{src}", dt.date.fromisoformat("{as_of}"), r"{out}",
                 n_partitions={partitions}, workers={workers})
""",
    "features": """
import datetime as dt
from stratum_ml.sources import load_sources
from stratum_ml.features.build import build_feature_table
from stratum_ml.io import write_frame_atomic
t = load_sources(r"{src}")
table = build_feature_table(t, dt.date.fromisoformat("{as_of}"), engine="{engine}",
                            partitions={partitions})
write_frame_atomic(table.reset_index(), r"{out}")
""",
    "score": """
import datetime as dt, pandas as pd
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring.scorer import Scorer
model = RiskModel.load(r"{model}")
a = pd.read_parquet(r"{src}/addresses.parquet",
                    columns=["address_id", "use_purpose", "district_code", "neighbourhood_code"])
scorer = Scorer.from_feature_file(model, r"{out}", a, dt.date.fromisoformat("{as_of}"))
del a
scorer.table.to_parquet(r"{scores}")
print("SCORED", len(scorer))
""",
    "explain": """
import datetime as dt, pandas as pd
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring.scorer import Scorer
model = RiskModel.load(r"{model}")
a = pd.read_parquet(r"{src}/addresses.parquet",
                    columns=["address_id", "use_purpose", "district_code", "neighbourhood_code"])
scorer = Scorer.from_feature_file(model, r"{out}", a, dt.date.fromisoformat("{as_of}"))
del a
top = scorer.to_frame({top_k})
print("EXPLAINED", len(top))
""",
}

PEAK = """
import resource
_self = resource.getrusage(resource.RUSAGE_SELF)
_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print("PEAK_RSS_KIB", _self.ru_maxrss)
print("PEAK_RSS_CHILDREN_KIB", _kids.ru_maxrss)
print("CPU_MS", int(1000 * (_self.ru_utime + _self.ru_stime + _kids.ru_utime + _kids.ru_stime)))
"""


def run_stage(code: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter: wall seconds, CPU seconds (its own and its
    reaped children's), its own peak RSS (MiB) and the largest peak of its own children
    (the worker processes), if any."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + PEAK], check=False, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"stage failed:\n{done.stderr[-3000:]}")
    kib = {
        line.split()[0]: int(line.split()[1])
        for line in done.stdout.splitlines()
        if line.startswith(("PEAK_RSS", "CPU_MS"))
    }
    out = {
        "seconds": round(wall, 2),
        "cpu_seconds": round(kib["CPU_MS"] / 1000, 1),
        "peak_rss_mib": round(kib["PEAK_RSS_KIB"] / 1024, 1),
    }
    if kib.get("PEAK_RSS_CHILDREN_KIB", 0) > 0:
        out["peak_rss_worker_mib"] = round(kib["PEAK_RSS_CHILDREN_KIB"] / 1024, 1)
    phases = [x.removeprefix("PHASE ") for x in done.stderr.splitlines() if x.startswith("PHASE ")]
    if phases:
        out["phases"] = phases
    return out


def bench_size(
    n: int,
    engines: list[str],
    partitions: int | None,
    model: Path,
    *,
    sources: Path | None = None,
    workers: int = 1,
    stream_validate: bool = False,
    skip_validate: bool = False,
) -> list[dict]:
    """Every step at ``n`` addresses; one row per engine (generate/validate shared).

    With ``sources`` (a folder of ``n`` addresses generated before) nothing is generated.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"stratum-scale-{n}-") as tmp:
        src = sources or Path(tmp, "sources")
        fmt: dict[str, Any] = {
            "n": n,
            "src": src,
            "truth": Path(tmp, "truth.parquet"),
            "out": Path(tmp, "features.parquet"),
            "scores": Path(tmp, "scores.parquet"),
            "model": model,
            "as_of": AS_OF,
            "top_k": TOP_K,
            "partitions": partitions,
            "workers": workers,
        }
        shared: dict[str, Any] = {}
        if sources is None:
            shared["generate"] = run_stage(STAGES["generate"].format(**fmt))
            print(f"  generate {shared['generate']}", flush=True)
        else:
            shared["generate"] = {"seconds": None, "peak_rss_mib": None, "note": str(sources)}
        validate = "validate-stream" if stream_validate else "validate"
        if skip_validate:
            # the partitioned features step validates every block as it splits the folder
            shared["validate"] = {"seconds": None, "peak_rss_mib": None, "note": "in features"}
        else:
            shared["validate"] = run_stage(STAGES[validate].format(**fmt))
        if stream_validate and not skip_validate:
            shared["validate"]["note"] = "SourceStream: every check, one block at a time"
        print(f"  validate {shared['validate']}", flush=True)
        for engine in engines:
            row: dict[str, Any] = {"addresses": n, "engine": engine, **shared}
            stage = "features-partitioned" if engine == "partitioned" else "features"
            row["features"] = run_stage(STAGES[stage].format(engine=engine, **fmt))
            row["load_average"] = [round(x, 2) for x in os.getloadavg()]
            print(f"  features[{engine}] {row['features']}", flush=True)
            rows.append(row)
        for step in ("score", "explain"):
            result = run_stage(STAGES[step].format(**fmt))
            print(f"  {step} {result}", flush=True)
            for row in rows:
                row[step] = result
    return rows


STEPS = ("generate", "validate", "features", "score", "explain")


def relative_costs(rows: list[dict]) -> None:
    """Seconds per address of each step over that of the 60k row of the same engine."""
    base = {r["engine"]: r for r in rows if r["addresses"] == BASELINE}
    for r in rows:
        b = base.get(r["engine"]) or base.get("local")
        if b is None:
            continue
        r["cost_per_address_vs_60k"] = {
            s: round((r[s]["seconds"] / r["addresses"]) / (b[s]["seconds"] / BASELINE), 2)
            for s in STEPS
            if r[s]["seconds"] is not None and b[s]["seconds"]
        }


def write_report(rows: list[dict], results: Path = RESULTS) -> None:
    path = results / "scale.json"
    old = json.loads(path.read_text())["results"] if path.exists() else []
    keyed = {(r["addresses"], r["engine"]): r for r in old}
    keyed.update({(r["addresses"], r["engine"]): r for r in rows})
    merged = sorted(keyed.values(), key=lambda r: (r["addresses"], r["engine"]))
    relative_costs(merged)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "note": "each step in its own process; peak RSS is that process's ru_maxrss "
        "(Dask: the largest worker's in peak_rss_worker_mib); wall time includes start-up; "
        "the machine is shared with other jobs, so times are noisy",
        "as_of": AS_OF,
        "results": merged,
    }
    results.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Scale benchmark: per step, time and peak RSS",
        "",
        f"{report['date']} — {report['machine']}. {report['note']}.",
        "",
        "| addresses | engine | step | seconds | CPU s | peak RSS MiB | cost/address vs 60k |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in merged:
        for s in STEPS:
            if r[s]["seconds"] is None:
                lines.append(
                    f"| {r['addresses']:,} | {r['engine']} | {s} | not run "
                    f"({r[s].get('note', '')}) | | | |"
                )
                continue
            peak = f"{r[s]['peak_rss_mib']}"
            if "peak_rss_worker_mib" in r[s]:
                peak += f" (+ worker {r[s]['peak_rss_worker_mib']})"
            rel = r.get("cost_per_address_vs_60k", {}).get(s, "")
            cpu = r[s].get("cpu_seconds", "")
            lines.append(
                f"| {r['addresses']:,} | {r['engine']} | {s} | {r[s]['seconds']} | {cpu} "
                f"| {peak} | {rel} |"
            )
        if "load_average" in r:
            lines.append(
                f"| {r['addresses']:,} | {r['engine']} | (load average during features: "
                f"{', '.join(str(x) for x in r['load_average'])}) | | | | |"
            )
    (results / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addresses", type=int, nargs="+", default=[BASELINE, 1_000_000])
    parser.add_argument("--engine", nargs="+", default=["local", "partitioned"])
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1, help="partitioned: worker processes")
    parser.add_argument(
        "--sources", type=Path, default=None, help="an existing folder of --addresses N (one N)"
    )
    parser.add_argument(
        "--stream-validate",
        action="store_true",
        help="validate with SourceStream (block by block) instead of load_sources",
    )
    parser.add_argument(
        "--skip-validate",
        action="store_true",
        help="no separate validate step: the partitioned features step validates every "
        "block of the folder itself (validate + features is then the features row)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="folder of scale.json and scale.md (default bench/results: the committed rows)",
    )
    args = parser.parse_args()
    if args.skip_validate and args.engine != ["partitioned"]:
        parser.error("--skip-validate goes with --engine partitioned (which validates)")
    if args.sources is not None and len(args.addresses) != 1:
        parser.error("--sources goes with one --addresses N")
    with tempfile.TemporaryDirectory(prefix="stratum-scale-model-") as tmp:
        model = Path(tmp, "model")
        subprocess.run([sys.executable, "-c", SETUP.format(model=model)], check=True)
        rows = []
        for n in args.addresses:
            print(f"{n:,} addresses ...", flush=True)
            rows += bench_size(
                n,
                args.engine,
                args.partitions,
                model,
                sources=args.sources,
                workers=args.workers,
                stream_validate=args.stream_validate,
                skip_validate=args.skip_validate,
            )
    write_report(rows, args.results)


if __name__ == "__main__":
    main()
