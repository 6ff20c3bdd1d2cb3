"""Benchmark: pseudonymise 10 million raw registration rows (BRP), streaming.

A child process first writes a raw BRP extract (CSV) of ``--rows`` rows: made-up
BSNs that pass the elfproef (about 2.5 rows per person), Dutch-sounding family
names with prefixes, written in several ways, initials, addresses and dates; and
the two other required tables, tiny. A second child process runs
``pseudonymise`` on it with the example mapping's registrations part; its wall
time and peak RSS (``ru_maxrss``) are its own.

Usage: ``python bench/pseudonymise.py [--rows 4000000 10000000] [--chunk-rows 100000 500000]``
(every file size with every chunk size).
Writes ``bench/results/pseudonymise.json`` and ``bench/results/pseudonymise.md``.
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

MAKE_RAW = """
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv, pathlib
from stratum_ml.synthetic.raw import bsn_numbers, _STEMS, _ENDINGS
raw = pathlib.Path(r"{raw}")
raw.mkdir(parents=True)
rng = np.random.default_rng(1)
n, chunk = {rows}, 1_000_000
persons = max(n * 2 // 5, 1)
prefixes = np.array(["", "", "", "", "", "de ", "van ", "van der ", "van den ", "ter ", "van 't "])
stems = np.array([a + b.lower() + c for a in _STEMS for b in _STEMS[:20] for c in _ENDINGS[3:]])
with open(raw / "brp_verblijfplaatsen.csv", "wb") as fh:
    writer = None
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        person = rng.integers(0, persons, k)
        family = person // 3
        name = prefixes[family % len(prefixes)].astype(object) + stems[family % len(stems)]
        style = rng.integers(0, 4, k)
        name = np.where(style == 1, np.char.upper(name.astype(str)), name.astype(str))
        table = pa.table({{
            "bsn": bsn_numbers(person, seed=1),
            "voorletters": np.array(["J.", "A.M.", "P.", "K.L."])[rng.integers(0, 4, k)],
            "adresseerbaar_object": np.char.add("04790100000", np.char.zfill(
                (person % 10).astype(str), 5)),
            "datum_aanvang": np.datetime_as_string(
                np.datetime64("2016-01-01") + rng.integers(0, 3000, k).astype("timedelta64[D]")),
            "datum_einde": np.full(k, ""),
            "geboortejaar": (1930 + person % 90).astype(str),
            "geslachtsnaam": name,
        }})
        if writer is None:
            writer = pacsv.CSVWriter(fh, table.schema)
        writer.write_table(table)
    writer.close()
addr = "\\n".join(
    f"04790100000{{i:05d}},04791000000{{i:05d}},1234AB,{{i + 1}},,WK047901,BU04790101,80,"
    "woonfunctie,1990,private_rent,," for i in range(10)
)
(raw / "bag.csv").write_text(
    "identificatie,pand_identificatie,postcode,huisnummer,huisnummertoevoeging,district_code,"
    "neighbourhood_code,floor_area_m2,use_purpose,construction_year,tenure,x_rd,y_rd\\n"
    + addr + "\\n"
)
(raw / "huisbezoeken.csv").write_text(
    "inspection_id,address_id,inspected_at,reason,outcome,violation_type\\n"
    "I000000001,0479010000000001,2024-01-02,report,no_violation,\\n"
)
"""

RUN = """
import yaml
from stratum_ml.pseudonymise.keys import PseudonymKey
from stratum_ml.pseudonymise.mapping import Mapping
from stratum_ml.pseudonymise.run import pseudonymise
spec = yaml.safe_load(open(r"{mapping}"))
tables = {{t: spec["tables"][t] for t in ("addresses", "registrations", "inspections")}}
tables["addresses"]["file"] = "bag"
mapping = Mapping.model_validate({{"version": 1, "tables": tables}})
report = pseudonymise(r"{raw}", mapping, r"{out}", PseudonymKey.new(), chunk_rows={chunk_rows})
print("ROWS", report.tables[1].rows)
"""

PEAK = """
import resource
print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_stage(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its wall seconds and its own peak RSS (MiB)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + PEAK], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"stage failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - start
    lines = done.stdout.splitlines()
    peak = next(int(line.split()[1]) for line in lines if line.startswith("PEAK_RSS"))
    rows = next((int(line.split()[1]) for line in lines if line.startswith("ROWS")), None)
    return {"seconds": round(wall, 1), "peak_rss_mib": round(peak / 1024, 1), "rows": rows}


def measure(rows: int, chunk_rows: list[int], mapping: Path) -> list[dict[str, Any]]:
    """Write one raw extract of ``rows`` rows and pseudonymise it once per chunk size."""
    results = []
    with tempfile.TemporaryDirectory(prefix="stratum-bench-pseudonymise-") as tmp:
        raw = Path(tmp, "raw")
        print(f"writing {rows:,} raw registration rows ...", flush=True)
        make = run_stage(MAKE_RAW.format(raw=raw, rows=rows))
        raw_mib = round((raw / "brp_verblijfplaatsen.csv").stat().st_size / 2**20, 1)
        for chunk in chunk_rows:
            out = Path(tmp, f"out-{chunk}")
            print(f"pseudonymising in chunks of {chunk:,} rows ...", flush=True)
            fmt = {"raw": raw, "out": out, "mapping": mapping, "chunk_rows": chunk}
            stage = run_stage(RUN.format(**fmt))
            results.append(
                {
                    "rows": stage["rows"],
                    "raw_csv_mib": raw_mib,
                    "output_parquet_mib": round(
                        (out / "registrations.parquet").stat().st_size / 2**20, 1
                    ),
                    "chunk_rows": chunk,
                    "make_raw_seconds": make["seconds"],
                    "pseudonymise": {k: stage[k] for k in ("seconds", "peak_rss_mib")},
                    "rows_per_second": round(stage["rows"] / stage["seconds"]),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[4_000_000, 10_000_000])
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[100_000, 500_000])
    args = parser.parse_args()
    mapping = Path(__file__).parents[1] / "examples" / "mapping.yaml"
    results = [r for rows in args.rows for r in measure(rows, args.chunk_rows, mapping)]
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "note": "pseudonymise runs in its own process; peak RSS is its ru_maxrss; wall time "
        "includes interpreter start-up and imports; two pseudonym columns (person_id from "
        "the BSN, surname_key from the family name), about 2.5 rows per person. Memory "
        "follows the chunk size, not the file: the same chunk gives the same peak at "
        "every file size",
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pseudonymise.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Pseudonymisation benchmark",
        "",
        f"{report['date']} — {report['machine']}",
        "",
        "| rows | raw CSV MiB | chunk rows | seconds | rows/s | peak RSS MiB | output MiB |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['rows']:,} | {r['raw_csv_mib']} | {r['chunk_rows']:,} "
            f"| {r['pseudonymise']['seconds']} | {r['rows_per_second']:,} "
            f"| {r['pseudonymise']['peak_rss_mib']} | {r['output_parquet_mib']} |"
            for r in results
        ),
        "",
        report["note"] + ".",
    ]
    (RESULTS / "pseudonymise.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
