"""The stored scoring run the service answers from, and how it follows new runs.

The service serves a stored run (:mod:`stratum_ml.runs`): by default the latest
run of the ``champion`` version; with ``STRATUM_AS_OF`` the champion's run for
that date. When the run it needs is not stored yet (no run at all, a date with
no run, a newly promoted champion), it makes it with
:func:`stratum_ml.runs.create_run` (idempotent), as of ``STRATUM_AS_OF``, else
the date of the latest stored run, else the extract date of the sources.
Several workers starting at once make it once: the first under a file lock
(``<home>/serve.lock``) makes it, the others then find it stored.

:class:`RunFollower` keeps the service current without a restart. Each request
calls :meth:`RunFollower.current`, which costs one small read-only query (the
latest run of the champion version in the store) and, at most every
``STRATUM_CHAMPION_CHECK_SECONDS``, starts a registry lookup of the champion (the
verified one: :mod:`stratum_ml.serving.champion_watch`) in the background, so that
no request waits for the registry. Every worker also looks the champion up on its
own every ``STRATUM_CHAMPION_CHECK_SECONDS``, requests or not
(:meth:`RunFollower.start_watching`): a request is answered from the lookup before
it, so a worker that got no request for a while would otherwise still report what
it saw then (a moved alias long repaired). When either changed, a
background thread loads the new run (model version, sources when the run was
made from other files, the scorer); the old
run keeps answering until the new one is ready, and it is swapped in at the
start of a request, never in the middle of one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from stratum_ml.config import Settings
from stratum_ml.io import process_lock
from stratum_ml.model.registry import ModelVersionInfo, load_risk_model
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.runs import RunModel, RunSummary, create_run, get_run
from stratum_ml.scoring import Scorer
from stratum_ml.scoring.fallback import fallback_ranking
from stratum_ml.sources import SourceTables, load_sources
from stratum_ml.sources.tables import sources_fingerprint
from stratum_ml.store import Store
from stratum_ml.store.tables import ScoringRunRow

log = logging.getLogger(__name__)

#: the lock file, in the home folder, held while a worker makes the run to serve
RUN_LOCK_FILE = "serve.lock"
#: least wait of the champion watch between two looks (while a slow lookup runs)
MIN_WATCH_SECONDS = 0.1


class ServedRunError(RuntimeError):
    """A stored run cannot be served; the message says why."""


@dataclass(frozen=True)
class ServedRun:
    """One stored run, loaded: its summary, model version and scorer as of its date."""

    run: RunSummary
    model: RiskModel
    info: ModelVersionInfo
    tables: SourceTables
    scorer: Scorer

    @cached_property
    def fallback(self) -> pd.DataFrame:
        """The fallback ranking of the run's date, served while the model is paused."""
        return fallback_ranking(self.scorer, self.tables)


def latest_run_id(
    store: Store, model_name: str, version: str, as_of: dt.date | None = None
) -> str | None:
    """The latest stored run of one model version (of one date, when given), or None;
    read again only when something was committed to the store since (:meth:`Store.memo`)."""

    def read() -> str | None:
        query = select(ScoringRunRow.run_id).where(
            ScoringRunRow.model_name == model_name, ScoringRunRow.model_version == version
        )
        if as_of is not None:
            query = query.where(ScoringRunRow.as_of == as_of)
        query = query.order_by(ScoringRunRow.as_of.desc(), ScoringRunRow.seq.desc()).limit(1)
        with store.reading() as session:
            return session.scalars(query).first()

    return store.memo(("latest_run_id", model_name, version, as_of), read)


def latest_as_of(store: Store, model_name: str) -> dt.date | None:
    """The date of the latest stored run of any version of the model, or None."""
    query = (
        select(ScoringRunRow.as_of)
        .where(ScoringRunRow.model_name == model_name)
        .order_by(ScoringRunRow.as_of.desc())
        .limit(1)
    )
    with store.reading() as session:
        return session.scalars(query).first()


def _tables_for(run: RunSummary, folder: Path, loaded: SourceTables | None) -> SourceTables:
    """The source tables the run was made from: those loaded, or the folder read again."""
    if loaded is not None and sources_fingerprint(loaded.fingerprints) == run.sources_fingerprint:
        return loaded
    tables = load_sources(folder)
    if sources_fingerprint(tables.fingerprints) != run.sources_fingerprint:
        raise ServedRunError(
            f"run {run.run_id} (as of {run.as_of}) was made from other source files than "
            f"those now in {folder}; run `stratum run` on the folder to serve its data"
        )
    return tables


def load_served_run(
    store: Store,
    settings: Settings,
    folder: Path,
    *,
    version: str,
    as_of: dt.date | None,
    default_as_of: dt.date,
    tables: SourceTables | None = None,
    audit_checkpoint: Callable[[], tuple[str, str]] | None = None,
) -> ServedRun:
    """Load the run to serve of one model version, making it first when it is not stored.

    Parameters
    ----------
    store, settings
        The operational store and where the registry is.
    folder
        The source folder (read again only when ``tables`` are not the run's).
    version
        The registered version (the champion).
    as_of
        Serve the run of this date (``STRATUM_AS_OF``); None: the latest run.
    default_as_of
        The date of the run to make when the version has none (and ``as_of`` is None).
    tables
        The source tables already loaded, if any.
    audit_checkpoint
        Passed to :func:`~stratum_ml.runs.create_run` when a run is made: the audit
        log's checkpoint for its MLflow run.

    Raises
    ------
    ServedRunError
        When the stored run was made from other source files than the folder holds.
    ValueError
        When the model cannot score the sources (see :func:`~stratum_ml.runs.create_run`).
    """
    model, info = load_risk_model(settings.model_name, version, settings)
    run_id = latest_run_id(store, info.name, info.version, as_of)
    if run_id is None:
        # several workers start at once: one makes the run, the others then find it
        with process_lock(settings.home / RUN_LOCK_FILE):
            run_id = latest_run_id(store, info.name, info.version, as_of)
            if run_id is None:
                loaded = tables if tables is not None else load_sources(folder)
                run_id = create_run(
                    loaded,
                    as_of or default_as_of,
                    RunModel(model, info),
                    store,
                    settings=settings,
                    audit_checkpoint=audit_checkpoint,
                ).run_id
    run = get_run(store, run_id)
    loaded = _tables_for(run, folder, tables)
    scorer = Scorer.from_sources(model, loaded, run.as_of)
    return ServedRun(run=run, model=model, info=info, tables=loaded, scorer=scorer)


class RunFollower:
    """The run in force, swapped for a newer one (or a new champion's) without a restart.

    Parameters
    ----------
    served
        The run loaded at start-up.
    store
        Where runs are stored.
    champion
        Returns the champion version now (a registry lookup).
    load
        Loads the run to serve of a version (:func:`load_served_run` bound to the
        service's settings); given the version and the tables in force.
    check_seconds
        Least time between two champion lookups.
    pinned
        The date the service is held to (``STRATUM_AS_OF``), or None.
    """

    def __init__(
        self,
        served: ServedRun,
        store: Store,
        *,
        champion: Callable[[], str],
        load: Callable[[str, SourceTables], ServedRun],
        check_seconds: float,
        pinned: dt.date | None,
    ) -> None:
        self._served = served
        self._store = store
        self._champion = champion
        self._load = load
        self._check_seconds = check_seconds
        self._pinned = pinned
        self._version = served.info.version
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()
        self._pending: ServedRun | None = None
        self._loading: threading.Thread | None = None
        self._looking: threading.Thread | None = None
        self._failed: tuple[str, str | None] | None = None
        self._watching: threading.Thread | None = None
        self._stop_watching = threading.Event()

    @property
    def served(self) -> ServedRun:
        """The run answering now (no check)."""
        return self._served

    def current(self) -> ServedRun:
        """Swap in a run loaded in the background, look for a newer one, return the run in force.

        A failed load is logged and not retried until the champion or the latest run
        changes again; the run in force keeps answering.
        """
        with self._lock:
            if self._pending is not None:
                old, self._served, self._pending = self._served, self._pending, None
                log.info(
                    "now serving run %s (version %s, as of %s) instead of run %s",
                    self._served.run.run_id,
                    self._served.info.version,
                    self._served.run.as_of,
                    old.run.run_id,
                )
            # the registry is looked at even while a run loads (a slow load must not hide
            # a moved alias from the model endpoint for as long as it takes)
            self._check_champion()
            if self._loading is not None and self._loading.is_alive():
                return self._served
            latest = latest_run_id(self._store, self._served.info.name, self._version, self._pinned)
            target = (self._version, latest)
            wanted = self._version != self._served.info.version or (
                latest is not None and latest != self._served.run.run_id
            )
            if wanted and target != self._failed:
                self._loading = threading.Thread(
                    target=self._load_in_background,
                    args=(target,),
                    daemon=True,
                    name="stratum-run-loader",
                )
                self._loading.start()
            return self._served

    def wait_loaded(self, timeout: float) -> None:
        """Block until a background champion lookup and load (if any) have finished; for
        tests and shutdown."""
        for thread in (self._looking, self._loading):
            if thread is not None:
                thread.join(timeout)

    def start_watching(self) -> None:
        """Look the champion up every ``check_seconds`` in the background, requests or not.

        A lookup started by a request ends after that request was answered; without
        this, a worker the kernel hands no connection for a while keeps what it saw at
        its last request (the registry's problems included, see
        :class:`~stratum_ml.serving.champion_watch.ChampionWatch`) and tells it at its
        next answer. Watching, every worker is at most ``check_seconds`` and one lookup
        behind the registry. Idempotent.
        """
        with self._lock:
            if self._watching is not None:
                return
            self._watching = threading.Thread(
                target=self._watch, daemon=True, name="stratum-champion-watch"
            )
            self._watching.start()

    def stop_watching(self, timeout: float = 10.0) -> None:
        """End :meth:`start_watching` (and wait for a lookup it started); for tests and
        shutdown."""
        self._stop_watching.set()
        if self._watching is not None:
            self._watching.join(timeout)
        if self._looking is not None:
            self._looking.join(timeout)

    def _watch(self) -> None:
        while True:
            with self._lock:
                self._check_champion()
                due = self._checked_at + self._check_seconds - time.monotonic()
            if self._stop_watching.wait(max(due, MIN_WATCH_SECONDS)):
                return

    def _check_champion(self) -> None:
        """Start a registry lookup of the champion when one is due (under ``_lock``).

        It runs in the background: a lookup (registry calls, a signature check) takes
        tens to hundreds of milliseconds, which every request waiting for the lock would
        otherwise pay. A new version is acted on by the first request after it is found.
        """
        now = time.monotonic()
        if now - self._checked_at < self._check_seconds:
            return
        if self._looking is not None and self._looking.is_alive():
            return
        self._checked_at = now
        self._looking = threading.Thread(
            target=self._look_up_champion, daemon=True, name="stratum-champion-check"
        )
        self._looking.start()

    def _look_up_champion(self) -> None:
        try:
            version = self._champion()
        except Exception as exc:  # a registry hiccup must not stop the answers
            log.warning("cannot look up the champion; serving version %s: %s", self._version, exc)
            return
        with self._lock:
            self._version = version

    def _load_in_background(self, target: tuple[str, str | None]) -> None:
        try:
            loaded = self._load(target[0], self._served.tables)
        except Exception as exc:
            log.error("cannot serve version %s, run %s: %s", target[0], target[1], exc)
            with self._lock:
                self._failed = target
            return
        with self._lock:
            self._pending = loaded
            self._failed = None
