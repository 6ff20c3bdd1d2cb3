"""One training: visits -> features as of each visit -> model -> honest evaluation -> audit.

:func:`train_model` does the work and returns a
:class:`~stratum_ml.training.outcome.TrainingOutcome`; ``tracking.log_training_run``
records it in MLflow and registers the model as ``challenger``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stratum_ml.evaluation.explain import shap_importance, shap_summary_plot
from stratum_ml.evaluation.fairness import FairnessResult, fairness_audit, proxy_check
from stratum_ml.evaluation.gates import GateVerdict, fairness_gate
from stratum_ml.evaluation.metrics import (
    HonestEstimate,
    calibration_table,
    classification_report,
    plot_calibration,
    top_k_mask,
    wilson_interval,
)
from stratum_ml.evaluation.sensitive import address_groups
from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.sources.tables import AuditTables, SourceTables
from stratum_ml.training.config import RunConfig
from stratum_ml.training.dataset import TrainingSet, build_training_set
from stratum_ml.training.holdout import (
    RANDOM_REASON,
    honest_estimates,
    naive_estimates,
    ranked_population,
)
from stratum_ml.training.model import RiskModel
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.propensity import visit_propensity
from stratum_ml.training.split import TimeSplit, time_split

log = logging.getLogger(__name__)
Say = Callable[[str], None]

#: the attribute group-aware reweighting balances
REWEIGHT_ATTRIBUTE = "any_resident_born_outside_europe"
#: the "current practice" baseline: rank by reports in the past year
CURRENT_PRACTICE_FEATURE = "reports_all_365d"


def residential_population(tables: SourceTables, as_of: pd.Timestamp) -> pd.DataFrame:
    """Queries for every dwelling (BAG use purpose woonfunctie) as of ``as_of``."""
    a = tables.addresses
    ids = a.loc[a["use_purpose"] == "woonfunctie", "address_id"]
    return make_queries(ids, as_of)


@dataclass
class _Assessment:
    honest: dict[int, HonestEstimate]
    fairness: FairnessResult
    verdict: GateVerdict


def _with_facts(X: pd.DataFrame, ts: TrainingSet) -> pd.DataFrame:
    return X.assign(
        label=ts.y.to_numpy(),
        reason=ts.visits["reason"].astype("str").to_numpy(),
        inspected_at=ts.visits["inspected_at"].to_numpy(),
        address_id=ts.visits["address_id"].to_numpy(),
    )


def _reweigh(groups: pd.Series, y: pd.Series) -> np.ndarray:
    """Kamiran & Calders reweighing: w(g, y) = P(g) P(y) / P(g, y)."""
    frame = pd.DataFrame({"g": groups.fillna("missing").to_numpy(), "y": y.to_numpy()})
    p_g = frame["g"].map(frame["g"].value_counts(normalize=True))
    p_y = frame["y"].map(frame["y"].value_counts(normalize=True))
    p_gy = frame.groupby(["g", "y"])["y"].transform("size") / len(frame)
    return (p_g * p_y / p_gy).to_numpy(dtype=float)


def train_model(
    tables: SourceTables,
    audit: AuditTables | None,
    config: RunConfig | None = None,
    *,
    say: Say | None = None,
) -> TrainingOutcome:
    """Train, evaluate honestly, explain and audit one model (nothing is tracked here).

    Parameters
    ----------
    tables
        Validated source tables; labels come from ``inspections``.
    audit
        Protected attributes for the fairness audit (``None``: audit by district and
        neighbourhood only). They never reach a feature.
    config
        Run configuration (default :class:`RunConfig`).
    say
        Called with a short line at each step (progress for the CLI).
    """
    config = config or RunConfig()
    say = say or log.info
    approved = FeatureSet.default()

    say("building features as of each visit date")
    ts_all = build_training_set(tables, approved)
    absent = dict(ts_all.X.attrs.get("absent_features", {}))
    skip = set(config.exclude_features) | set(absent)
    feature_set = FeatureSet(
        name=config.feature_set,
        features=tuple(f for f in approved.features if f not in skip),
        params=config.feature_params,
    )
    evaluation_features = [f for f in approved.features if f not in absent]
    ts_eval = TrainingSet(ts_all.X[evaluation_features], ts_all.y, ts_all.visits)
    split = time_split(ts_eval.visits["inspected_at"], config.split)
    train, tune, holdout_ts = (ts_eval.subset(m) for m in (split.train, split.tune, split.holdout))
    if train.y.nunique() < 2:
        raise ValueError("the training period holds only one outcome; more visits are needed")

    weights = pd.Series(1.0, index=ts_eval.X.index)
    say("fitting the visit-propensity model (how selective were past visits?)")
    fit_part = ts_eval.subset(split.train | split.tune)
    prop = visit_propensity(
        tables,
        fit_part.visits,
        fit_part.X[list(feature_set.features)],
        feature_set,
        controls_per_visit=config.propensity_controls,
        clip=config.ipw_clip,
        seed=config.seed,
        n_jobs=config.lightgbm.n_jobs,
    )
    extra_metrics: dict[str, float] = prop.summary()
    if config.weighting == "ipw":
        weights.loc[prop.weights.index] = prop.weights

    say("scoring the population as of the holdout start")
    population_queries = residential_population(tables, split.holdout_start)
    population = build_features(
        tables, population_queries, features=evaluation_features, params=config.feature_params
    )
    holdout = _with_facts(holdout_ts.X, holdout_ts)

    groups_holdout = address_groups(
        tables,
        audit,
        make_queries(holdout["address_id"], holdout["inspected_at"], index=holdout.index),
    )
    groups_population = address_groups(tables, audit, population_queries)

    def fit(features: list[str], w: pd.Series) -> RiskModel:
        model = RiskModel(config.lightgbm, config.calibration, config.seed)
        model.fit(
            train.X[features],
            train.y,
            X_tune=tune.X[features],
            y_tune=tune.y,
            sample_weight=w.loc[train.X.index].to_numpy(),
            tune_weight=w.loc[tune.X.index].to_numpy(),
        )
        return model

    fairness_k = max(config.ks)

    def assess(model: RiskModel) -> _Assessment:
        honest = honest_estimates(model, holdout, population, config.ks)
        scores, _, labels = ranked_population(model, holdout, population, visits="all")
        placed = population.index[~population.index.isin(holdout["address_id"])]
        sensitive = pd.concat([groups_population.loc[placed], groups_holdout], ignore_index=True)
        selected = top_k_mask(scores, min(fairness_k, len(scores)), seed=config.seed)
        result = fairness_audit(
            labels,
            selected.astype(float),
            scores,
            sensitive,
            min_group_size=config.fairness.min_group_size,
            seed=config.seed,
        )
        return _Assessment(honest, result, fairness_gate(result, config.fairness))

    say("training the model")
    variants: dict[str, tuple[RiskModel, list[str]]] = {}
    base_features = list(feature_set.features)
    variants["none"] = (fit(base_features, weights), base_features)

    say("checking features as proxies of protected attributes")
    binary_groups = [c for c in groups_population.columns if c.startswith("any_")]
    proxies = (
        proxy_check(
            population[base_features].sample(
                min(len(population), 20_000), random_state=config.seed
            ),
            groups_population.loc[:, binary_groups].sample(
                min(len(population), 20_000), random_state=config.seed
            ),
            threshold=config.proxy_auc_threshold,
            seed=config.seed,
        )
        if binary_groups
        else pd.DataFrame(columns=["feature", "attribute", "auc", "flagged"])
    )
    flagged = sorted(set(proxies.loc[proxies["flagged"].astype(bool), "feature"]))

    wanted = {config.mitigation}
    if config.evaluate_mitigations:
        wanted |= {"reweight", "drop_proxies"}
    if "reweight" in wanted and REWEIGHT_ATTRIBUTE in binary_groups:
        groups_fit = address_groups(
            tables,
            audit,
            make_queries(
                ts_eval.visits["address_id"], ts_eval.visits["inspected_at"], index=ts_eval.X.index
            ),
        )[REWEIGHT_ATTRIBUTE]
        fair_w = weights * _reweigh(groups_fit, ts_eval.y)
        variants["reweight"] = (fit(base_features, fair_w / fair_w.mean()), base_features)
    if "drop_proxies" in wanted:
        kept = [f for f in base_features if f not in flagged]
        variants["drop_proxies"] = (fit(kept, weights), kept)
    if config.mitigation not in variants:
        raise ValueError(
            f"mitigation {config.mitigation!r} cannot be applied: the audit attributes needed "
            "for it are absent"
        )

    say("evaluating on the holdout visits")
    assessments = {name: assess(model) for name, (model, _) in variants.items()}
    model, model_features = variants[config.mitigation]
    chosen = assessments[config.mitigation]
    naive = naive_estimates(model, holdout, config.ks)

    # baselines, estimated the same honest way
    random_visits = holdout.loc[holdout["reason"] == RANDOM_REASON]
    hits, n_random = int(random_visits["label"].sum()), len(random_visits)
    rnd_low, rnd_high = wilson_interval(hits, n_random)
    jitter = np.random.default_rng(config.seed)

    def current_practice(frame: pd.DataFrame) -> np.ndarray:
        reports = frame[CURRENT_PRACTICE_FEATURE].to_numpy(dtype=float)
        return reports + jitter.uniform(0, 1e-3, len(frame))  # ties broken at random

    practice = (
        honest_estimates(current_practice, holdout, population, config.ks)
        if CURRENT_PRACTICE_FEATURE in population.columns
        else {}
    )

    metrics: dict[str, float] = {**extra_metrics}
    for k, est in chosen.honest.items():
        metrics[f"honest_precision_at_{k}"] = est.estimate
        metrics[f"honest_precision_at_{k}_ci_low"] = est.ci_low
        metrics[f"honest_precision_at_{k}_ci_high"] = est.ci_high
        metrics[f"honest_precision_at_{k}_n_random"] = float(est.n)
        metrics[f"honest_precision_at_{k}_region_k"] = float(est.region_k)
        metrics[f"naive_precision_at_{k}"] = naive[k].estimate
        rand = hits / n_random if n_random else float("nan")
        metrics[f"baseline_random_precision_at_{k}"] = rand
        metrics[f"lift_over_random_at_{k}"] = est.estimate / rand if rand else float("nan")
        if k in practice:
            cp = practice[k].estimate
            metrics[f"baseline_current_practice_precision_at_{k}"] = cp
            metrics[f"lift_over_current_practice_at_{k}"] = (
                est.estimate / cp if cp else float("nan")
            )
    metrics["baseline_random_ci_low"], metrics["baseline_random_ci_high"] = rnd_low, rnd_high
    proba = model.predict_risk(holdout[model_features])
    for name, value in classification_report(holdout["label"], proba).items():
        metrics[f"holdout_{name}"] = float(value)
    is_random = (holdout["reason"] == RANDOM_REASON).to_numpy()
    if is_random.sum() >= 20 and holdout.loc[is_random, "label"].nunique() == 2:
        for name, value in classification_report(
            holdout.loc[is_random, "label"], proba[is_random]
        ).items():
            metrics[f"holdout_random_{name}"] = float(value)
    metrics["fairness_passed"] = float(chosen.verdict.passed)
    metrics["best_iteration"] = float(model.best_iteration_)

    say("explaining the model")
    sample = holdout[model_features].head(2000)
    contributions = model.contributions(sample)
    tables_out: dict[str, pd.DataFrame] = {
        "shap_importance": shap_importance(contributions),
        "calibration_table": calibration_table(holdout["label"], proba),
        "fairness_by_group": chosen.fairness.to_frame(),
        "fairness_gate_checks": chosen.verdict.checks,
        "proxy_report": proxies,
        "honest_vs_naive": pd.DataFrame(
            [
                {
                    **chosen.honest[k].to_dict(),
                    "naive_estimate": naive[k].estimate,
                    "naive_n": naive[k].n,
                    "current_practice_estimate": practice[k].estimate if k in practice else np.nan,
                }
                for k in config.ks
            ]
        ),
        "mitigation_comparison": pd.DataFrame(
            [_variant_row(name, a, config, variants[name][1]) for name, a in assessments.items()]
        ),
    }
    figures = {
        "calibration": plot_calibration(
            holdout["label"], proba, title="Calibration on holdout visits (all reasons)"
        ),
        "shap_summary": shap_summary_plot(contributions, model.matrix(sample), model_features),
    }
    periods: dict[str, Any] = {
        **split.describe(ts_eval.visits["inspected_at"]),
        "population_as_of": str(split.holdout_start.date()),
        "population_n": len(population),
        "absent_features": absent,
        "excluded_features": sorted(config.exclude_features),
        "proxy_features_flagged": flagged,
    }
    model.metadata_ = {
        "trained_on": f"visits {periods['train_from']} .. {periods['train_until']}",
        **{k: v for k, v in periods.items() if isinstance(v, (str, int))},
        "feature_set": feature_set.name,
        "mitigation": config.mitigation,
    }
    params: dict[str, Any] = {
        "feature_set": feature_set.name,
        "n_features": len(model_features),
        "calibration": config.calibration,
        "weighting": config.weighting,
        "mitigation": config.mitigation,
        "seed": config.seed,
        **{f"period_{k}": v for k, v in split.describe(ts_eval.visits["inspected_at"]).items()},
    }
    return TrainingOutcome(
        model=model,
        config=config,
        feature_set=FeatureSet(
            name=feature_set.name, features=tuple(model_features), params=config.feature_params
        ),
        params=params,
        metrics=metrics,
        periods=periods,
        honest=chosen.honest,
        naive=naive,
        fairness_verdict=chosen.verdict,
        tables=tables_out,
        figures=figures,
        evaluation_data={"holdout": holdout, "population": population},
        fingerprints=dict(tables.fingerprints),
        row_counts={name: len(df) for name, df in tables.items()},
    )


def _variant_row(
    name: str, a: _Assessment, config: RunConfig, features: list[str]
) -> dict[str, Any]:
    k = config.headline_k
    ratios = a.verdict.checks
    sr = ratios.loc[ratios["metric"] == "selection_rate", "ratio"] if len(ratios) else pd.Series()
    return {
        "mitigation": name,
        "registered": name == config.mitigation,
        "n_features": len(features),
        f"honest_precision_at_{k}": a.honest[k].estimate,
        f"honest_precision_at_{k}_ci_low": a.honest[k].ci_low,
        f"honest_precision_at_{k}_ci_high": a.honest[k].ci_high,
        "fairness_passed": a.verdict.passed,
        "selection_rate_ratio_min": float(sr.min()) if len(sr.dropna()) else np.nan,
        "selection_rate_ratio_max": float(sr.max()) if len(sr.dropna()) else np.nan,
        "failed_checks": "; ".join(a.verdict.reasons),
    }


__all__ = ["TimeSplit", "residential_population", "train_model"]
