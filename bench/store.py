"""Benchmark: one decision write and one feedback write with 100,000 rows already stored.

For each database of the operational store (a SQLite file; a PostgreSQL server
started from the Debian package as the tests do, see ``tests/pg_server.py``):
fill ``decisions`` and ``visit_outcomes`` with ``--rows`` rows each (bulk
insert), then time ``--writes`` calls of :meth:`DecisionStore.record` (half of
them a first decision on an address, half superseding an address's open
decision, so the chain check runs on an address with history) and of
:meth:`OutcomeStore.record` (contract checks, duplicate check, insert, commit),
one at a time, alternating between the two, and report p50 and p99.

For context: the CSV store this replaces rewrote the whole file on every
write, 347 ms per feedback write at 100,000 stored rows (measured in issue 8);
the goal is a p99 under 20 ms on both databases.

Usage: ``python bench/store.py [--rows 100000] [--writes 400]``.
Writes ``bench/results/store.json`` and ``bench/results/store.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.pg_server starts the PostgreSQL server

from sqlalchemy import insert  # noqa: E402
from tests.pg_server import PostgresServer  # noqa: E402

from stratum_ml.serving.decisions import DecisionStore  # noqa: E402
from stratum_ml.serving.outcomes import OutcomeStore  # noqa: E402
from stratum_ml.store import Store, open_store  # noqa: E402
from stratum_ml.store.tables import DecisionRow, VisitOutcomeRow  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CSV_FEEDBACK_MS_AT_100K = 347.0
GOAL_P99_MS = 20.0
CHUNK = 10_000


def address(i: int) -> str:
    return f"0479{i:012d}"


def fill(store: Store, rows: int) -> None:
    """``rows`` decisions (one per address) and ``rows`` visit outcomes, in bulk."""
    now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    with store.transaction() as session:
        for start in range(0, rows, CHUNK):
            span = range(start, min(start + CHUNK, rows))
            session.execute(
                insert(DecisionRow),
                [
                    {
                        "decision_id": f"dec-{i:032x}",
                        "address_id": address(i),
                        "decision": "decline",
                        "reason": "prefilled for the benchmark",
                        "decided_at": now,
                        "decided_by": "0123456789abcdef",
                        "role": "analyst",
                        "key_name": "bench",
                        "model_version": "1",
                        "scoring_date": dt.date(2026, 10, 1),
                        "rank_at_decision": i + 1,
                        "probability_at_decision": 0.1,
                    }
                    for i in span
                ],
            )
            session.execute(
                insert(VisitOutcomeRow),
                [
                    {
                        "inspection_id": f"svc-{i:032x}",
                        "address_id": address(i),
                        "inspected_at": dt.date(2026, 1, 1) + dt.timedelta(days=i % 300),
                        "reason": "report",
                        "outcome": "no_violation",
                        "violation_type": None,
                        "recorded_at": now,
                        "recorded_by": "0123456789abcdef",
                    }
                    for i in span
                ],
            )


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def measure(store: Store, rows: int, writes: int) -> dict[str, Any]:
    decisions = DecisionStore(store)
    outcomes = OutcomeStore(store, [address(i) for i in range(rows + writes)])
    decision_ms: list[float] = []
    feedback_ms: list[float] = []
    for n in range(writes):
        common = {
            "decision": "pass_on_for_visit",
            "reason": "benchmark decision",
            "decided_by": "0123456789abcdef",
            "role": "analyst",
            "key_name": "bench",
            "model_version": "2",
            "scoring_date": dt.date(2026, 11, 1),
            "rank": n + 1,
            "probability": 0.5,
            "idempotency_key": f"bench-decision-{n}",
        }
        started = time.perf_counter()
        if n % 2:  # an address with an open decision: supersede it
            decisions.record(address_id=address(n), supersedes=f"dec-{n:032x}", **common)
        else:  # an address without decisions
            decisions.record(address_id=address(rows + n), **common)
        decision_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        outcomes.record(
            address_id=address(n),
            inspected_at=dt.date(2026, 10, 31),
            reason="risk_model",
            outcome="violation",
            violation_type="overcrowding",
            recorded_by="0123456789abcdef",
            idempotency_key=f"bench-feedback-{n}",
        )
        feedback_ms.append((time.perf_counter() - started) * 1000)
    return {"decision_write": percentiles(decision_ms), "feedback_write": percentiles(feedback_ms)}


def run_on(url: str, rows: int, writes: int) -> dict[str, Any]:
    store = open_store(url)
    try:
        started = time.perf_counter()
        fill(store, rows)
        filled_s = time.perf_counter() - started
        result = measure(store, rows, writes)
    finally:
        store.close()
    return {"prefill_s": round(filled_s, 1), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=400)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stratum-bench-store-") as tmp:
        results["sqlite"] = run_on(f"sqlite:///{Path(tmp) / 'stratum.db'}", args.rows, args.writes)
    server = PostgresServer().start()
    try:
        results["postgresql"] = run_on(server.database_url("bench"), args.rows, args.writes)
    finally:
        server.stop()
    report = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "rows_stored": args.rows,
        "writes_timed": args.writes,
        "goal_p99_ms": GOAL_P99_MS,
        "csv_store_feedback_ms_at_100k": CSV_FEEDBACK_MS_AT_100K,
        "results": results,
        "notes": (
            "SQLite: WAL, synchronous=FULL (default), BEGIN IMMEDIATE. PostgreSQL 15 from "
            "Debian, started by tests/pg_server.py with fsync=off (a test server): its "
            "numbers leave out the disk flush a production server makes on commit."
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    lines = [
        "# Operational store: one write with 100,000 rows stored",
        "",
        f"{report['date']}, {report['machine']}; {args.rows:,} decisions and {args.rows:,} "
        f"visit outcomes stored, {args.writes} writes of each timed (`python bench/store.py`).",
        "",
        "| database | write | p50 ms | p99 ms | max ms | goal p99 < 20 ms |",
        "|---|---|---:|---:|---:|---|",
    ]
    for database, result in results.items():
        for write in ("decision_write", "feedback_write"):
            r = result[write]
            ok = "yes" if r["p99_ms"] < GOAL_P99_MS else "**no**"
            lines.append(
                f"| {database} | {write.replace('_', ' ')} | {r['p50_ms']} | {r['p99_ms']} | "
                f"{r['max_ms']} | {ok} |"
            )
    lines += [
        "",
        f"For comparison, the CSV store this replaces: {CSV_FEEDBACK_MS_AT_100K:.0f} ms per "
        "feedback write at 100,000 stored rows (it rewrote the whole file; issue 8).",
        "",
        report["notes"],
        "",
    ]
    (RESULTS / "store.md").write_text("\n".join(lines), "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
