"""Record a training in MLflow: one run, one registered version, alias ``challenger``.

:func:`log_training_run` takes the :class:`~stratum_ml.training.outcome.TrainingOutcome`
that ``train`` produced and records everything an auditor needs to retrace it:

===========================  ========================================================
where in the run             what
===========================  ========================================================
params                       the outcome's params, the run config flattened
                             (``config.*``), ``source_sha256.<file>``, ``rows.<table>``
metrics                      the outcome's report flattened (:func:`metrics_of`)
``run_config.yaml``          the run config as given
``features/``                the feature set, the catalogue (``in_model`` marks its use)
``sources/``                 sha256 of every source file, rows per table
``tables/``, ``plots/``      every table (CSV) and figure (PNG) of the outcome
``evaluation/``              holdout and population frames (Parquet), honest and naive
                             estimates: what ``stratum promote`` re-scores models on
``evaluation/report.json``   the :class:`EvaluationReport` itself (``stratum evaluate``
                             and ``stratum promote`` read it)
``reference/``               ``drift_reference.json``: the population's per-feature
                             bins as of the sources' extract date and the model's raw
                             scores on it, what drift is measured against
                             (:func:`drift_reference`)
``fairness/verdict.json``    the fairness gate's verdict and checks
``risk_model/``              the registered model in its own files (``booster.txt``,
                             ``model.json``): the final fit on every labelled visit
``evaluated_model/``         the split model the evaluation measured (only when a final
                             fit is registered); promotion compares on it
``frontier/point_<N>/``      with the frontier on: each point's model (``risk_model/``),
                             its report and drift reference; ``stratum promote
                             --frontier-point N`` registers one
``final_fit.json``           rows, dates and rounds of the final fit (also as
                             ``final_fit.*`` params)
``model/``                   the MLflow pyfunc (signature, input example), registered
``model_card.md``            the model card; ``algoritmeregister.json`` the register
                             entry as far as the run knows it (publication standard
                             1.0.0, status "In ontwikkeling"; ``stratum docs`` writes
                             the full pack with the same generator)
===========================  ========================================================

Crash safety: files are prepared before the run starts; inside the run nothing
but MLflow calls happen, and the ``challenger`` alias is set only after the run
has ended FINISHED. A failure anywhere ends the run FAILED and moves no alias;
``champion`` is never touched here (only ``registry.promote`` moves it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

import stratum_ml
from stratum_ml.config import Settings, get_settings
from stratum_ml.docs.facts import TAG_CODE_COMMIT, VersionFacts, read_run_folder
from stratum_ml.docs.register import register_entry
from stratum_ml.io import atomic_path, write_frame_atomic, write_text_atomic
from stratum_ml.model.pyfunc import (
    MODEL_DIR_ARTIFACT,
    PYFUNC_ENTRY,
    pyfunc_signature,
    to_pyfunc_frame,
)
from stratum_ml.model.reference import REFERENCE_ARTIFACT, DriftReference, build_reference
from stratum_ml.model.registry import (
    CHALLENGER,
    RISK_MODEL_ARTIFACT,
    TAG_FAIRNESS_PASSED,
    TAG_FEATURE_SET,
    TAG_HEADLINE_K,
    TAG_RUN_ID,
    TAG_SOURCES_FINGERPRINT,
    TAG_TRAINED_FROM,
    TAG_TRAINED_UNTIL,
    honest_precision_tag,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.store import client_for, configure_mlflow, owner_tags
from stratum_ml.sources.tables import sources_fingerprint
from stratum_ml.training.card import model_card_markdown, package_version
from stratum_ml.training.frontier import frontier_point_artifact
from stratum_ml.training.frontier_point import FRONTIER_TABLE_NAME, frontier_note
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.report import REPORT_ARTIFACT, EvaluationReport
from stratum_ml.training.violation_type import violation_type_metrics

__all__ = [
    "EVALUATED_MODEL_ARTIFACT",
    "RegisteredVersion",
    "drift_reference",
    "json_text",
    "log_training_run",
    "metrics_of",
    "pip_requirements",
    "sources_fingerprint",
]

#: The split model of a run whose registered model is a final fit on every visit.
EVALUATED_MODEL_ARTIFACT = "evaluated_model"
#: Evaluation frames a run must carry: promotion re-scores models on them.
EVALUATION_FRAMES = ("holdout", "population")

_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PARAM_KEY_UNSAFE = re.compile(r"[^\w.\- /:]")
_EXTRA_MARKER = re.compile(r";.*\bextra\s*==")
_DIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class RegisteredVersion:
    """Where a logged training ended up.

    Attributes
    ----------
    run_id : str
        The MLflow run.
    version : str
        The registered model version (alias ``challenger``).
    model_uri : str
        ``models:/<name>/<version>``, loadable with ``mlflow.pyfunc.load_model``.
    experiment_id : str
        The ``stratum`` experiment.
    model_name : str
        The registered model.
    """

    run_id: str
    version: str
    model_uri: str
    experiment_id: str
    model_name: str


def pip_requirements() -> list[str]:
    """The logged model's environment: stratum_ml's runtime dependencies, pinned as installed.

    The model carries the stratum_ml package as code, so it needs what stratum_ml
    needs; pinning to the versions installed now (``name==version``) reproduces
    the environment that trained it. Read from the package metadata, so the list
    follows ``pyproject.toml`` without a copy to keep in step (MLflow's own
    inference is slow and lists the wrong packages; see ``docs/stack-notes.md``).

    Returns
    -------
    list of str

    Raises
    ------
    RuntimeError
        If stratum_ml is not installed (``pip install -e .``): its dependencies are
        then unknown.
    """
    try:
        declared = requires("stratum_ml") or []
    except PackageNotFoundError as exc:
        raise RuntimeError(
            "stratum_ml is not installed (pip install -e .); cannot pin the model's environment"
        ) from exc
    pins = []
    for spec in declared:
        match = _DIST_NAME.match(spec)
        if match is None or _EXTRA_MARKER.search(spec):
            continue
        pins.append(f"{match.group(0)}=={version(match.group(0))}")
    return pins


# --------------------------------------------------------------------------- serialising


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def json_text(value: Any) -> str:
    """Strict JSON (NaN and infinities become ``null``), indented, for artifacts.

    Examples
    --------
    >>> json_text({"estimate": float("nan"), "n": np.int64(3)})
    '{\\n  "estimate": null,\\n  "n": 3\\n}'
    """
    loose = json.dumps(value, default=_json_default, sort_keys=False)
    strict = json.loads(loose, parse_constant=lambda _: None)
    return json.dumps(strict, indent=2, ensure_ascii=False, allow_nan=False)


def _categories_to_str(frame: pd.DataFrame) -> pd.DataFrame:
    """``category`` columns as plain strings (missing stays missing); others unchanged."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.astype(object).where(column.notna(), None)
    return out


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(f"{prefix}.{key}", item))
        return flat
    if value is None or isinstance(value, str | int | float | bool):
        return {prefix: value}
    return {prefix: json.dumps(value, default=_json_default)}


def _param_key(key: str) -> str:
    return _PARAM_KEY_UNSAFE.sub("_", key)


# --------------------------------------------------------------------------- metrics


def metrics_of(report: EvaluationReport) -> dict[str, float]:
    """The report flattened to MLflow metric keys: the only place the keys are made.

    ============================================  ======================================
    key                                           from
    ============================================  ======================================
    ``honest_precision_at_<k>`` (``_ci_low``,     ``precision[k].honest``
    ``_ci_high``, ``_n_random``, ``_region_k``)
    ``naive_precision_at_<k>``                    ``precision[k].naive``
    ``baseline_random_precision_at_<k>``,         ``random_baseline``
    ``lift_over_random_at_<k>``,
    ``baseline_random_ci_low`` / ``_ci_high``
    ``baseline_current_practice_precision_at_     ``precision[k].current_practice``
    <k>``, ``lift_over_current_practice_at_<k>``
    ``holdout_<metric>``,                         ``holdout.all_visits``,
    ``holdout_random_<metric>``                   ``holdout.random_visits``
    ``propensity_auc``, ``ipw_*``,                ``propensity``
    ``propensity_controls``
    ``fairness_passed`` (1 or 0),                 ``fairness``, ``best_iteration``
    ``best_iteration``
    ============================================  ======================================

    Parameters
    ----------
    report : EvaluationReport

    Returns
    -------
    dict of str to float
    """
    metrics: dict[str, float] = {}
    if report.propensity is not None:
        p = report.propensity
        metrics.update(
            {
                "propensity_auc": p.auc,
                "ipw_effective_sample_size": p.effective_sample_size,
                "ipw_max_weight": p.max_weight,
                "ipw_clipped": float(p.clipped),
                "propensity_controls": float(p.controls),
            }
        )
    random = report.random_baseline
    for at in report.precision:
        k, est = at.k, at.honest
        metrics[f"honest_precision_at_{k}"] = est.estimate
        metrics[f"honest_precision_at_{k}_ci_low"] = est.ci_low
        metrics[f"honest_precision_at_{k}_ci_high"] = est.ci_high
        metrics[f"honest_precision_at_{k}_n_random"] = float(est.n)
        metrics[f"honest_precision_at_{k}_region_k"] = float(est.region_k)
        # 1: the estimate is precision@k itself; 0: widened or too few visits, so the
        # number beside it describes a wider region and precision@k is "not estimable"
        metrics[f"honest_precision_estimable_at_{k}"] = float(est.estimable and not est.widened)
        metrics[f"naive_precision_at_{k}"] = at.naive.estimate
        if random is not None:
            metrics[f"baseline_random_precision_at_{k}"] = random.precision
            metrics[f"lift_over_random_at_{k}"] = at.lift_over(random.precision)
        if at.current_practice is not None:
            cp = at.current_practice.estimate
            metrics[f"baseline_current_practice_precision_at_{k}"] = cp
            metrics[f"lift_over_current_practice_at_{k}"] = at.lift_over(cp)
    if random is not None:
        metrics["baseline_random_ci_low"] = random.ci_low
        metrics["baseline_random_ci_high"] = random.ci_high
    if report.holdout is not None:
        parts = {
            "holdout": report.holdout.all_visits,
            "holdout_random": report.holdout.random_visits,
        }
        for prefix, values in parts.items():
            if values is not None:
                metrics.update({f"{prefix}_{n}": float(v) for n, v in values.model_dump().items()})
    metrics["fairness_passed"] = float(report.fairness.passed)
    if report.best_iteration is not None:
        metrics["best_iteration"] = float(report.best_iteration)
    return metrics


# --------------------------------------------------------------------------- the run


def _check_outcome(outcome: TrainingOutcome) -> None:
    """Refuse, before any run starts, an outcome that cannot be recorded completely."""
    missing = [name for name in EVALUATION_FRAMES if name not in outcome.evaluation_data]
    if missing:
        raise ValueError(
            f"evaluation_data lacks {', '.join(missing)}: promotion re-scores models on them"
        )
    for frame_name in EVALUATION_FRAMES:
        absent = set(outcome.model.feature_names_in_) - set(outcome.evaluation_data[frame_name])
        if absent:
            raise ValueError(
                f"evaluation_data[{frame_name!r}] lacks model features: {', '.join(sorted(absent))}"
            )
    if "population_as_of" not in outcome.periods:
        raise ValueError("periods lacks population_as_of: the drift reference is dated by it")
    if outcome.config.headline_k not in outcome.honest:
        raise ValueError(f"no honest estimate for the headline k={outcome.config.headline_k}")
    for kind, names in (
        ("table", outcome.tables),
        ("figure", outcome.figures),
        ("evaluation frame", outcome.evaluation_data),
    ):
        for name in names:
            if not _STEM.fullmatch(name):
                raise ValueError(f"{kind} name {name!r} is not a safe file name")


def drift_reference(outcome: TrainingOutcome, model: RiskModel | None = None) -> DriftReference:
    """The training reference drift is measured against: the world the model is first used in.

    Built from ``outcome.reference_population`` (every approved feature whose table
    was present, as of ``periods["reference_as_of"]``, the extract date of the
    training sources) and the registered model's raw scores on it; see
    :mod:`stratum_ml.model.reference`. ``model`` (a frontier point's, say) scores
    instead of the registered model. An outcome without it (built before the
    reference moved to the extract date) falls back to ``evaluation_data["population"]``
    as of ``periods["population_as_of"]``.
    """
    if outcome.reference_population is not None and "reference_as_of" in outcome.periods:
        population = outcome.reference_population
        as_of = pd.Timestamp(outcome.periods["reference_as_of"]).date()
    else:
        population = outcome.evaluation_data["population"]
        as_of = pd.Timestamp(outcome.periods["population_as_of"]).date()
    model = model or outcome.registered_model
    raw = model.raw_score(population[model.feature_names_in_])
    return build_reference(population, raw, as_of=as_of, seed=outcome.config.seed)


def _stage(outcome: TrainingOutcome, folder: Path) -> None:
    """Write every run artifact (but the model card and register entry) under ``folder``."""
    write_text_atomic(folder / "run_config.yaml", outcome.config.to_yaml())
    write_text_atomic(
        folder / "features" / "feature_set.json",
        json_text(outcome.feature_set.model_dump(mode="json")),
    )
    catalogue = outcome.feature_set.catalogue().to_frame()
    catalogue.insert(1, "in_model", catalogue["name"].isin(outcome.feature_set.features))
    write_frame_atomic(catalogue, folder / "features" / "catalogue.csv")
    write_text_atomic(folder / "sources" / "fingerprints.json", json_text(outcome.fingerprints))
    write_text_atomic(folder / "sources" / "row_counts.json", json_text(outcome.row_counts))
    for name, table in outcome.tables.items():
        write_frame_atomic(table, folder / "tables" / f"{name}.csv")
    for name, figure in outcome.figures.items():
        target = folder / "plots" / f"{name}.png"
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    for name, frame in outcome.evaluation_data.items():
        write_frame_atomic(
            _categories_to_str(frame), folder / "evaluation" / f"{name}.parquet", index=True
        )
    estimates = {
        "headline_k": outcome.config.headline_k,
        "honest": {str(k): est.to_dict() for k, est in sorted(outcome.honest.items())},
        "naive": {str(k): est.to_dict() for k, est in sorted(outcome.naive.items())},
    }
    write_text_atomic(folder / "evaluation" / "estimates.json", json_text(estimates))
    write_text_atomic(folder / REPORT_ARTIFACT, outcome.report.to_json())
    write_text_atomic(folder / REFERENCE_ARTIFACT, drift_reference(outcome).to_json())
    write_text_atomic(
        folder / "fairness" / "verdict.json", json_text(outcome.fairness_verdict.to_dict())
    )
    outcome.registered_model.save(folder / RISK_MODEL_ARTIFACT)
    if outcome.final_fit is not None:
        outcome.model.save(folder / EVALUATED_MODEL_ARTIFACT)
        write_text_atomic(folder / "final_fit.json", json_text(outcome.final_fit.to_dict()))
    for point, (point_model, point_report) in sorted(outcome.frontier_points.items()):
        where = folder / frontier_point_artifact(point)
        point_model.save(where / RISK_MODEL_ARTIFACT)
        write_text_atomic(where / "report.json", point_report.to_json())
        write_text_atomic(
            where / "drift_reference.json", drift_reference(outcome, point_model).to_json()
        )


def _point_cards(outcome: TrainingOutcome, folder: Path, name: str) -> None:
    """Each frontier point's own model card (``frontier/point_<N>/model_card.md``).

    The card of the point's model and report, with the point's constraint and estimated
    trade-off; ``promote --frontier-point N`` titles it with the version it registers
    and adds the recorded choice.
    """
    table = outcome.tables.get(FRONTIER_TABLE_NAME)
    for point, (point_model, point_report) in sorted(outcome.frontier_points.items()):
        point_outcome = dataclasses.replace(
            outcome, model=point_model, report=point_report, final_fit=None
        )
        note = None if table is None else frontier_note(table, point, outcome.config.headline_k)
        write_text_atomic(
            folder / frontier_point_artifact(point) / "model_card.md",
            model_card_markdown(point_outcome, model_name=name, frontier=note),
        )


def _params(outcome: TrainingOutcome, source_dir: str | Path | None) -> dict[str, Any]:
    params: dict[str, Any] = dict(outcome.params)
    params.update(_flatten("config", outcome.config.model_dump(mode="json")))
    params.update(
        {_param_key(f"source_sha256.{f}"): sha for f, sha in outcome.fingerprints.items()}
    )
    params.update({_param_key(f"rows.{t}"): n for t, n in outcome.row_counts.items()})
    if outcome.final_fit is not None:
        params.update(outcome.final_fit.to_params())
    if source_dir is not None:
        params["source_dir"] = str(source_dir)
    return params


def _summary(outcome: TrainingOutcome) -> str:
    """One line for the run's and the version's description."""
    est = outcome.headline
    k = outcome.config.headline_k
    period = f"{outcome.periods.get('train_from')} .. {outcome.periods.get('train_until')}"
    verdict = "passed" if outcome.fairness_verdict.passed else "FAILED"
    final = outcome.final_fit
    refit = (
        f" Registered: the same recipe refitted on all {final.n_visits} labelled visits "
        f"{final.fit_from} .. {final.fit_until} ({final.n_rounds} rounds); the numbers are "
        "the split model's."
        if final is not None
        else ""
    )
    return (
        f"Trained on visits {period}; honest precision@{k} {est.estimate:.3f} "
        f"[{est.ci_low:.3f}, {est.ci_high:.3f}] (n={est.n}); fairness gate {verdict}.{refit}"
    )


def code_commit() -> str:
    """The git commit of the stratum_ml source that runs, ``-dirty`` if it has changes.

    ``"unknown"`` when the package is not in a git checkout (an installed wheel).
    """
    here = Path(stratum_ml.__file__).parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "") if head else "unknown"


def _register_draft(
    staging: Path,
    name: str,
    version: str,
    run_id: str,
    tags: dict[str, str],
    run_tags: dict[str, str],
) -> dict[str, Any]:
    """The register entry as far as the run knows it, by the generator ``stratum docs`` uses."""
    facts = VersionFacts(
        name=name,
        version=version,
        run_id=run_id,
        run=read_run_folder(staging),
        tags=tags,
        run_tags=run_tags,
        run_started=dt.datetime.now(dt.UTC),
    )
    return register_entry(facts).entry


def _version_tags(outcome: TrainingOutcome, run_id: str) -> dict[str, str]:
    tags = {
        TAG_RUN_ID: run_id,
        TAG_FAIRNESS_PASSED: str(outcome.fairness_verdict.passed).lower(),
        TAG_HEADLINE_K: str(outcome.config.headline_k),
        TAG_TRAINED_FROM: str(outcome.periods.get("train_from")),
        TAG_TRAINED_UNTIL: str(outcome.periods.get("train_until")),
        TAG_FEATURE_SET: outcome.feature_set.name,
        TAG_SOURCES_FINGERPRINT: sources_fingerprint(outcome.fingerprints),
    }
    for k, est in sorted(outcome.honest.items()):
        tags[honest_precision_tag(k)] = f"{est.estimate:.4f}"
    return tags


def log_training_run(
    outcome: TrainingOutcome,
    *,
    settings: Settings | None = None,
    model_name: str | None = None,
    source_dir: str | Path | None = None,
) -> RegisteredVersion:
    """Record a training as one MLflow run and register its model as ``challenger``.

    Parameters
    ----------
    outcome : TrainingOutcome
        What ``train`` produced. ``evaluation_data`` must hold ``holdout`` and
        ``population``.
    settings : Settings, optional
        Where the MLflow store is; default: from the environment.
    model_name : str, optional
        Registered model; default: the run config's, else ``settings.model_name``.
    source_dir : str or Path, optional
        The source folder trained on, recorded as a param and tag.

    Returns
    -------
    RegisteredVersion

    Raises
    ------
    ValueError
        If the outcome cannot be recorded completely (checked before any run starts).
    Exception
        Whatever failed inside the run; the run is then ended FAILED and no alias moves.
    """
    settings = settings or get_settings()
    name = model_name or outcome.config.model_name or settings.model_name
    _check_outcome(outcome)
    experiment_id = configure_mlflow(settings)
    client = client_for(settings)
    model = outcome.registered_model
    features = list(model.feature_names_in_)
    example = to_pyfunc_frame(outcome.evaluation_data["population"][features].head(5))
    fingerprint = sources_fingerprint(outcome.fingerprints)
    metrics = {**metrics_of(outcome.report), **violation_type_metrics(outcome.model)}
    run_tags = {
        "fairness_passed": str(outcome.fairness_verdict.passed).lower(),
        "sources_fingerprint": fingerprint,
        "registered_model": name,
        "stratum_ml_version": package_version(),
        "trained_from": str(outcome.periods.get("train_from")),
        "trained_until": str(outcome.periods.get("train_until")),
        **owner_tags(),  # a kill leaves it RUNNING: the next start marks it FAILED
        TAG_CODE_COMMIT: code_commit(),
    }
    if outcome.final_fit is not None:
        run_tags["final_fit_until"] = outcome.final_fit.fit_until
    if source_dir is not None:
        run_tags["source_dir"] = str(source_dir)

    with tempfile.TemporaryDirectory(prefix="stratum-run-") as tmp:
        staging = Path(tmp)
        _stage(outcome, staging)
        _point_cards(outcome, staging, name)
        with mlflow.start_run(
            experiment_id=experiment_id, tags=run_tags, description=_summary(outcome)
        ) as run:
            run_id = run.info.run_id
            mlflow.log_params(_params(outcome, source_dir))
            mlflow.log_metrics(metrics)
            mlflow.log_artifacts(str(staging))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_ENTRY),
                artifacts={MODEL_DIR_ARTIFACT: str(staging / RISK_MODEL_ARTIFACT)},
                code_paths=[str(Path(stratum_ml.__file__).parent)],
                signature=pyfunc_signature(model),
                input_example=example,
                pip_requirements=pip_requirements(),
                registered_model_name=name,
            )
            version = str(info.registered_model_version)
            mlflow.log_text(
                model_card_markdown(outcome, version, model_name=name, metrics=metrics),
                "model_card.md",
            )
            version_tags = _version_tags(outcome, run_id)
            mlflow.log_text(
                json_text(_register_draft(staging, name, version, run_id, version_tags, run_tags)),
                "algoritmeregister.json",
            )
            for key, value in version_tags.items():
                client.set_model_version_tag(name, version, key, value)
            client.update_model_version(name, version, description=_summary(outcome))
    client.set_registered_model_alias(name, CHALLENGER, version)
    return RegisteredVersion(
        run_id=run_id,
        version=version,
        model_uri=f"models:/{name}/{version}",
        experiment_id=experiment_id,
        model_name=name,
    )
