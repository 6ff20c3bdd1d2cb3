"""Benchmark: generate, validate and build features, at 60k and 1M addresses.

Each stage runs in its own child process, so its wall time and peak RSS are its
own. A baseline stage in the same run — reading every source file into memory
(pyarrow, no checks) — puts validation and feature building in proportion:
the machine here is noisy, so ratios measured in one run are what to compare.

Usage: ``python bench/features.py [--sizes 60000 1000000] [--repeats 1]``.
Writes ``bench/results/features.json`` and ``bench/results/features.md``.

``python bench/features.py --nodes SOURCE_DIR [--engine partitioned]`` instead times
every feature and intermediate of ``build_features`` on an existing source folder: the
CPU seconds of each function's own call (its inputs not included), summed over the
partitions, and per theme (the module that defines it), in one process with Arrow on
one thread. CPU time rather than wall time: the machine here is shared. Writes
``bench/results/feature_nodes.json`` and ``bench/results/feature_nodes.md``.
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

STAGES: dict[str, str] = {
    "generate": """
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
generate_municipality(GeneratorConfig(n_addresses={n}, seed=1), out_dir=r"{src}",
                      truth_file=r"{truth}", fmt="parquet", progress=False)
""",
    "read_baseline": """
import pandas as pd, pathlib
for f in sorted(pathlib.Path(r"{src}").glob("*.parquet")):
    pd.read_parquet(f)
""",
    "validate": """
from stratum_ml.sources import load_sources
load_sources(r"{src}")
""",
    "features": """
import datetime as dt
from stratum_ml.sources import load_sources
from stratum_ml.features.build import build_feature_table
from stratum_ml.io import write_frame_atomic
t = load_sources(r"{src}")
table = build_feature_table(t, dt.date.fromisoformat("{as_of}"))
write_frame_atomic(table.reset_index(), r"{out}")
""",
}


NODES = """
import collections, datetime as dt, json, time
import pyarrow as pa
pa.set_cpu_count(1)
from stratum_ml.features import registry
from stratum_ml.features.asof import make_queries
from stratum_ml.features.partitioned import build_features_with
from stratum_ml.sources import load_sources
tables = load_sources(r"{src}")
seconds, themes = collections.Counter(), {{}}
plain_get = registry.Evaluator.get
def timed_get(self, name):
    if name in self._base or name in self._cache:
        return plain_get(self, name)
    node = self.registry.features.get(name) or self.registry.intermediates.get(name)
    kwargs = {{arg: timed_get(self, arg) for arg in node.inputs}}
    func = getattr(node.func, "func", node.func)
    themes[name] = func.__module__.rsplit(".", 1)[-1]
    start = time.process_time()
    value = node.func(**kwargs)
    seconds[name] += time.process_time() - start
    self._cache[name] = value
    return value
registry.Evaluator.get = timed_get
queries = make_queries(tables.addresses["address_id"], dt.date.fromisoformat("{as_of}"))
start, wall = time.process_time(), time.perf_counter()
build_features_with("{engine}", tables, queries)
print("NODES", json.dumps({{"cpu_seconds": time.process_time() - start,
    "wall_seconds": time.perf_counter() - wall, "queries": len(queries),
    "nodes": dict(seconds), "themes": themes}}))
"""


PEAK = """
import resource
print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_stage(code: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; its wall seconds and its own peak RSS (MiB)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + PEAK], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    peak = next(
        int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK_RSS")
    )
    return {"seconds": round(wall, 2), "peak_rss_mib": round(peak / 1024, 1)}


def bench_size(n: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"stratum-bench-{n}-") as tmp:
        src, truth, out = Path(tmp, "sources"), Path(tmp, "truth.parquet"), Path(tmp, "f.parquet")
        fmt = {"n": n, "src": src, "truth": truth, "out": out, "as_of": AS_OF}
        results: dict[str, Any] = {"addresses": n}
        results["generate"] = run_stage(STAGES["generate"].format(**fmt))
        size = sum(f.stat().st_size for f in src.iterdir())
        results["source_mib"] = round(size / 2**20, 1)
        for stage in ("read_baseline", "validate", "features"):
            runs = [run_stage(STAGES[stage].format(**fmt)) for _ in range(repeats)]
            results[stage] = min(runs, key=lambda r: r["seconds"])
        base = results["read_baseline"]["seconds"]
        results["validate_over_read"] = round(results["validate"]["seconds"] / base, 1)
        results["features_over_read"] = round(results["features"]["seconds"] / base, 1)
        return results


def profile_nodes(src: Path, engine: str) -> None:
    """Per feature, intermediate and theme: CPU seconds of ``build_features`` on ``src``."""
    code = NODES.format(src=src, as_of=AS_OF, engine=engine)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("NODES "))
    timed = json.loads(line.split(" ", 1)[1])
    by_theme: dict[str, float] = {}
    for name, sec in timed["nodes"].items():
        theme = timed["themes"][name]
        by_theme[theme] = by_theme.get(theme, 0.0) + sec
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
        "sources": str(src),
        "engine": engine,
        **{k: timed[k] for k in ("cpu_seconds", "wall_seconds", "queries")},
        "themes": {k: round(v, 2) for k, v in sorted(by_theme.items(), key=lambda x: -x[1])},
        "nodes": {k: round(v, 3) for k, v in sorted(timed["nodes"].items(), key=lambda x: -x[1])},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "feature_nodes.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# build_features: CPU seconds per theme and per function",
        "",
        f"{report['date']} — {report['machine']}; {report['queries']:,} queries, engine "
        f"{engine}; {report['cpu_seconds']:.1f} s CPU, {report['wall_seconds']:.1f} s wall",
        "",
        "| theme | CPU s |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in report["themes"].items()),
        "",
        "| function | CPU s |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in list(report["nodes"].items())[:25]),
    ]
    (RESULTS / "feature_nodes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[60_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--nodes", type=Path, help="time every function on this source folder")
    parser.add_argument("--engine", default="partitioned", choices=["local", "partitioned"])
    args = parser.parse_args()
    if args.nodes is not None:
        profile_nodes(args.nodes, args.engine)
        return
    rows = []
    for n in args.sizes:
        print(f"benchmarking {n:,} addresses ...", flush=True)
        rows.append(bench_size(n, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "note": "each stage runs in its own process; peak RSS is that process's ru_maxrss; "
        "wall time includes interpreter start-up and imports",
        "as_of": AS_OF,
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Feature pipeline benchmark",
        "",
        f"{report['date']} — {report['machine']}",
        "",
        "| addresses | source MiB | generate s | read (baseline) s | validate s | features s "
        "| validate / read | features / read | peak RSS features MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['addresses']:,} | {r['source_mib']} | {r['generate']['seconds']} "
            f"| {r['read_baseline']['seconds']} | {r['validate']['seconds']} "
            f"| {r['features']['seconds']} | {r['validate_over_read']} "
            f"| {r['features_over_read']} | {r['features']['peak_rss_mib']} |"
        )
    (RESULTS / "features.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
