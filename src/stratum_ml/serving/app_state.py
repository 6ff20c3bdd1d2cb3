"""Everything the scoring service holds while it runs.

:func:`load_state` reads, in this order, failing early with a
:class:`StartupError` that says what to do:

1. the settings (``STRATUM_*``, :class:`ServingSettings`);
2. the API key file and the audit log (cheap, and a damaged log must stop the
   service before its first request);
3. the operational store (``STRATUM_DATABASE_URL``, default SQLite under
   ``STRATUM_HOME``; :func:`stratum_ml.store.open_store`), migrated, with the CSV
   stores of an earlier version imported: visit feedback and analysts' decisions;
4. the champion of the registered model from the MLflow store, resolved
   through its signed promotion record (:mod:`stratum_ml.serving.champion_watch`:
   an alias moved outside ``stratum promote`` is not followed), with its model
   card, honest estimates and fairness verdict; MLflow runs a killed process left
   RUNNING are marked FAILED first;
5. the source folder, validated against the data contract, and its extract date;
6. the stored scoring run to serve (:mod:`stratum_ml.serving.served_run`): the
   champion's latest run, or its run as of ``STRATUM_AS_OF``; made when missing
   (as of ``STRATUM_AS_OF``, the latest stored run's date, or the extract date).
   A date after the extract date, or in the future, is refused.

The service follows new runs and a new champion without a restart
(:class:`~stratum_ml.serving.served_run.RunFollower`); every answer names the
model version and the run it came from.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stratum_ml.config import Settings, get_settings, restrict_umask, secure_home
from stratum_ml.io import remove_stale_temp_files
from stratum_ml.model.registry import (
    ArtifactMissing,
    ModelVersionInfo,
    read_run_artifact_text,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.store import interrupted_runs_failed
from stratum_ml.notify.alerts import alert_admins
from stratum_ml.notify.outbox import DeliveryConfig
from stratum_ml.runs import RunSummary
from stratum_ml.scoring import Scorer
from stratum_ml.serving.api_models import DEFAULT_MAX_BATCH_SIZE
from stratum_ml.serving.audit import (
    BODY_KEY_FILE,
    AuditLog,
    AuditLogError,
    body_key,
    default_audit_log,
)
from stratum_ml.serving.audit_anchor import DAILY_SECONDS, run_checkpointer
from stratum_ml.serving.auth import KeyStore, default_keys_file
from stratum_ml.serving.champion_watch import ChampionUnverified, ChampionWatch
from stratum_ml.serving.decisions import DecisionStore
from stratum_ml.serving.outcomes import OutcomeStore
from stratum_ml.serving.served_run import (
    RunFollower,
    ServedRun,
    ServedRunError,
    latest_as_of,
    load_served_run,
)
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

if TYPE_CHECKING:
    from stratum_ml.serving.gate.limits import RateLimiter

log = logging.getLogger(__name__)

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
    cool_off_days: int = Field(
        default=180,
        ge=0,
        description="Addresses visited within this many days before the run's date (or "
        "after it) leave the priority list for its `recently_visited` part.",
    )
    champion_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Least seconds between two registry lookups of the champion alias.",
    )
    audit_checkpoint_seconds: float = Field(
        default=DAILY_SECONDS,
        gt=0,
        le=DAILY_SECONDS,
        description="Seconds between two signed checkpoints of the audit log while the "
        "service runs (at most a day); one is also taken at every start and clean stop.",
    )
    rate_per_address: float = Field(
        default=50.0, gt=0, description="Requests a second one client address may send."
    )
    burst_per_address: int = Field(
        default=200, ge=1, description="Requests one client address may send at once."
    )
    rate_per_key: float = Field(
        default=50.0, gt=0, description="Requests a second one API key may send."
    )
    burst_per_key: int = Field(default=200, ge=1, description="Requests one key may send at once.")
    bad_keys_per_minute: float = Field(
        default=12.0,
        gt=0,
        description="Calls with a missing, unknown or wrong key one client address may make "
        "a minute; past that (and the burst), it gets 429 for everything.",
    )
    bad_keys_burst: int = Field(
        default=30, ge=1, description="Calls with a bad key one client address may make at once."
    )
    key_lock_after: int = Field(
        default=10,
        ge=1,
        description="Wrong secrets with one key id (within key_lock_window_s) that lock the key "
        "until an admin unlocks it (`stratum keys unlock`).",
    )
    key_lock_window_s: float = Field(
        default=900.0, gt=0, description="Seconds over which wrong secrets are counted."
    )
    min_free_disk_mb: int = Field(
        default=100,
        ge=0,
        description="Below this much free disk (MB) where the audit log or the store lies, the "
        "writing endpoints answer 503 (0: no floor).",
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
    """The loaded service: keys, audit log, operational store and the run in force.

    ``model``, ``facts``, ``tables``, ``scorer``, ``run`` and ``fallback`` are those of
    the run answering now (:attr:`follower`); :meth:`refresh`, called at the start of
    each request, may swap in a newer run.
    """

    settings: Settings
    serving: ServingSettings
    use_purpose: pd.Series
    keys: KeyStore
    audit: AuditLog
    store: Store
    outcomes: OutcomeStore
    decisions: DecisionStore
    follower: RunFollower
    facts_of: dict[str, ModelFacts]
    champion_watch: ChampionWatch | None = None
    #: the key of the keyed hash a refused request's body is recorded as (audit.body_key)
    body_key: bytes = b""
    #: the rate limits' buckets, shared by the workers (None: the gate keeps its own)
    limiter: RateLimiter | None = None

    def refresh(self) -> ServedRun:
        """The run to answer this request with (a newer one when it has been loaded)."""
        return self.follower.current()

    @property
    def served(self) -> ServedRun:
        """The run answering now."""
        return self.follower.served

    @property
    def run(self) -> RunSummary:
        """The stored run answering now."""
        return self.served.run

    @property
    def model(self) -> RiskModel:
        """The model version of the run in force."""
        return self.served.model

    @property
    def facts(self) -> ModelFacts:
        """Model card, estimates and fairness verdict of the version in force."""
        return self.facts_of[self.served.info.version]

    @property
    def tables(self) -> SourceTables:
        """The source tables the run in force was made from."""
        return self.served.tables

    @property
    def scorer(self) -> Scorer:
        """Every dwelling scored as of the run's date by its model version."""
        return self.served.scorer

    @property
    def model_version(self) -> str:
        """The registered version that answers."""
        return self.served.info.version

    @property
    def as_of(self) -> dt.date:
        """The scoring date: the date of the run in force."""
        return self.served.run.as_of

    @property
    def fallback(self) -> pd.DataFrame:
        """The fallback ranking of the run's date, served while the model is paused."""
        return self.served.fallback


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


def resolve_champion(settings: Settings, watch: ChampionWatch | None = None) -> ModelVersionInfo:
    """The verified champion version, or a :class:`StartupError` saying how to get one.

    The champion is resolved through the signed promotion records
    (:mod:`stratum_ml.serving.champion_watch`), not the alias alone.
    """
    watch = watch or ChampionWatch(settings)
    try:
        return watch.startup()
    except MlflowException as exc:
        raise StartupError(
            f"cannot read the model registry at {settings.tracking_uri}: {exc}"
        ) from None
    except ChampionUnverified as exc:
        raise StartupError(
            f"no champion model to serve: {exc} Train one with `stratum train` and promote "
            "it with `stratum promote` (where the promotion signing key is)."
        ) from None


def admin_alert(store: Store, settings: Settings) -> Callable[[str], None]:
    """Sends a registry alert to the admin subscriptions (:func:`stratum_ml.notify.alerts`)."""

    def alert(text: str) -> None:
        alert_admins(
            store,
            DeliveryConfig.from_settings(settings),
            "stratum: the registry's champion does not verify",
            text,
        )

    return alert


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


def recover_after_crash(settings: Settings) -> None:
    """What a killed process left: stale temp files under the home, RUNNING MLflow runs."""
    for path in remove_stale_temp_files(settings.home):
        log.info("removed %s, left by an interrupted write", path)
    try:
        for run_id in interrupted_runs_failed(settings):
            log.warning("MLflow run %s was left RUNNING by a killed process: FAILED", run_id)
    except MlflowException as exc:  # a read-only registry: nothing to repair here
        log.warning("cannot mark interrupted MLflow runs FAILED: %s", exc)


def shared_limiter(settings: Settings) -> RateLimiter:
    """The rate limits' buckets every worker of the service shares (in the home folder)."""
    from stratum_ml.serving.gate.limits import RATE_LIMITS_FILE, RateLimiter  # (a cycle)

    return RateLimiter(path=settings.home / RATE_LIMITS_FILE)


def load_state() -> ServiceState:
    """Load everything the service needs (see the module docstring for the order).

    Returns
    -------
    ServiceState

    Raises
    ------
    StartupError
        When a setting is invalid, there are no keys, the audit log cannot be
        continued, the operational store cannot be opened, migrated or its old CSV
        stores imported, there is no champion, the sources break the contract, the
        scoring date lies after their extract date (:class:`ScoringDateError`), or the
        stored run cannot be served.
    """
    settings, serving = read_settings()
    restrict_umask()  # the audit log, the store, run artifacts: the owner's only
    secure_home(settings.home)
    folder = source_folder(serving)
    keys, audit = open_keys_and_log()
    try:
        store = open_store(settings.store_url, legacy_home=settings.home)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    recover_after_crash(settings)
    watch = ChampionWatch(settings, alert=admin_alert(store, settings))
    info = resolve_champion(settings, watch)
    try:
        tables = load_sources(folder)
    except SourceValidationError as exc:
        raise StartupError(f"the source folder breaks the data contract:\n{exc}") from None
    extract = source_extract(folder, tables)
    # STRATUM_AS_OF when set (and not after the extract date), else the extract date
    first_as_of = scoring_date(serving, extract)
    pinned = first_as_of if serving.as_of is not None else None
    facts_of: dict[str, ModelFacts] = {}

    def load(version: str, loaded: SourceTables) -> ServedRun:
        served = load_served_run(
            store,
            settings,
            folder,
            version=version,
            as_of=pinned,
            # a new champion gets a run of the latest stored run's date
            default_as_of=latest_as_of(store, settings.model_name) or first_as_of,
            tables=loaded,
            audit_checkpoint=run_checkpointer(audit, store),
        )
        if version not in facts_of:
            facts_of[version] = load_model_facts(served.info, settings)
        return served

    try:
        served = load(info.version, tables)
    except (ServedRunError, ValueError, MlflowException) as exc:
        raise StartupError(f"cannot serve version {info.version} on {folder}: {exc}") from None
    followers: list[RunFollower] = []
    follower = RunFollower(
        served,
        store,
        # a new champion only when its promotion record verifies; else the one serving
        champion=lambda: watch.champion(followers[0].served.info.version),
        load=load,
        check_seconds=serving.champion_check_seconds,
        pinned=pinned,
    )
    followers.append(follower)
    # every worker watches the registry on its own, not only when a request comes in
    follower.start_watching()
    addresses = tables.addresses
    return ServiceState(
        settings=settings,
        serving=serving,
        use_purpose=pd.Series(
            addresses["use_purpose"].astype("str").to_numpy(), index=addresses["address_id"]
        ),
        keys=keys,
        audit=audit,
        store=store,
        outcomes=OutcomeStore(store, addresses["address_id"], audit),
        decisions=DecisionStore(store, audit),
        follower=follower,
        facts_of=facts_of,
        champion_watch=watch,
        body_key=body_key(settings.home / BODY_KEY_FILE),
        limiter=shared_limiter(settings),
    )
