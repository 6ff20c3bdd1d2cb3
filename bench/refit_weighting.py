"""Benchmark: plan visits weighted by 1/inclusion probability in the refit, or not (true precision).

For each seed, on a generated town with its truth, two loops run side by side, one per
``plan_visit_weighting`` of the refit (``none``, ``inverse_inclusion``):

1. the first model is refit (``training.refit.refit_on_all_visits``) on the town's past
   visits before the first cycle (policy and report visits: weight 1 in both arms);
2. every month the population is scored as of the first of the month, the true
   precision@k of the list is read from the truth file, and a visit plan is drawn
   (``runs.plan.draw_plan``, capacity ``--capacity``, exploration ``--share``);
3. the picks are visited: the truth of the run's date with the generator's imperfect
   detection (the same detection draws for an address in both arms);
4. the visits join the labels with their inclusion probability, and the model is refit
   on all labels -- in one arm with every visit at weight 1, in the other with each
   plan visit at ``1 / pi``.

The arms start from the same model (cycle 1 is shared); from cycle 2 on, each arm's
list is its own model's, and the plans it draws follow its own list (the loop feeds
its own choices back, which is the bias in question). The summary is the mean true
precision@k over cycles 2..N and seeds, and the number of cycles where the weighted
arm is at least as precise.

Library level (no store, no MLflow); small LightGBM (``--estimators``) and 3 folds, so
that it runs in minutes on a shared machine.

Usage: ``python bench/refit_weighting.py [--addresses 10000] [--seeds 1 2 3] [--cycles 7]``.
Writes ``bench/results/refit_weighting.json`` and ``bench/results/refit_weighting.md``
(``--name`` for another name).
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

import numpy as np
import pandas as pd

from stratum_ml.features.build import build_features
from stratum_ml.features.population import population_queries
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.runs.plan import draw_plan
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.generate import generate_tables
from stratum_ml.synthetic.truth import truth_at
from stratum_ml.training.config import RunConfig
from stratum_ml.training.refit import refit_on_all_visits

RESULTS = Path(__file__).parent / "results"
ARMS = ("none", "inverse_inclusion")
KS = (100, 500)
FEATURES = [
    "floor_area_m2",
    "tenure",
    "registered_persons",
    "m2_per_registered_person",
    "water_ratio_to_expected",
    "water_m3_year",
]


def _months(extract: dt.date, cycles: int) -> list[dt.date]:
    first = dt.date(extract.year, extract.month, 1)
    out = []
    for back in range(cycles, 0, -1):
        m = first.month - back
        y = first.year + (m - 1) // 12
        out.append(dt.date(y, (m - 1) % 12 + 1, 1))
    return out


def _refit(
    X: pd.DataFrame, visits: pd.DataFrame, arm: str, args: argparse.Namespace, seed: int
) -> RiskModel:
    config = RunConfig(
        lightgbm=LightGBMParams(n_estimators=args.estimators, early_stopping_rounds=20),
        seed=seed,
        plan_visit_weighting=arm,  # type: ignore[arg-type]
    )
    fit = refit_on_all_visits(X, visits["y"], visits, config, n_folds=3)
    return fit.model


def one_town(args: argparse.Namespace, seed: int) -> list[dict[str, Any]]:
    cfg = GeneratorConfig(n_addresses=args.addresses, seed=seed)
    town = generate_tables(cfg)
    months = _months(cfg.extract_date, args.cycles)
    past = town.sources.inspections
    past = past.loc[
        (past["inspected_at"] < pd.Timestamp(months[0]))
        & past["outcome"].isin(["violation", "no_violation"])
    ]
    base = pd.DataFrame(
        {
            "address_id": past["address_id"].astype(str).to_numpy(),
            "inspected_at": pd.to_datetime(past["inspected_at"]).to_numpy(),
            "reason": past["reason"].astype(str).to_numpy(),
            "y": (past["outcome"] == "violation").astype(int).to_numpy(),
            "inclusion_probability": np.nan,
        }
    )
    queries = pd.DataFrame(
        {"address_id": base["address_id"], "ref_date": base["inspected_at"].to_numpy()}
    )
    base_X = build_features(town.sources, queries, features=FEATURES)
    base_X.index = pd.RangeIndex(len(base_X))
    monthly = {}
    for day in months:
        q = population_queries(town.sources.addresses, pd.Timestamp(day))
        X = build_features(town.sources, q, features=FEATURES)
        monthly[day] = (X, truth_at(town.truth, X.index, day.isoformat()).astype(float))
    first = _refit(base_X, base, "none", args, seed)
    rows = []
    for arm in ARMS:
        model, labels_X, labels = first, [base_X], [base]
        for cycle, day in enumerate(months, 1):
            X, truth = monthly[day]
            n = len(X)
            score = model.raw_score(X[model.feature_names_in_])
            order = np.lexsort((X.index.to_numpy(), -score))
            ranks = np.empty(n, dtype=np.int64)
            ranks[order] = np.arange(1, n + 1)
            row: dict[str, Any] = {"seed": seed, "arm": arm, "cycle": cycle, "as_of": str(day)}
            row |= {f"true_p{k}": float(truth[ranks <= k].mean()) for k in KS}
            rows.append(row)
            plan = draw_plan(n, args.capacity, args.share, seed=seed * 1000 + cycle)
            pi = np.full(n + 1, np.nan)
            pi[plan["rank"].to_numpy()] = plan["inclusion_probability"].to_numpy()
            at = pi[ranks]  # each address's inclusion probability (NaN: not picked)
            sampled = ~np.isnan(at)
            u = np.random.default_rng(seed * 100 + cycle).random(n)  # same in both arms
            found = np.where(truth == 1, u < cfg.detection_rate, u < cfg.false_positive_rate)
            labels_X.append(X.loc[sampled].reset_index(drop=True)[base_X.columns])
            labels.append(
                pd.DataFrame(
                    {
                        "address_id": X.index[sampled].astype(str),
                        "inspected_at": np.full(int(sampled.sum()), np.datetime64(day, "ns")),
                        "reason": "risk_model",
                        "y": found[sampled].astype(int),
                        "inclusion_probability": at[sampled],
                    }
                )
            )
            all_X = pd.concat(labels_X, ignore_index=True)
            all_v = pd.concat(labels, ignore_index=True)
            model = _refit(all_X, all_v, arm, args, seed)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cycles", type=int, default=7)
    parser.add_argument("--capacity", type=int, default=250)
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--estimators", type=int, default=200)
    parser.add_argument("--name", default="refit_weighting", help="results file name")
    args = parser.parse_args()
    start = time.perf_counter()
    cpu = time.process_time()
    rows = [row for seed in args.seeds for row in one_town(args, seed)]
    seconds = round(time.perf_counter() - start, 1)
    frame = pd.DataFrame(rows)
    later = frame.loc[frame["cycle"] >= 2]
    summary: dict[str, Any] = {}
    for arm, part in later.groupby("arm"):
        summary[str(arm)] = {f"mean_true_p{k}": float(part[f"true_p{k}"].mean()) for k in KS}
    paired = later.pivot_table(index=["seed", "cycle"], columns="arm", values="true_p500")
    diff = paired["inverse_inclusion"] - paired["none"]
    summary["difference_p500"] = {
        "mean": float(diff.mean()),
        "se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
        "weighted_at_least_as_good": int((diff >= 0).sum()),
        "cycles": len(diff),
    }
    payload = {
        "measured": dt.date.today().isoformat(),
        "machine": platform.platform(),
        "load": f"{os.cpu_count()} cores shared with other work; wall {seconds} s, "
        f"CPU {round(time.process_time() - cpu, 1)} s",
        "args": vars(args),
        "summary": summary,
        "cycles": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    d = summary["difference_p500"]
    lines = [
        "# Plan visits weighted by 1/inclusion probability in the refit, or not",
        "",
        f"{args.addresses:,}-address generated towns, seeds {args.seeds}, {args.cycles} monthly "
        f"cycles, capacity {args.capacity}, exploration share {args.share:g}; refit "
        f"(`refit_on_all_visits`, 3 folds, at most {args.estimators} trees) on all labels each "
        f"cycle; measured {payload['measured']} by `python bench/refit_weighting.py "
        f"--addresses {args.addresses} --seeds {' '.join(map(str, args.seeds))} "
        f"--cycles {args.cycles} --share {args.share:g} --name {args.name}` "
        f"({payload['load']}).",
        "",
        "True precision@k of each arm's own list (truth file), mean over cycles 2.."
        f"{args.cycles} and seeds (cycle 1 is the shared first model):",
        "",
        "| plan_visit_weighting | " + " | ".join(f"true precision@{k}" for k in KS) + " |",
        "|---|" + "---|" * len(KS),
    ]
    for arm in ARMS:
        cells = " | ".join(f"{summary[arm][f'mean_true_p{k}']:.3f}" for k in KS)
        lines.append(f"| {arm} | {cells} |")
    lines += [
        "",
        f"Paired difference (inverse_inclusion - none) of true precision@500: {d['mean']:+.3f} "
        f"(SE {d['se']:.3f}); the weighted arm is at least as precise in "
        f"{d['weighted_at_least_as_good']} of {d['cycles']} cycles.",
        "",
        "| seed | cycle | " + " | ".join(f"{a} @500" for a in ARMS) + " |",
        "|---|---|" + "---|" * len(ARMS),
    ]
    for (seed, cycle), values in paired.iterrows():
        lines.append(f"| {seed} | {cycle} | " + " | ".join(f"{values[a]:.3f}" for a in ARMS) + " |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
