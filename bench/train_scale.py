"""Benchmark: ``stratum train`` on a source folder (1M addresses), per phase.

Runs what ``stratum train --sources DIR --no-feedback`` runs, in this process: validate
the sources, ``train_model`` with the default run config, and record the run in
MLflow (a store of its own in a temporary ``STRATUM_HOME``). Each phase is a step
``train_model`` announces (its ``say`` lines) plus loading and the MLflow record; per
phase it records the CPU seconds of the process (user + sys, every thread), the wall
seconds and the peak RSS reached by the end of the phase (``ru_maxrss``, which only
grows: a phase that raised it is where the peak was reached).

On a shared machine the wall time depends on the other jobs; the CPU seconds are the
measure (the goal is under 600 s wall on 2 idle cores). The load average at start and
end is recorded with the result.

Usage: ``python bench/train_scale.py --sources DIR [--label 1m]``.
Writes ``bench/results/train_scale_<label>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class PhaseClock:
    """CPU seconds, wall seconds and peak RSS of consecutive named phases."""

    phases: list[dict[str, Any]] = field(default_factory=list)
    _name: str | None = None
    _cpu: float = 0.0
    _wall: float = 0.0

    def mark(self, name: str) -> None:
        """End the running phase (if any) and start ``name``."""
        cpu, wall = _cpu_seconds(), time.perf_counter()
        if self._name is not None:
            self.phases.append(
                {
                    "phase": self._name,
                    "cpu_seconds": round(cpu - self._cpu, 1),
                    "wall_seconds": round(wall - self._wall, 1),
                    "peak_rss_mib": round(_peak_rss_mib()),
                }
            )
            print(self.phases[-1], flush=True)
        self._name, self._cpu, self._wall = name, cpu, wall

    def stop(self) -> None:
        """End the running phase."""
        self.mark("")
        self._name = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=Path, required=True)
    parser.add_argument("--label", default="1m")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="stratum-train-scale-")
    os.environ["STRATUM_HOME"] = home
    from stratum_ml.config import get_settings
    from stratum_ml.sources import load_audit_tables, load_sources
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.tracking import log_training_run
    from stratum_ml.training.train import train_model

    load_start = os.getloadavg()[0]
    clock = PhaseClock()
    clock.mark("validating the sources")
    tables = load_sources(args.sources)
    audit = load_audit_tables(args.sources)
    outcome = train_model(tables, audit, RunConfig(), say=clock.mark)
    clock.mark("recording the run in MLflow")
    log_training_run(outcome, settings=get_settings(), source_dir=args.sources)
    clock.stop()

    total_cpu = sum(p["cpu_seconds"] for p in clock.phases)
    total_wall = sum(p["wall_seconds"] for p in clock.phases)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "sources": str(args.sources),
        "addresses": len(tables.addresses),
        "visits_labelled": int(
            outcome.periods["train_n"] + outcome.periods["tune_n"] + outcome.periods["holdout_n"]
        ),
        "population_n": outcome.periods["population_n"],
        "total_cpu_seconds": round(total_cpu, 1),
        "total_wall_seconds": round(total_wall, 1),
        "peak_rss_mib": round(_peak_rss_mib()),
        "phases": clock.phases,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"train_scale_{args.label}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Training at scale: `stratum train` on {result['addresses']:,} addresses",
        "",
        f"{result['date']} — {result['machine']}; load average at start / end "
        f"{result['load_average_start_end'][0]} / {result['load_average_start_end'][1]} "
        "(a shared machine: CPU seconds are the measure, wall seconds depend on the "
        "other jobs). Peak RSS is the process's peak reached by the end of the phase.",
        "",
        f"{result['visits_labelled']:,} labelled visits, population of "
        f"{result['population_n']:,} dwellings. Total: {result['total_cpu_seconds']} CPU s, "
        f"{result['total_wall_seconds']} wall s, peak RSS {result['peak_rss_mib']} MiB.",
        "",
        "| phase | CPU s | wall s | peak RSS MiB |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {p['phase']} | {p['cpu_seconds']} | {p['wall_seconds']} | {p['peak_rss_mib']} |"
        for p in clock.phases
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
