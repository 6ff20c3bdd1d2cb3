"""Register a fairness-frontier point as a model version, for ``promote --frontier-point N``.

A training run with the frontier on logs every point under ``frontier/point_<N>/``
(its model, its own :class:`~stratum_ml.training.report.EvaluationReport` and its
drift reference) and the frontier table ``tables/fairness_frontier.csv``.
:func:`register_frontier_point` turns point ``N`` of a version's run into a
version of its own: a new MLflow run (tags ``frontier_source_run``,
``frontier_point``) that carries the source run's evaluation frames, tables and
sources with the point's model as ``risk_model/``, its report as the evaluation
report and its drift reference, and the pyfunc registered under the same name.
Registering the same point twice returns the version already registered. No alias
moves here; :func:`stratum_ml.training.registry.promote` decides on the new
version like on any other (fairness gate, paired comparison with the champion),
and records the choice -- reason, who, and the point's estimated trade-off
(:func:`frontier_tradeoff`) -- in the signed promotion decision.

Like every version, the registered point has its model card (``model_card.md``:
the card its training run wrote for the point, titled with the new version, with
the point's constraint, estimated trade-off and the recorded choice) and its
fairness verdict (``fairness/verdict.json``, the point's own), so that
``stratum docs --model VERSION`` documents it like any other version; its tags
(``frontier_point``, ``frontier_constraint``, ``frontier_point_reason``, ...) let the
documentation say that it is a frontier point and why it was chosen.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import stratum_ml
from stratum_ml.config import Settings
from stratum_ml.docs.facts import TAG_CODE_COMMIT
from stratum_ml.evaluation.design import NOT_ESTIMABLE
from stratum_ml.io import write_text_atomic
from stratum_ml.model.pyfunc import MODEL_DIR_ARTIFACT, PYFUNC_ENTRY, pyfunc_signature
from stratum_ml.model.reference import REFERENCE_ARTIFACT
from stratum_ml.model.registry import (
    RISK_MODEL_ARTIFACT,
    TAG_FAIRNESS_PASSED,
    TAG_FRONTIER_CHOSEN,
    TAG_FRONTIER_CHOSEN_AT,
    TAG_FRONTIER_CHOSEN_BY,
    TAG_FRONTIER_CONSTRAINT,
    TAG_FRONTIER_POINT,
    TAG_FRONTIER_REASON,
    TAG_FRONTIER_SOURCE_RUN,
    TAG_FRONTIER_SOURCE_VERSION,
    TAG_FRONTIER_TRADEOFF,
    TAG_RUN_ID,
    download_run_artifact,
    honest_precision_tag,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.training.card import FrontierNote, frontier_card_stub, frontier_choice_card
from stratum_ml.training.frontier import FRONTIER_ATTRIBUTE, frontier_point_artifact
from stratum_ml.training.report import REPORT_ARTIFACT, EvaluationReport

__all__ = [
    "FRONTIER_TABLE_NAME",
    "TAG_FRONTIER_POINT",
    "TAG_FRONTIER_SOURCE_RUN",
    "FrontierChoice",
    "FrontierPointError",
    "FrontierPointVersion",
    "choice_tags",
    "frontier_note",
    "frontier_tradeoff",
    "register_frontier_point",
]

#: the frontier table of a training run (``TrainingOutcome.tables`` key, and its artifact)
FRONTIER_TABLE_NAME = "fairness_frontier"
FRONTIER_TABLE = f"tables/{FRONTIER_TABLE_NAME}.csv"
#: the card a training run writes for each point, inside the point's folder
POINT_CARD = "model_card.md"
#: source-run artifacts a frontier version carries over (what promotion and drift read)
_CARRIED = ("evaluation", "features", "sources", "tables", "plots", "run_config.yaml")


class FrontierPointError(LookupError):
    """The run has no such frontier point (frontier off, or a number out of range)."""


@dataclass(frozen=True)
class FrontierChoice:
    """A person's choice of a frontier point (``promote --frontier-point N --reason``).

    Attributes
    ----------
    reason : str
        The written reason.
    by : str
        Who chose (the OS user).
    at : str
        When (ISO time, UTC).
    """

    reason: str
    by: str
    at: str


@dataclass(frozen=True)
class FrontierPointVersion:
    """A frontier point registered as a version.

    Attributes
    ----------
    version : str
        The registered model version holding the point's model.
    run_id : str
        Its MLflow run.
    source_version, source_run : str
        The version (and its training run) whose frontier the point belongs to.
    point : int
        The point's number.
    tradeoff : str
        The point's estimated trade-off, one sentence (:func:`frontier_tradeoff`).
    new : bool
        Whether this call registered it (False: it was registered before).
    """

    version: str
    run_id: str
    source_version: str
    source_run: str
    point: int
    tradeoff: str
    new: bool


def _num(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return "n/a" if math.isnan(number) else f"{number:.3f}"


def _innocents(row: pd.Series) -> str:
    cells = [
        f"{str(c).removeprefix('innocent_per_500_')} {float(row[c]):.0f}"
        for c in row.index
        if str(c).startswith("innocent_per_500_") and not pd.isna(row[c])
    ]
    return ", ".join(cells) or "not estimable"


def _point_row(table: pd.DataFrame, point: int) -> pd.Series:
    """The frontier table's row of ``point``; FrontierPointError if there is none."""
    points = table.loc[table["kind"] == "frontier"]
    rows = points.loc[points["point"].astype(float) == float(point)]
    if rows.empty:
        known = ", ".join(str(int(p)) for p in points["point"].astype(float))
        raise FrontierPointError(f"the frontier has no point {point} (points: {known or 'none'})")
    return rows.iloc[0]


def frontier_note(table: pd.DataFrame, point: int, k: int) -> FrontierNote:
    """What the model card of frontier point ``point`` says about it (constraint, trade-off).

    Raises
    ------
    FrontierPointError
        If the table has no row for ``point``.
    """
    row = _point_row(table, point)
    return FrontierNote(
        point=int(point),
        multiplier=float(row["multiplier"]),
        attribute=FRONTIER_ATTRIBUTE,
        tradeoff=frontier_tradeoff(table, point, k),
    )


def frontier_tradeoff(table: pd.DataFrame, point: int, k: int) -> str:
    """The estimated trade-off of frontier point ``point``, one sentence.

    Precision@``k`` and the false-positive-rate ratio of the point against the model
    (with the estimation method the table names), and the innocent households per
    group per 500 visits of the point, of the model and of current practice (the
    frontier table's rows ``model`` and ``current_practice``).

    Raises
    ------
    FrontierPointError
        If the table has no row for ``point``.
    """
    row = _point_row(table, point)
    model = table.loc[table["kind"] == "model"].iloc[0]
    practice = table.loc[table["kind"] == "current_practice"]
    practice_text = _innocents(practice.iloc[0]) if len(practice) else "not estimable"
    source = row.get("estimate_source")
    how = "" if not isinstance(source, str) else f" (estimates: {source})"
    return (
        f"frontier point {point} (multiplier {float(row['multiplier']):g}): precision@{k} "
        f"{_estimate(row, 'precision')} against the model's {_num(model['precision'])}; "
        f"false-positive-rate ratio {_estimate(row, 'fpr_ratio')} against "
        f"{_num(model['fpr_ratio'])}; innocent households per 500 visits by "
        f"{FRONTIER_ATTRIBUTE}: point {_innocents(row)}; model {_innocents(model)}; "
        f"current practice {practice_text}{how}"
    )


def _estimate(row: pd.Series, name: str) -> str:
    """``estimate [low, high]``, or the bounds of a quantity that is not estimable."""
    bounds = f"[{_num(row[f'{name}_low'])}, {_num(row[f'{name}_high'])}]"
    if row.get(f"{name}_method") == NOT_ESTIMABLE:
        return f"not estimable (worst/best case {bounds})"
    return f"{_num(row[name])} {bounds}"


def _existing(client: MlflowClient, name: str, source_run: str, point: int) -> str | None:
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = mv.tags or {}
        if tags.get(TAG_FRONTIER_SOURCE_RUN) == source_run and tags.get(TAG_FRONTIER_POINT) == str(
            point
        ):
            return str(mv.version)
    return None


def _stage(source_run: str, point: int, staging: Path, settings: Settings) -> tuple[Path, bool]:
    """Carry the source run's frames and tables over, the point's model and report in.

    Returns the point's local folder and whether the gate passed on it.
    """
    with tempfile.TemporaryDirectory(prefix="stratum-frontier-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            folder = download_run_artifact(
                source_run, frontier_point_artifact(point), tmp / "point", settings
            )
        except (MlflowException, OSError):
            folder = tmp / "absent"
        if not (folder / RISK_MODEL_ARTIFACT).is_dir():
            raise FrontierPointError(
                f"run {source_run} holds no frontier point {point}: train with "
                "frontier_grid_size > 0 in the run config to save the frontier's models"
            )
        shutil.copytree(folder, staging / "point")
        for path in _CARRIED:
            try:
                got = download_run_artifact(source_run, path, tmp / "carried", settings)
            except (MlflowException, OSError):
                continue
            target = staging / path
            if got.is_dir():
                shutil.copytree(got, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(got, target)
    point_dir = staging / "point"
    shutil.move(point_dir / RISK_MODEL_ARTIFACT, staging / RISK_MODEL_ARTIFACT)
    report = EvaluationReport.model_validate_json((point_dir / "report.json").read_text("utf-8"))
    write_text_atomic(staging / REPORT_ARTIFACT, report.to_json())
    reference = staging / REFERENCE_ARTIFACT
    reference.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(point_dir / "drift_reference.json", reference)
    from stratum_ml.training.tracking import json_text  # lazily: tracking imports this module

    write_text_atomic(staging / "fairness" / "verdict.json", json_text(report.fairness.to_dict()))
    card = point_dir / POINT_CARD
    if card.is_file():  # read by register_frontier_point, logged once the version is known
        shutil.move(card, staging.parent / POINT_CARD)
    shutil.rmtree(point_dir)
    return staging, report.fairness.passed


def _card(
    staging: Path,
    note: FrontierNote,
    registered: FrontierPointVersion,
    name: str,
    choice: FrontierChoice | None,
) -> str:
    """The registered point's model card: its run's card for it, titled and with the choice."""
    written = staging.parent / POINT_CARD
    card = written.read_text("utf-8") if written.is_file() else frontier_card_stub(name, note)
    return frontier_choice_card(
        card,
        model_name=name,
        version=registered.version,
        source_version=registered.source_version,
        source_run=registered.source_run,
        reason=choice.reason if choice else "(no reason recorded with the registration)",
        chosen_by=choice.by if choice else "unknown",
        chosen_at=choice.at if choice else "an unrecorded time",
    )


def register_frontier_point(
    client: MlflowClient,
    name: str,
    source_version: str,
    point: int,
    settings: Settings,
    choice: FrontierChoice | None = None,
) -> FrontierPointVersion:
    """Register point ``point`` of ``source_version``'s frontier (or find it registered).

    Parameters
    ----------
    client
        An MLflow client on the registry (MLflow configured for ``settings``).
    name
        The registered model.
    source_version
        The version whose training run logged the frontier.
    point
        The frontier point's number (the ``point`` column of ``fairness_frontier``).
    settings
        Where the MLflow store is.
    choice
        Who chose the point, when and why: written into the new version's model card
        and tags (``frontier_point_reason``, ...). A point registered before keeps
        its card; the promotion decision records every later choice.

    Returns
    -------
    FrontierPointVersion

    Raises
    ------
    FrontierPointError
        If the run logged no frontier, or no such point; nothing is registered.
    """
    # lazily: tracking imports this package's registry side
    from stratum_ml.model.store import configure_mlflow
    from stratum_ml.training.tracking import code_commit, json_text, pip_requirements

    source = client.get_model_version(name, source_version)
    source_run = str(source.run_id)
    with tempfile.TemporaryDirectory(prefix="stratum-frontier-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            table_path = download_run_artifact(source_run, FRONTIER_TABLE, tmp, settings)
        except (MlflowException, OSError):
            raise FrontierPointError(
                f"version {source_version} (run {source_run}) logged no fairness frontier: "
                "train with frontier_grid_size > 0 in the run config"
            ) from None
        table = pd.read_csv(table_path)
    source_tags = dict(source.tags or {})
    k = int(source_tags.get("headline_k", "100"))
    note = frontier_note(table, point, k)
    tradeoff = note.tradeoff
    found = _existing(client, name, source_run, point)
    if found is not None:
        run_id = str(client.get_model_version(name, found).run_id)
        return FrontierPointVersion(
            found, run_id, str(source_version), source_run, point, tradeoff, new=False
        )
    experiment_id = configure_mlflow(settings)
    source_run_tags = client.get_run(source_run).data.tags
    with tempfile.TemporaryDirectory(prefix="stratum-frontier-run-") as tmp_name:
        staging, passed = _stage(source_run, point, Path(tmp_name) / "run", settings)
        report = EvaluationReport.model_validate_json(
            (staging / REPORT_ARTIFACT).read_text("utf-8")
        )
        model = RiskModel.load(staging / RISK_MODEL_ARTIFACT)
        frontier_tags = {TAG_FRONTIER_SOURCE_RUN: source_run, TAG_FRONTIER_POINT: str(point)}
        run_tags = {
            key: value
            for key, value in source_run_tags.items()
            if key in ("sources_fingerprint", "registered_model", "trained_from", "trained_until")
            or key == "source_dir"
        } | {
            **frontier_tags,
            "fairness_passed": str(passed).lower(),
            TAG_CODE_COMMIT: code_commit(),
        }
        description = f"Fairness-frontier point {point} of version {source_version}: {tradeoff}."
        with mlflow.start_run(
            experiment_id=experiment_id, tags=run_tags, description=description[:4900]
        ) as run:
            run_id = run.info.run_id
            mlflow.log_params({"frontier_point": point, "frontier_source_version": source_version})
            mlflow.log_text(json_text({"tradeoff": tradeoff, **frontier_tags}), "frontier.json")
            mlflow.log_artifacts(str(staging))
            population = pd.read_parquet(staging / "evaluation" / "population.parquet")
            from stratum_ml.model.pyfunc import to_pyfunc_frame

            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_ENTRY),
                artifacts={MODEL_DIR_ARTIFACT: str(staging / RISK_MODEL_ARTIFACT)},
                code_paths=[str(Path(stratum_ml.__file__).parent)],
                signature=pyfunc_signature(model),
                input_example=to_pyfunc_frame(population[list(model.feature_names_in_)].head(5)),
                pip_requirements=pip_requirements(),
                registered_model_name=name,
            )
            version = str(info.registered_model_version)
            registered = FrontierPointVersion(
                version, run_id, str(source_version), source_run, point, tradeoff, new=True
            )
            mlflow.log_text(_card(staging, note, registered, name, choice), "model_card.md")
            carried = {
                key: value
                for key, value in source_tags.items()
                if key
                in (
                    "headline_k",
                    "trained_from",
                    "trained_until",
                    "feature_set",
                    "sources_fingerprint",
                )
            }
            tags = (
                carried
                | frontier_tags
                | {
                    TAG_RUN_ID: run_id,
                    TAG_FAIRNESS_PASSED: str(passed).lower(),
                    TAG_FRONTIER_CONSTRAINT: note.constraint,
                }
                | choice_tags(point, str(source_version), tradeoff, choice)
            )
            for at in report.precision:
                tags[honest_precision_tag(at.k)] = f"{at.honest.estimate:.4f}"
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
            client.update_model_version(name, version, description=description[:4900])
    return registered


def choice_tags(
    point: int, source_version: str, tradeoff: str, choice: FrontierChoice | None
) -> dict[str, str]:
    """The version tags of a choice; the promotion decision records the same ones."""
    if choice is None:
        return {}
    return {
        TAG_FRONTIER_CHOSEN: str(point),
        TAG_FRONTIER_SOURCE_VERSION: source_version,
        TAG_FRONTIER_REASON: choice.reason[:4900],
        TAG_FRONTIER_TRADEOFF: tradeoff[:4900],
        TAG_FRONTIER_CHOSEN_BY: choice.by,
        TAG_FRONTIER_CHOSEN_AT: choice.at,
    }
