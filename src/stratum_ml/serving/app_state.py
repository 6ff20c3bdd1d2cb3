"""Everything the scoring service holds while it runs, loaded once at start-up.

:func:`load_state` reads, in this order, failing early with a
:class:`StartupError` that says what to do:

1. the settings (``STRATUM_*``, :class:`ServingSettings`);
2. the API key file and the audit log (cheap, and a damaged log must stop the
   service before its first request);
3. the ``champion`` version of the registered model from the MLflow store,
   with its model card, honest estimates and fairness verdict;
4. the source folder, validated against the data contract, and the scoring
   date, checked against its extract date;
5. the feature table of every dwelling as of the scoring date, scored
   (:class:`~stratum_ml.scoring.Scorer`);
6. the operational store (``STRATUM_DATABASE_URL``, default SQLite under
   ``STRATUM_HOME``; :func:`stratum_ml.store.open_store`), migrated, with the CSV
   stores of an earlier version imported: visit feedback and analysts' decisions.

The scoring date is fixed for the life of the process: ``STRATUM_AS_OF``, or
the extract date of the sources (:mod:`stratum_ml.sources.extract`); a date
after the extract date, or in the future, is refused. Restart the service to
score as of another date.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stratum_ml.config import Settings, get_settings
from stratum_ml.model.registry import (
    CHAMPION,
    ArtifactMissing,
    ModelVersionInfo,
    champion_info,
    load_risk_model,
    read_run_artifact_text,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring import Scorer
from stratum_ml.scoring.fallback import fallback_ranking
from stratum_ml.serving.api_models import DEFAULT_MAX_BATCH_SIZE
from stratum_ml.serving.audit import AuditLog, AuditLogError, default_audit_log
from stratum_ml.serving.auth import KeyStore, default_keys_file
from stratum_ml.serving.decisions import DecisionStore
from stratum_ml.serving.outcomes import OutcomeStore
from stratum_ml.serving.summary import DEFAULT_MIN_CELL_COUNT
from stratum_ml.sources import (
    AsOfAfterExtractError,
    ExtractDate,
    ExtractDateError,
    SourceTables,
    SourceValidationError,
    extract_date,
    guard_as_of,
    load_sources,
    read_extract_date,
)
from stratum_ml.store import Store, StoreError, open_store

#: run artifacts the model endpoint serves (written by ``training.tracking``)
MODEL_CARD_ARTIFACT = "model_card.md"
ESTIMATES_ARTIFACT = "evaluation/estimates.json"
FAIRNESS_ARTIFACT = "fairness/verdict.json"


class StartupError(RuntimeError):
    """The service cannot start; the message says why and what to do."""


class ScoringDateError(StartupError):
    """The scoring date asked for lies after the extract date of the sources, or in the future."""


class ServingSettings(BaseSettings):
    """Settings of the scoring service; each can be set as ``STRATUM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="STRATUM_", extra="ignore")

    sources: Path | None = Field(
        default=None, description="Source folder to score (`stratum serve --sources`)."
    )
    as_of: dt.date | None = Field(
        default=None,
        description="Scoring date YYYY-MM-DD; default: the extract date of the sources.",
    )
    max_batch_size: int = Field(
        default=DEFAULT_MAX_BATCH_SIZE,
        ge=1,
        le=10_000,
        description="Most address ids or feature rows per score request, and largest k.",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    min_cell_count: int = Field(
        default=DEFAULT_MIN_CELL_COUNT,
        ge=2,
        description="Smallest count the summary shows; smaller ones are withheld.",
    )


@dataclass(frozen=True)
class ModelFacts:
    """What the model endpoint tells about the serving version, read from its run."""

    info: ModelVersionInfo
    card_markdown: str
    estimates: dict[str, Any]
    fairness: dict[str, Any]


@dataclass(frozen=True)
class ServiceState:
    """The loaded service: model, data, scorer, keys, audit log, operational store."""

    settings: Settings
    serving: ServingSettings
    model: RiskModel
    facts: ModelFacts
    tables: SourceTables
    scorer: Scorer
    use_purpose: pd.Series
    keys: KeyStore
    audit: AuditLog
    store: Store
    outcomes: OutcomeStore
    decisions: DecisionStore

    @property
    def model_version(self) -> str:
        """The registered version that answers."""
        return self.facts.info.version

    @property
    def as_of(self) -> dt.date:
        """The scoring date."""
        return self.scorer.as_of

    @cached_property
    def fallback(self) -> pd.DataFrame:
        """The fallback ranking of the scoring date, served while the model is paused.

        Computed on first use (the first answer after a pause) and kept: the scoring
        date does not change while the service runs.
        """
        return fallback_ranking(self.scorer, self.tables)


def _artifact_text(run_id: str, path: str, settings: Settings) -> str:
    try:
        return read_run_artifact_text(run_id, path, settings)
    except ArtifactMissing as exc:
        raise StartupError(
            f"the champion's training run {run_id} has no {path} artifact ({exc.__cause__}); "
            "it was not logged completely: retrain and promote a new version"
        ) from None


def load_model_facts(info: ModelVersionInfo, settings: Settings) -> ModelFacts:
    """Read the model card, honest estimates and fairness verdict of a version's run."""
    card = _artifact_text(info.run_id, MODEL_CARD_ARTIFACT, settings)
    estimates = json.loads(_artifact_text(info.run_id, ESTIMATES_ARTIFACT, settings))
    fairness = json.loads(_artifact_text(info.run_id, FAIRNESS_ARTIFACT, settings))
    return ModelFacts(info=info, card_markdown=card, estimates=estimates, fairness=fairness)


def read_settings() -> tuple[Settings, ServingSettings]:
    """Both settings objects from the environment, or a :class:`StartupError`."""
    try:
        return get_settings(), ServingSettings()
    except ValidationError as exc:
        raise StartupError(f"invalid STRATUM_* setting:\n{exc}") from None


def resolve_champion(settings: Settings) -> ModelVersionInfo:
    """The champion version, or a :class:`StartupError` saying how to get one."""
    try:
        info = champion_info(settings=settings)
    except MlflowException as exc:
        raise StartupError(
            f"cannot read the model registry at {settings.tracking_uri}: {exc}"
        ) from None
    if info is None:
        raise StartupError(
            f"no champion model: {settings.model_name!r} in the MLflow store "
            f"{settings.tracking_uri} has no version with the alias '{CHAMPION}'. "
            "Train one with `stratum train` and promote it with `stratum promote`."
        )
    return info


def open_keys_and_log() -> tuple[KeyStore, AuditLog]:
    """The API key store and the audit log in force, or a :class:`StartupError`."""
    try:
        keys = KeyStore.load(default_keys_file())
    except (FileNotFoundError, ValueError) as exc:
        raise StartupError(str(exc)) from None
    try:
        audit = AuditLog(default_audit_log())
    except (AuditLogError, OSError) as exc:
        raise StartupError(f"cannot continue the audit log: {exc}") from None
    return keys, audit


def source_extract(folder: Path, tables: SourceTables | None = None) -> ExtractDate:
    """The extract date of the sources (of ``tables`` when loaded), or a :class:`StartupError`."""
    try:
        return extract_date(tables) if tables is not None else read_extract_date(folder)
    except (ExtractDateError, OSError) as exc:
        raise StartupError(
            f"the source folder {folder} has no usable extract date: {exc}"
        ) from None


def scoring_date(
    serving: ServingSettings, extract: ExtractDate, today: dt.date | None = None
) -> dt.date:
    """``STRATUM_AS_OF``, or the extract date of the sources.

    Raises
    ------
    ScoringDateError
        When the date lies after the extract date (the message names it and where it
        comes from) or in the future.
    """
    today = today or dt.date.today()
    if serving.as_of is None:
        if extract.date > today:
            raise ScoringDateError(
                f"the scoring date defaults to the extract date of the sources, {extract}, "
                f"which lies in the future (today is {today}); set STRATUM_AS_OF "
                "(`stratum serve --as-of`)"
            )
        return extract.date
    try:
        as_of = guard_as_of(serving.as_of, extract, what="the scoring date (STRATUM_AS_OF)")
    except AsOfAfterExtractError as exc:
        raise ScoringDateError(str(exc)) from None
    if as_of > today:
        raise ScoringDateError(f"STRATUM_AS_OF={as_of} lies in the future (today is {today})")
    return as_of


def source_folder(serving: ServingSettings) -> Path:
    """The source folder to score, or a :class:`StartupError`."""
    if serving.sources is None:
        raise StartupError("no source folder: set STRATUM_SOURCES (`stratum serve --sources DIR`)")
    if not serving.sources.is_dir():
        raise StartupError(f"source folder {serving.sources} does not exist")
    return serving.sources


def load_state() -> ServiceState:
    """Load everything the service needs (see the module docstring for the order).

    Returns
    -------
    ServiceState

    Raises
    ------
    StartupError
        When a setting is invalid, there are no keys, the audit log cannot be
        continued, there is no champion, the sources break the contract, the scoring
        date lies after their extract date (:class:`ScoringDateError`), or the
        operational store cannot be opened, migrated or its old CSV stores imported.
    """
    settings, serving = read_settings()
    folder = source_folder(serving)
    keys, audit = open_keys_and_log()
    info = resolve_champion(settings)
    # load by version, not alias: the alias may move while we load
    model, info = load_risk_model(settings.model_name, info.version, settings)
    facts = load_model_facts(info, settings)
    try:
        tables = load_sources(folder)
    except SourceValidationError as exc:
        raise StartupError(f"the source folder breaks the data contract:\n{exc}") from None
    as_of = scoring_date(serving, source_extract(folder, tables))
    try:
        scorer = Scorer.from_sources(model, tables, as_of)
    except ValueError as exc:
        raise StartupError(f"cannot score {folder} with version {info.version}: {exc}") from None
    try:
        store = open_store(settings.store_url, legacy_home=settings.home)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    addresses = tables.addresses
    return ServiceState(
        settings=settings,
        serving=serving,
        model=model,
        facts=facts,
        tables=tables,
        scorer=scorer,
        use_purpose=pd.Series(
            addresses["use_purpose"].astype("str").to_numpy(), index=addresses["address_id"]
        ),
        keys=keys,
        audit=audit,
        store=store,
        outcomes=OutcomeStore(store, addresses["address_id"]),
        decisions=DecisionStore(store),
    )
