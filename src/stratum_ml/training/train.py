"""One training: visits -> features as of each visit -> model -> honest evaluation -> audit.

:func:`train_model` runs a fixed sequence of small steps and returns a
:class:`~stratum_ml.training.outcome.TrainingOutcome` whose
:class:`~stratum_ml.training.report.EvaluationReport` holds every number it
measured; ``tracking.log_training_run`` records it in MLflow and registers the
model as ``challenger``.

1. :func:`_prepare_sets` -- features as of each visit, the time split, the
   population as of the holdout start, protected groups for the audit, and the
   population as of the sources' extract date (the drift reference: the world the
   model is first used in);
2. :func:`_visit_weights` -- the visit-propensity model (and IPW weights if asked);
3. :func:`_proxy_features` -- features that predict a protected attribute;
4. :func:`_fit_variants` -- the model, and each fairness mitigation to compare;
5. :func:`_assess` -- honest precision@k and the fairness gate, per variant;
6. :func:`_baselines` -- random choice and current practice, estimated the same way;
7. :func:`_holdout_metrics`, :func:`_explain` -- probabilities, calibration, SHAP;
8. :func:`_report` and :func:`_outcome` -- everything put together;
9. :func:`_final_fit` -- the model to register, refitted on every labelled visit
   (:mod:`stratum_ml.training.refit`); the report stays the split model's;
10. :func:`_frontier` -- if asked, the fairness frontier (:mod:`stratum_ml.training.frontier`),
    and, beside the gate's ratio, the innocent households per group per 500 visits; with a
    visit plan that has visits (``plan_visits``), every row estimated from it by
    Horvitz-Thompson.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stratum_ml.evaluation.explain import shap_importance, shap_summary_plot
from stratum_ml.evaluation.fairness import FairnessResult, fairness_audit, proxy_check
from stratum_ml.evaluation.gates import GateVerdict, fairness_gate
from stratum_ml.evaluation.metrics import (
    HonestEstimate,
    NaiveEstimate,
    calibration_table,
    classification_report,
    plot_calibration,
    top_k_mask,
    wilson_interval,
)
from stratum_ml.evaluation.sensitive import address_groups
from stratum_ml.features.asof import make_queries
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE, population_queries
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.sources.extract import extract_date
from stratum_ml.sources.tables import AuditTables, SourceTables
from stratum_ml.training.config import RunConfig
from stratum_ml.training.dataset import TrainingSet, build_training_set
from stratum_ml.training.frontier import (
    ESTIMATE_COLUMNS,
    FRONTIER_ATTRIBUTE,
    HOLDOUT_METHOD,
    design_row,
    fit_frontier,
    frontier_plot,
    innocent_per_visits,
)
from stratum_ml.training.holdout import (
    RANDOM_REASON,
    honest_estimates,
    naive_estimates,
    ranked_population,
    score_rows,
)
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.propensity import visit_propensity
from stratum_ml.training.refit import FinalFit, refit_on_all_visits
from stratum_ml.training.report import (
    CalibrationBin,
    EvaluationReport,
    HoldoutMetrics,
    PrecisionAtK,
    ProbabilityMetrics,
    PropensityReport,
    RandomBaseline,
    VariantReport,
)
from stratum_ml.training.split import TimeSplit, time_split
from stratum_ml.training.violation_type import fit_violation_types

if TYPE_CHECKING:
    from stratum_ml.runs.estimates import PlanVisits

log = logging.getLogger(__name__)
Say = Callable[[str], None]

#: the attribute group-aware reweighting balances
REWEIGHT_ATTRIBUTE = "any_resident_born_outside_europe"
#: fewest random-sample holdout visits (with both outcomes) to report their own metrics
MIN_RANDOM_VISITS_FOR_METRICS = 20
#: rows the proxy check and the SHAP summary look at
PROXY_SAMPLE = 20_000
EXPLAIN_SAMPLE = 2000


# --------------------------------------------------------------------------- the sets


@dataclass(frozen=True)
class _Sets:
    """The visits split by time, the population, and the groups the audit compares."""

    ts_eval: TrainingSet
    split: TimeSplit
    train: TrainingSet
    tune: TrainingSet
    holdout: pd.DataFrame
    population: pd.DataFrame
    groups_holdout: pd.DataFrame
    groups_population: pd.DataFrame
    feature_set: FeatureSet
    absent: dict[str, list[str]]
    reference: pd.DataFrame
    reference_as_of: dt.date

    @property
    def binary_groups(self) -> list[str]:
        """The yes/no protected attributes (``any_...``) known for the population."""
        return [c for c in self.groups_population.columns if c.startswith("any_")]


def _with_facts(X: pd.DataFrame, ts: TrainingSet) -> pd.DataFrame:
    return X.assign(
        label=ts.y.to_numpy(),
        reason=ts.visits["reason"].astype("str").to_numpy(),
        inspected_at=ts.visits["inspected_at"].to_numpy(),
        address_id=ts.visits["address_id"].to_numpy(),
    )


def _prepare_sets(
    tables: SourceTables, audit: AuditTables | None, config: RunConfig, say: Say
) -> _Sets:
    """Features as of each visit, split by time; the population as of the holdout start."""
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

    say("scoring the population as of the holdout start")
    queries = population_queries(tables.addresses, split.holdout_start)
    population = population_features(tables, queries, evaluation_features, config)
    reference_as_of = extract_date(tables).date
    if reference_as_of == split.holdout_start.date():
        reference = population  # the same world: no second feature build
    else:
        say(f"building the drift reference: the population as of {reference_as_of}")
        reference = population_features(
            tables,
            population_queries(tables.addresses, reference_as_of),
            evaluation_features,
            config,
        )
    holdout = _with_facts(holdout_ts.X, holdout_ts)
    groups_holdout = address_groups(
        tables,
        audit,
        make_queries(holdout["address_id"], holdout["inspected_at"], index=holdout.index),
    )
    return _Sets(
        ts_eval=ts_eval,
        split=split,
        train=train,
        tune=tune,
        holdout=holdout,
        population=population,
        groups_holdout=groups_holdout,
        groups_population=address_groups(tables, audit, queries),
        feature_set=feature_set,
        absent=absent,
        reference=reference,
        reference_as_of=reference_as_of,
    )


def population_features(
    tables: SourceTables, queries: pd.DataFrame, features: list[str], config: RunConfig
) -> pd.DataFrame:
    """Features of every dwelling of a population; a large one a partition at a time.

    More than :data:`~stratum_ml.features.partitioned.QUERIES_PER_PARTITION` queries go
    through the partitioned engine (the same features as in memory: see
    :mod:`stratum_ml.features.partitioned`), so that a national population is never
    built in one piece; a smaller one is built in memory.
    """
    from stratum_ml.features.partitioned import QUERIES_PER_PARTITION, build_features_with

    engine = "partitioned" if len(queries) > QUERIES_PER_PARTITION else "local"
    return build_features_with(
        engine, tables, queries, features=features, params=config.feature_params
    )


def _visit_weights(
    tables: SourceTables, sets: _Sets, config: RunConfig, say: Say
) -> tuple[pd.Series, PropensityReport]:
    """Training weights (1, or inverse visit propensity) and how selective visits were."""
    say("fitting the visit-propensity model (how selective were past visits?)")
    fit_part = sets.ts_eval.subset(sets.split.train | sets.split.tune)
    prop = visit_propensity(
        tables,
        fit_part.visits,
        fit_part.X[list(sets.feature_set.features)],
        sets.feature_set,
        controls_per_visit=config.propensity_controls,
        clip=config.ipw_clip,
        seed=config.seed,
        n_jobs=config.lightgbm.n_jobs,
    )
    weights = pd.Series(1.0, index=sets.ts_eval.X.index)
    if config.weighting == "ipw":
        weights.loc[prop.weights.index] = prop.weights
    report = PropensityReport(
        auc=prop.auc,
        effective_sample_size=prop.effective_sample_size,
        max_weight=float(prop.weights.to_numpy().max()),
        clipped=prop.clipped,
        controls=prop.n_controls,
    )
    return weights, report


def _proxy_features(sets: _Sets, config: RunConfig, say: Say) -> tuple[pd.DataFrame, list[str]]:
    """The proxy check of the model's features against the yes/no protected attributes."""
    say("checking features as proxies of protected attributes")
    if not sets.binary_groups:
        return pd.DataFrame(columns=["feature", "attribute", "auc", "flagged"]), []
    n = min(len(sets.population), PROXY_SAMPLE)
    proxies = proxy_check(
        sets.population[list(sets.feature_set.features)].sample(n, random_state=config.seed),
        sets.groups_population.loc[:, sets.binary_groups].sample(n, random_state=config.seed),
        threshold=config.proxy_auc_threshold,
        seed=config.seed,
    )
    return proxies, sorted(set(proxies.loc[proxies["flagged"].astype(bool), "feature"]))


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class _Variant:
    model: RiskModel
    features: list[str]
    weights: pd.Series  # per visit of ts_eval, what the trees were fitted with


def _fit(sets: _Sets, config: RunConfig, features: list[str], weights: pd.Series) -> RiskModel:
    model = RiskModel(config.lightgbm, config.calibration, config.seed)
    return model.fit(
        sets.train.X[features],
        sets.train.y,
        X_tune=sets.tune.X[features],
        y_tune=sets.tune.y,
        sample_weight=weights.loc[sets.train.X.index].to_numpy(),
        tune_weight=weights.loc[sets.tune.X.index].to_numpy(),
    )


def _reweigh(groups: pd.Series, y: pd.Series) -> np.ndarray:
    """Kamiran & Calders reweighing: w(g, y) = P(g) P(y) / P(g, y)."""
    frame = pd.DataFrame({"g": groups.fillna("missing").to_numpy(), "y": y.to_numpy()})
    p_g = frame["g"].map(frame["g"].value_counts(normalize=True))
    p_y = frame["y"].map(frame["y"].value_counts(normalize=True))
    p_gy = frame.groupby(["g", "y"])["y"].transform("size") / len(frame)
    return (p_g * p_y / p_gy).to_numpy(dtype=float)


def _fit_variants(
    tables: SourceTables,
    audit: AuditTables | None,
    sets: _Sets,
    config: RunConfig,
    weights: pd.Series,
    flagged: list[str],
    say: Say,
) -> dict[str, _Variant]:
    """The model without mitigation, and each mitigation the config asks for or compares."""
    say("training the model")
    base = list(sets.feature_set.features)
    variants = {"none": _Variant(_fit(sets, config, base, weights), base, weights)}
    wanted = {config.mitigation}
    if config.evaluate_mitigations:
        wanted |= {"reweight", "drop_proxies"}
    if "reweight" in wanted and REWEIGHT_ATTRIBUTE in sets.binary_groups:
        visits = sets.ts_eval.visits
        groups_fit = address_groups(
            tables,
            audit,
            make_queries(visits["address_id"], visits["inspected_at"], index=sets.ts_eval.X.index),
        )[REWEIGHT_ATTRIBUTE]
        fair_w = weights * _reweigh(groups_fit, sets.ts_eval.y)
        fair_w = fair_w / fair_w.mean()
        variants["reweight"] = _Variant(_fit(sets, config, base, fair_w), base, fair_w)
    if "drop_proxies" in wanted:
        kept = [f for f in base if f not in flagged]
        variants["drop_proxies"] = _Variant(_fit(sets, config, kept, weights), kept, weights)
    if config.mitigation not in variants:
        raise ValueError(
            f"mitigation {config.mitigation!r} cannot be applied: the audit attributes needed "
            "for it are absent"
        )
    return variants


# --------------------------------------------------------------------------- assessing


@dataclass(frozen=True)
class _Assessment:
    honest: dict[int, HonestEstimate]
    fairness: FairnessResult
    verdict: GateVerdict
    scored: tuple[np.ndarray, np.ndarray]  # the model's scores of population and holdout rows


def _assess(model: RiskModel, sets: _Sets, config: RunConfig) -> _Assessment:
    """Honest precision@k, and the fairness audit and gate of the top ``max(ks)``."""
    scored = score_rows(model, sets.holdout, sets.population)  # once: placed twice below
    honest = honest_estimates(model, sets.holdout, sets.population, config.ks, scored=scored)
    scores, _, labels = ranked_population(
        model, sets.holdout, sets.population, visits="all", scored=scored
    )
    placed = sets.population.index[~sets.population.index.isin(sets.holdout["address_id"])]
    sensitive = pd.concat(
        [sets.groups_population.loc[placed], sets.groups_holdout], ignore_index=True
    )
    selected = top_k_mask(scores, min(max(config.ks), len(scores)), seed=config.seed)
    result = fairness_audit(
        labels,
        selected.astype(float),
        scores,
        sensitive,
        min_group_size=config.fairness.min_group_size,
        seed=config.seed,
    )
    return _Assessment(honest, result, fairness_gate(result, config.fairness), scored)


def _variant_report(
    name: str, assessment: _Assessment, variant: _Variant, config: RunConfig
) -> VariantReport:
    checks = assessment.verdict.checks
    sr = (
        checks.loc[checks["metric"] == "selection_rate", "ratio"].dropna()
        if len(checks)
        else pd.Series(dtype=float)
    )
    return VariantReport(
        mitigation=name,
        registered=name == config.mitigation,
        n_features=len(variant.features),
        headline=assessment.honest[config.headline_k],
        fairness_passed=assessment.verdict.passed,
        selection_rate_ratio_min=float(sr.min()) if len(sr) else np.nan,
        selection_rate_ratio_max=float(sr.max()) if len(sr) else np.nan,
        failed_checks=tuple(assessment.verdict.reasons),
    )


def _baselines(sets: _Sets, config: RunConfig) -> tuple[RandomBaseline, dict[int, HonestEstimate]]:
    """Random choice (the random visits' hit rate) and current practice (reports, honest)."""
    holdout = sets.holdout
    random_visits = holdout.loc[holdout["reason"] == RANDOM_REASON]
    hits, n_random = int(random_visits["label"].sum()), len(random_visits)
    low, high = wilson_interval(hits, n_random)
    random = RandomBaseline(
        precision=hits / n_random if n_random else float("nan"),
        ci_low=low,
        ci_high=high,
        n=n_random,
        hits=hits,
    )
    if CURRENT_PRACTICE_FEATURE not in sets.population.columns:
        return random, {}
    return random, honest_estimates(_practice_score(config), holdout, sets.population, config.ks)


def _practice_score(config: RunConfig) -> Callable[[pd.DataFrame], np.ndarray]:
    """Current practice as a score: reports in the past year, ties broken at random."""
    jitter = np.random.default_rng(config.seed)

    def current_practice(frame: pd.DataFrame) -> np.ndarray:
        reports = frame[CURRENT_PRACTICE_FEATURE].to_numpy(dtype=float)
        return reports + jitter.uniform(0, 1e-3, len(frame))  # ties broken at random

    return current_practice


def _probabilities(labels: pd.Series, proba: np.ndarray) -> ProbabilityMetrics:
    report = classification_report(labels, proba)
    return ProbabilityMetrics(
        roc_auc=report["roc_auc"],
        pr_auc=report["pr_auc"],
        brier=report["brier"],
        log_loss=report["log_loss"],
        prevalence=report["prevalence"],
        n=int(report["n"]),
    )


def _holdout_metrics(
    holdout: pd.DataFrame, proba: np.ndarray, calibration: pd.DataFrame
) -> HoldoutMetrics:
    """Probability metrics on all holdout visits and on the random ones, and calibration."""
    is_random = (holdout["reason"] == RANDOM_REASON).to_numpy()
    random_visits = None
    if (
        is_random.sum() >= MIN_RANDOM_VISITS_FOR_METRICS
        and holdout.loc[is_random, "label"].nunique() == 2
    ):
        random_visits = _probabilities(holdout.loc[is_random, "label"], proba[is_random])
    return HoldoutMetrics(
        all_visits=_probabilities(holdout["label"], proba),
        random_visits=random_visits,
        calibration=tuple(
            CalibrationBin.model_validate(row) for row in calibration.to_dict(orient="records")
        ),
    )


def _explain(
    model: RiskModel, holdout: pd.DataFrame, features: list[str]
) -> tuple[pd.DataFrame, Figure]:
    """SHAP importance and the summary plot on (the first rows of) the holdout visits."""
    sample = holdout[features].head(EXPLAIN_SAMPLE)
    contributions = model.contributions(sample)
    figure = shap_summary_plot(contributions, model.matrix(sample), features)
    return shap_importance(contributions), figure


# --------------------------------------------------------------------------- the frontier


def _placed(
    score: RiskModel | Callable[[pd.DataFrame], np.ndarray],
    sets: _Sets,
    scored: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Scores and labels with every holdout visit placed, and the groups of the rows."""
    scores, _, labels = ranked_population(
        score, sets.holdout, sets.population, visits="all", scored=scored
    )
    placed = sets.population.index[~sets.population.index.isin(sets.holdout["address_id"])]
    groups = pd.concat([sets.groups_population.loc[placed], sets.groups_holdout], ignore_index=True)
    return scores, labels, groups


def _innocents(
    score: RiskModel | Callable[[pd.DataFrame], np.ndarray],
    sets: _Sets,
    config: RunConfig,
    scored: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    scores, labels, groups = _placed(score, sets, scored)
    if FRONTIER_ATTRIBUTE not in groups.columns:
        return {}
    return innocent_per_visits(
        scores, labels, groups[FRONTIER_ATTRIBUTE], max(config.ks), seed=config.seed
    )


def _fpr_ratio(result: FairnessResult) -> tuple[float, float, float]:
    frame = result.frame
    rows = frame.loc[
        (frame["attribute"] == FRONTIER_ATTRIBUTE)
        & (frame["metric"] == "false_positive_rate")
        & ~frame["is_reference"].astype(bool)
    ]
    if rows.empty:
        return (np.nan, np.nan, np.nan)
    row = rows.iloc[0]
    return float(row["ratio"]), float(row["ratio_ci_low"]), float(row["ratio_ci_high"])


def _frontier_row(
    kind: str,
    point: int | None,
    multiplier: float,
    assessment: _Assessment | None,
    innocents: dict[str, float],
    config: RunConfig,
) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": kind, "point": point, "multiplier": multiplier}
    if assessment is not None:
        est = assessment.honest[config.headline_k]
        ratio, low, high = _fpr_ratio(assessment.fairness)
        row |= {
            "precision": est.estimate,
            "precision_low": est.ci_low,
            "precision_high": est.ci_high,
            "precision_region_k": est.region_k,
            "fpr_ratio": ratio,
            "fpr_ratio_low": low,
            "fpr_ratio_high": high,
            "gate_passed": assessment.verdict.passed,
        }
    row |= {f"innocent_per_500_{g}": n for g, n in sorted(innocents.items())}
    return row


def _innocents_note(model: dict[str, float], practice: dict[str, float], k: int) -> str:
    def fmt(counts: dict[str, float]) -> str:
        return ", ".join(f"{g} {n:.0f}" for g, n in sorted(counts.items()) if not np.isnan(n))

    return (
        f"innocent households per 500 visits to the top {k}, by {FRONTIER_ATTRIBUTE} "
        f"(estimated from the holdout visits): model {fmt(model) or 'not estimable'}; "
        f"current practice {fmt(practice) or 'not estimable'}"
    )


#: a frontier row's source without a visit plan with visits
HOLDOUT_SOURCE = (
    "holdout random-sample visits (no visit plan with visits for a scoring date: not design-based)"
)


@dataclass(frozen=True)
class _PlanWorld:
    """A plan's population as of its run's date: features, groups, and the plan."""

    plan: PlanVisits
    features: pd.DataFrame
    inside: np.ndarray
    outside: np.ndarray


def _plan_world(
    tables: SourceTables,
    audit: AuditTables | None,
    plan: PlanVisits,
    features: list[str],
    config: RunConfig,
    say: Say,
) -> _PlanWorld | None:
    """Features and groups of the plan run's population as of its date (None: no groups)."""
    say(f"scoring the population of run {plan.run_id} ({plan.as_of}) for its visit plan")
    unknown = ~plan.address_ids.isin(tables.addresses["address_id"].astype(str))
    if unknown.any():
        raise ValueError(
            f"the visit plan of run {plan.run_id} ranks {int(unknown.sum())} addresses the "
            "sources do not hold: train on the sources the run scored"
        )
    queries = make_queries(plan.address_ids, pd.Timestamp(plan.as_of))
    names = [*features]
    if CURRENT_PRACTICE_FEATURE not in names:
        names.append(CURRENT_PRACTICE_FEATURE)
    X = population_features(tables, queries, names, config)
    groups = address_groups(tables, audit, queries)
    if FRONTIER_ATTRIBUTE not in groups.columns:
        return None
    values = groups[FRONTIER_ATTRIBUTE].astype("string")
    return _PlanWorld(
        plan=plan,
        features=X,
        inside=(values == "True").fillna(False).to_numpy(dtype=bool),
        outside=(values == "False").fillna(False).to_numpy(dtype=bool),
    )


def _estimated(
    row: dict[str, Any],
    score: RiskModel | Callable[[pd.DataFrame], np.ndarray] | None,
    world: _PlanWorld | None,
    config: RunConfig,
) -> dict[str, Any]:
    """A frontier row with the plan's design-based estimates, or labelled as the holdout's."""
    if world is None or score is None:
        return row | {
            "precision_method": HOLDOUT_METHOD if "precision" in row else None,
            "fpr_ratio_method": HOLDOUT_METHOD if "fpr_ratio" in row else None,
            "estimate_source": HOLDOUT_SOURCE if "precision" in row else None,
        }
    if isinstance(score, RiskModel):
        scores = score.raw_score(world.features[score.feature_names_in_])
    elif CURRENT_PRACTICE_FEATURE in world.features.columns:
        scores = score(world.features)
    else:
        return row
    held = {f"holdout_{c}": row.pop(c) for c in ESTIMATE_COLUMNS if c in row}
    design = design_row(
        np.asarray(scores, dtype=float),
        world.plan,
        world.inside,
        world.outside,
        config.headline_k,
        seed=config.seed,
    )
    return row | design | held


def _frontier(
    tables: SourceTables,
    audit: AuditTables | None,
    sets: _Sets,
    config: RunConfig,
    variant: _Variant,
    chosen: _Assessment,
    innocents: tuple[dict[str, float], dict[str, float]],
    practice: dict[int, HonestEstimate],
    say: Say,
    plan_visits: PlanVisits | None = None,
) -> tuple[pd.DataFrame, Figure, dict[int, tuple[RiskModel, EvaluationReport]]] | None:
    """The GridSearch frontier measured like the model, or None (not asked, or no attribute).

    The frontier is fitted on the training visits whose attribute is known (an
    address without registered residents has none), so that the constraint is
    between two groups and the grid moves along one multiplier. With ``plan_visits``
    every row (points, model, current practice) is estimated from that plan's visits
    by Horvitz-Thompson (:func:`~stratum_ml.training.frontier.design_row`); the
    holdout's estimates stay beside as ``holdout_*``.
    """
    if config.frontier_grid_size == 0 or FRONTIER_ATTRIBUTE not in sets.binary_groups:
        return None
    say("fitting the fairness frontier (GridSearch, false-positive-rate parity)")
    visits = sets.train.visits
    groups = address_groups(
        tables,
        audit,
        make_queries(visits["address_id"], visits["inspected_at"], index=sets.train.X.index),
    )[FRONTIER_ATTRIBUTE]
    known = groups.notna().to_numpy()  # two groups: a one-dimensional frontier
    points = fit_frontier(
        sets.train.X.loc[known, variant.features],
        sets.train.y.loc[known],
        groups.loc[known],
        sets.tune.X[variant.features],
        sets.tune.y,
        variant.model,
        grid_size=config.frontier_grid_size,
    )
    world = (
        None
        if plan_visits is None
        else _plan_world(tables, audit, plan_visits, variant.features, config, say)
    )
    practice_score = (
        _practice_score(config) if CURRENT_PRACTICE_FEATURE in sets.population.columns else None
    )
    model_innocents, practice_innocents = innocents
    rows = [
        _estimated(
            _frontier_row("model", None, np.nan, chosen, model_innocents, config),
            variant.model,
            world,
            config,
        ),
        _estimated(
            _frontier_row("current_practice", None, np.nan, None, practice_innocents, config),
            practice_score,
            world,
            config,
        ),
    ]
    models: dict[int, tuple[RiskModel, EvaluationReport]] = {}
    for pt in points:
        assessment = _assess(pt.model, sets, config)
        row = _frontier_row(
            "frontier",
            pt.point,
            pt.multiplier,
            assessment,
            _innocents(pt.model, sets, config, assessment.scored),
            config,
        )
        rows.append(_estimated(row, pt.model, world, config))
        naive = naive_estimates(pt.model, sets.holdout, config.ks)
        models[pt.point] = (pt.model, _point_report(config, assessment, naive, practice, pt.model))
    table = pd.DataFrame(rows)
    plot = frontier_plot(table, k=config.headline_k, attribute=FRONTIER_ATTRIBUTE)
    return table, plot, models


def _point_report(
    config: RunConfig,
    assessment: _Assessment,
    naive: dict[int, NaiveEstimate],
    practice: dict[int, HonestEstimate],
    model: RiskModel,
) -> EvaluationReport:
    """A frontier point's own report: what promoting it is decided on."""
    return EvaluationReport(
        headline_k=config.headline_k,
        precision=tuple(
            PrecisionAtK(
                k=k, honest=assessment.honest[k], naive=naive[k], current_practice=practice.get(k)
            )
            for k in config.ks
        ),
        fairness=assessment.verdict,
        best_iteration=model.best_iteration_,
    )


# --------------------------------------------------------------------------- putting together


def _final_fit(
    sets: _Sets,
    variant: _Variant,
    config: RunConfig,
    say: Say,
    inclusion: pd.Series | None = None,
) -> FinalFit | None:
    """The registered variant refitted on every labelled visit (``None``: folds set to 0).

    Every labelled visit up to the training cut-off (the latest visit) takes part:
    train, tune and holdout, with the outcomes recorded through the service, which,
    being the newest, fall in the holdout and would otherwise never reach the trees.
    Weights are the variant's; under ``weighting: ipw`` the holdout visits, which the
    propensity model was not fitted on, weigh 1. Visits that answer a visit plan carry
    their ``inclusion`` probability (see :func:`stratum_ml.training.refit.plan_weights`).
    """
    if config.final_fit_folds == 0:
        return None
    say("refitting on every labelled visit (rounds and calibration by cross-fitting)")
    ts = sets.ts_eval
    parts = pd.Series("train", index=ts.X.index)
    parts[sets.split.tune] = "tune"
    parts[sets.split.holdout] = "holdout"
    visits = ts.visits
    if inclusion is not None:
        visits = visits.assign(inclusion_probability=inclusion.reindex(visits.index).to_numpy())
    return refit_on_all_visits(
        ts.X[variant.features],
        ts.y,
        visits,
        config,
        sample_weight=variant.weights.reindex(ts.X.index).fillna(1.0).to_numpy(dtype=float),
        parts=parts,
        n_folds=config.final_fit_folds,
    )


def _report(
    config: RunConfig,
    chosen: _Assessment,
    naive: dict[int, NaiveEstimate],
    practice: dict[int, HonestEstimate],
    random: RandomBaseline,
    holdout: HoldoutMetrics,
    variants: tuple[VariantReport, ...],
    propensity: PropensityReport,
    flagged: list[str],
    model: RiskModel,
) -> EvaluationReport:
    return EvaluationReport(
        headline_k=config.headline_k,
        precision=tuple(
            PrecisionAtK(
                k=k, honest=chosen.honest[k], naive=naive[k], current_practice=practice.get(k)
            )
            for k in config.ks
        ),
        fairness=chosen.verdict,
        random_baseline=random,
        holdout=holdout,
        proxy_features_flagged=tuple(flagged),
        variants=variants,
        propensity=propensity,
        best_iteration=model.best_iteration_,
    )


def _periods(sets: _Sets, config: RunConfig, flagged: list[str]) -> dict[str, Any]:
    return {
        **sets.split.describe(sets.ts_eval.visits["inspected_at"]),
        "population_as_of": str(sets.split.holdout_start.date()),
        "population_n": len(sets.population),
        "reference_as_of": str(sets.reference_as_of),
        "absent_features": sets.absent,
        "excluded_features": sorted(config.exclude_features),
        "proxy_features_flagged": flagged,
    }


def _params(sets: _Sets, config: RunConfig, n_features: int) -> dict[str, Any]:
    return {
        "feature_set": sets.feature_set.name,
        "n_features": n_features,
        "calibration": config.calibration,
        "weighting": config.weighting,
        "mitigation": config.mitigation,
        "seed": config.seed,
        **{
            f"period_{k}": v
            for k, v in sets.split.describe(sets.ts_eval.visits["inspected_at"]).items()
        },
    }


def train_model(
    tables: SourceTables,
    audit: AuditTables | None,
    config: RunConfig | None = None,
    *,
    say: Say | None = None,
    inclusion: pd.Series | None = None,
    plan_visits: PlanVisits | None = None,
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
    inclusion
        The inclusion probability of each visit that answers a visit plan, by
        ``inspection_id`` (:func:`stratum_ml.runs.plan.plan_inclusion_probabilities`);
        the final fit weighs those visits by it under the config's
        ``plan_visit_weighting`` (:mod:`stratum_ml.training.refit`).
    plan_visits
        A scoring run's visit plan with its visits
        (:func:`stratum_ml.runs.estimates.latest_plan_visits`): the fairness frontier's
        rows are then estimated from it by Horvitz-Thompson; without it, from the
        holdout's random-sample visits (labelled so).

    Returns
    -------
    TrainingOutcome
        The registered variant's split model (``model``, what the report measured),
        its refit on every labelled visit (``final_fit``, what is registered), its
        :class:`EvaluationReport`, tables, figures and the frames promotion re-scores
        models on.
    """
    config = config or RunConfig()
    say = say or log.info
    sets = _prepare_sets(tables, audit, config, say)
    weights, propensity = _visit_weights(tables, sets, config, say)
    proxies, flagged = _proxy_features(sets, config, say)
    variants = _fit_variants(tables, audit, sets, config, weights, flagged, say)

    say("evaluating on the holdout visits")
    assessments = {name: _assess(v.model, sets, config) for name, v in variants.items()}
    registered = variants[config.mitigation]
    model, features = registered.model, registered.features
    chosen = assessments[config.mitigation]
    naive = naive_estimates(model, sets.holdout, config.ks)
    random, practice = _baselines(sets, config)
    innocents = (
        _innocents(model, sets, config, chosen.scored),
        _innocents(_practice_score(config), sets, config)
        if CURRENT_PRACTICE_FEATURE in sets.population.columns
        else {},
    )
    if innocents[0] or innocents[1]:
        note = _innocents_note(*innocents, max(config.ks))
        chosen = dataclasses.replace(
            chosen,
            verdict=dataclasses.replace(chosen.verdict, notes=[*chosen.verdict.notes, note]),
        )
    proba = model.predict_risk(sets.holdout[features])
    calibration = calibration_table(sets.holdout["label"], proba)
    variant_reports = tuple(
        _variant_report(name, a, variants[name], config) for name, a in assessments.items()
    )
    report = _report(
        config,
        chosen,
        naive,
        practice,
        random,
        _holdout_metrics(sets.holdout, proba, calibration),
        variant_reports,
        propensity,
        flagged,
        model,
    )

    say("explaining the model")
    importance, shap_figure = _explain(model, sets.holdout, features)
    periods = _periods(sets, config, flagged)
    model.metadata_ = {
        "trained_on": f"visits {periods['train_from']} .. {periods['train_until']}",
        **{k: v for k, v in periods.items() if isinstance(v, (str, int))},
        "feature_set": sets.feature_set.name,
        "feature_params": config.feature_params.model_dump(mode="json"),
        "mitigation": config.mitigation,
    }
    final = _final_fit(sets, registered, config, say, inclusion)
    frontier = _frontier(
        tables, audit, sets, config, registered, chosen, innocents, practice, say, plan_visits
    )
    extra_tables, extra_figures = {}, {}
    frontier_points: dict[int, tuple[RiskModel, EvaluationReport]] = {}
    if frontier is not None:
        extra_tables["fairness_frontier"], extra_figures["fairness_frontier"], frontier_points = (
            frontier
        )
    if final is not None:
        final.model.metadata_ = {
            **model.metadata_,
            "trained_on": (
                f"all {final.n_visits} labelled visits {final.fit_from} .. {final.fit_until} "
                f"(evaluated as the model fitted on {periods['train_from']} .. "
                f"{periods['train_until']})"
            ),
            "final_fit": final.to_dict(),
        }
    say("fitting the likely-violation-type model")
    type_tables = fit_violation_types(model, sets.ts_eval, sets.split, tables.inspections, config)
    if final is not None:  # the registered refit carries the same type model
        final.model.violation_types_ = model.violation_types_
    return TrainingOutcome(
        model=model,
        config=config,
        feature_set=FeatureSet(
            name=sets.feature_set.name, features=tuple(features), params=config.feature_params
        ),
        report=report,
        params=_params(sets, config, len(features)),
        periods=periods,
        tables={
            "shap_importance": importance,
            "calibration_table": calibration,
            "fairness_by_group": chosen.fairness.to_frame(),
            "fairness_gate_checks": chosen.verdict.checks,
            "proxy_report": proxies,
            "honest_vs_naive": report.honest_vs_naive(),
            "mitigation_comparison": pd.DataFrame([v.to_row() for v in variant_reports]),
            **extra_tables,
            **type_tables,
        },
        figures={
            "calibration": plot_calibration(
                sets.holdout["label"], proba, title="Calibration on holdout visits (all reasons)"
            ),
            "shap_summary": shap_figure,
            **extra_figures,
        },
        evaluation_data={"holdout": sets.holdout, "population": sets.population},
        fingerprints=dict(tables.fingerprints),
        row_counts={name: len(df) for name, df in tables.items()},
        final_fit=final,
        reference_population=sets.reference,
        frontier_points=frontier_points,
    )


__all__ = ["REWEIGHT_ATTRIBUTE", "population_features", "train_model"]
