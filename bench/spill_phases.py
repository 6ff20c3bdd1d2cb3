"""Benchmark: where ``stratum features --engine partitioned`` spends memory, per phase.

Runs what the command runs (``features_from_folder`` on a source folder, then the
Parquet write) in this process, with a thread reading the resident set size from
``/proc/self/statm`` every 20 ms; each phase reports the largest RSS seen while it
ran (MiB) and its wall time. Worker processes (``--workers 2``) are measured by
their own peak (``ru_maxrss`` of the children).

Usage: ``python bench/spill_phases.py --sources /work/data/town1m/sources
[--partitions N] [--workers 2]``. The result is appended to
``bench/results/spill_phases.json`` and ``spill_phases.md`` is rewritten from it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
AS_OF = dt.date(2026, 6, 1)
PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_all() -> float:
    """CPU seconds (user + system) of this process and of its reaped children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Sampler:
    """The largest RSS of this process per named phase."""

    def __init__(self) -> None:
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds of this process (all its threads)
        #: CPU seconds of this process and its reaped worker processes (a phase's pool is
        #: shut down within the phase, so its workers are reaped by its end)
        self.cpu_all: dict[str, float] = {}
        self._since = time.perf_counter()
        self._cpu_since = time.process_time()
        self._cpu_all_since = _cpu_all()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss_mib(self) -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._rss_mib()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            time.sleep(0.02)

    def enter(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + now - self._since
        self._since = now
        cpu = time.process_time()
        self.cpu[self.phase] = self.cpu.get(self.phase, 0.0) + cpu - self._cpu_since
        self._cpu_since = cpu
        cpu_all = _cpu_all()
        self.cpu_all[self.phase] = self.cpu_all.get(self.phase, 0.0) + cpu_all - self._cpu_all_since
        self._cpu_all_since = cpu_all
        rss = self._rss_mib()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
        print(
            f"{time.strftime('%H:%M:%S')} {self.phase}: {self.seconds[self.phase]:.1f} s "
            f"({self.cpu[self.phase]:.1f} s CPU, {self.cpu_all[self.phase]:.1f} with workers), "
            f"peak {self.peaks[self.phase]:.0f} MiB; now {phase} (RSS {rss:.0f} MiB, "
            f"load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        self.phase = phase
        self.peaks[phase] = max(self.peaks.get(phase, 0.0), rss)

    def stop(self) -> None:
        self.enter("end")
        self._stop.set()
        self._thread.join()


def wrap(module: Any, name: str, sampler: Sampler, phase: str) -> None:
    """Enter ``phase`` whenever ``module.name`` is called."""
    original: Callable[..., Any] = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        sampler.enter(phase)
        return original(*args, **kwargs)

    setattr(module, name, wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=Path, required=True)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--label", default="", help="what was measured (a branch, a change)")
    parser.add_argument(
        "--no-record", action="store_true", help="print the result only (no results file)"
    )
    parser.add_argument("--save", type=Path, help="also keep the features here (Parquet)")
    args = parser.parse_args()

    from stratum_ml.features import spill

    # the phases' own log (features_from_folder: wall and CPU seconds of each phase)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger(spill.__name__).setLevel(logging.INFO)
    from stratum_ml.io import write_frame_atomic

    sampler = Sampler()
    wrap(spill, "split_sources", sampler, "validate + split")
    wrap(spill, "make_queries", sampler, "queries")
    wrap(spill, "town_wide", sampler, "town-wide facts + copies")
    wrap(spill, "assemble_partitions", sampler, "partitions + assemble")
    start = time.perf_counter()
    table = spill.features_from_folder(
        args.sources, AS_OF, n_partitions=args.partitions, workers=args.workers
    )
    sampler.enter("write")
    with tempfile.TemporaryDirectory() as tmp:
        write_frame_atomic(table.reset_index(), args.save or Path(tmp) / "features.parquet")
    sampler.stop()
    wall = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    row = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sources": str(args.sources),
        "label": args.label,
        "addresses": len(table),
        "partitions": args.partitions,
        "workers": args.workers,
        "load_average": os.getloadavg(),
        "seconds": round(wall, 1),
        "peak_rss_mib": round(own, 1),
        "peak_rss_worker_mib": round(workers, 1) if args.workers > 1 else None,
        "phases": {
            p: {
                "peak_rss_mib": round(sampler.peaks[p], 1),
                "seconds": round(s, 1),
                "cpu_seconds": round(sampler.cpu[p], 1),
                "cpu_seconds_with_workers": round(sampler.cpu_all[p], 1),
            }
            for p, s in sampler.seconds.items()
            if p in sampler.peaks and p not in ("start", "end")
        },
    }
    print(json.dumps(row, indent=2))
    if args.no_record:
        return
    path = RESULTS / "spill_phases.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows.append(row)
    path.write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# `stratum features --engine partitioned`: peak RSS per phase",
        "",
        "One process (and its workers); RSS sampled every 20 ms from /proc/self/statm.",
        "",
        "| date | label | addresses | partitions | workers | load avg | phase | seconds | CPU s "
        "| CPU s with workers | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = (
            f"| {r['date']} | {r.get('label', '')} | {r['addresses']:,} | "
            f"{r['partitions'] or 'default'} | "
            f"{r['workers']} | {r['load_average'][0]:.1f} |"
        )
        for p, v in r["phases"].items():
            cpu = v.get("cpu_seconds", "")
            cpu_all = v.get("cpu_seconds_with_workers", "")
            lines.append(f"{head} {p} | {v['seconds']} | {cpu} | {cpu_all} | {v['peak_rss_mib']} |")
        total = f"{r['peak_rss_mib']}"
        if r.get("peak_rss_worker_mib"):
            total += f" (each worker at most {r['peak_rss_worker_mib']})"
        lines.append(f"{head} **all (ru_maxrss)** | {r['seconds']} | | | {total} |")
    (RESULTS / "spill_phases.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
