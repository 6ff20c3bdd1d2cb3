"""Benchmark: the registered refit on every visit against the split model, in truth.

For each seed, a generated town is trained once (``train_model``, default config
without the mitigation comparison); the split model (what the evaluation measured)
and the registered final fit on every labelled visit (``training/refit.py``) then
score every dwelling as of the extract date, the date a model is used after its
training, and their true precision@k is read from the town's truth file.

Usage: ``python bench/refit.py [--seeds 3 5 7 11 13] [--addresses 12000]``.
Writes ``bench/results/refit.json`` and ``bench/results/refit.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

from stratum_ml.evaluation.truth import true_precision
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.sources import extract_date
from stratum_ml.synthetic.generate import GeneratorConfig, generate_tables
from stratum_ml.training.config import RunConfig
from stratum_ml.training.train import train_model

RESULTS = Path(__file__).parent / "results"
KS = (100, 250, 500)


def one_town(seed: int, n: int) -> dict[str, Any]:
    town = generate_tables(GeneratorConfig(n_addresses=n, seed=seed))
    outcome = train_model(town.sources, town.audit, RunConfig(evaluate_mitigations=False))
    assert outcome.final_fit is not None
    as_of = extract_date(town.sources).date
    row: dict[str, Any] = {
        "seed": seed,
        "as_of": str(as_of),
        "visits": outcome.final_fit.n_visits,
        "split_train_visits": outcome.periods["train_n"],
        "rounds": outcome.final_fit.n_rounds,
    }
    for name, model in (("split", outcome.model), ("refit", outcome.registered_model)):
        scorer = Scorer.from_sources(model, town.sources, as_of)
        table = true_precision(scorer.table["raw_score"], town.truth, as_of, KS)
        values = table.loc[table["ranking"] == "model"].set_index("k")["true_precision"]
        row |= {f"{name}_at_{k}": float(values[k]) for k in KS}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 7, 11, 13])
    parser.add_argument("--addresses", type=int, default=12_000)
    args = parser.parse_args()
    rows = [one_town(seed, args.addresses) for seed in args.seeds]
    means = {
        f"{name}_at_{k}": sum(r[f"{name}_at_{k}"] for r in rows) / len(rows)
        for name in ("split", "refit")
        for k in KS
    }
    result = {
        "measured": dt.date.today().isoformat(),
        "machine": platform.platform(),
        "addresses": args.addresses,
        "rows": rows,
        "mean": means,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "refit.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    lines = [
        "# Refit on every visit against the split model (true precision@k)",
        "",
        f"{args.addresses:,}-address generated towns, scored as of each town's extract date; "
        f"measured {result['measured']} by `python bench/refit.py`.",
        "",
        "| seed | visits | split train visits | rounds | "
        + " | ".join(f"split @{k} | refit @{k}" for k in KS)
        + " |",
        "|" + "---|" * (4 + 2 * len(KS)),
    ]
    for r in rows:
        cells = " | ".join(f"{r[f'split_at_{k}']:.3f} | {r[f'refit_at_{k}']:.3f}" for k in KS)
        lines.append(
            f"| {r['seed']} | {r['visits']} | {r['split_train_visits']} | {r['rounds']} | {cells} |"
        )
    cells = " | ".join(f"{means[f'split_at_{k}']:.3f} | {means[f'refit_at_{k}']:.3f}" for k in KS)
    lines.append(f"| mean | | | | {cells} |")
    better = sum(r["refit_at_500"] >= r["split_at_500"] for r in rows)
    lines += ["", f"The refit is at least as precise @500 in {better} of {len(rows)} towns."]
    (RESULTS / "refit.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
