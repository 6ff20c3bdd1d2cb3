"""Which champion the service may load: only one whose promotion record verifies.

The ``champion`` alias alone is not enough: anyone who can open the MLflow UI can
move it, or delete a recorded fairness-risk acceptance. :class:`ChampionWatch`
resolves the champion through the signed promotion records
(:func:`stratum_ml.model.promotion.verified_champion`), after completing a
promotion a kill interrupted. When the registry disagrees with the records it
keeps serving the last verified version and tells the admin: the ``model``
endpoint shows :attr:`ChampionWatch.problems`, the server log gets a warning,
and every admin subscription (:mod:`stratum_ml.notify`) is sent a message, once
per distinct problem: once for all the service's workers, and again only after
:data:`RETELL_SECONDS` (a file in the home folder, under a lock, says what was told
when).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable

from mlflow.exceptions import MlflowException

from stratum_ml.config import Settings
from stratum_ml.io import process_lock, write_text_atomic
from stratum_ml.model.promotion import (
    PROMOTION_PURPOSE,
    ChampionCheck,
    complete_pending,
    verified_champion,
)
from stratum_ml.model.registry import CHAMPION, ModelVersionInfo
from stratum_ml.model.store import client_for, configure_mlflow
from stratum_ml.signing import SigningKeyError, load_signing_key

__all__ = ["ChampionUnverified", "ChampionWatch", "check_champion", "first_to_tell"]

log = logging.getLogger(__name__)

#: what the admin was told when, shared by the service's workers (in the home folder)
TOLD_FILE = "champion_alerts.json"
#: a problem still there is told again after this many seconds (a day)
RETELL_SECONDS = 24 * 3600.0


def first_to_tell(settings: Settings, problem: str, now: float | None = None) -> bool:
    """True for the first worker to tell ``problem`` within :data:`RETELL_SECONDS`.

    Records it as told (so the other workers, and a restart within the period,
    stay silent).
    """
    path = settings.home / TOLD_FILE
    now = time.time() if now is None else now
    key = hashlib.sha256(problem.encode()).hexdigest()
    with process_lock(path.with_name(path.name + ".lock")):
        try:
            told = {k: float(v) for k, v in json.loads(path.read_text("utf-8")).items()}
        except (FileNotFoundError, ValueError, AttributeError):
            told = {}
        if now - told.get(key, -RETELL_SECONDS) < RETELL_SECONDS:
            return False
        told = {k: v for k, v in told.items() if now - v < RETELL_SECONDS}
        told[key] = now
        write_text_atomic(path, json.dumps(told))
    return True


class ChampionUnverified(RuntimeError):
    """No version has a verified promotion record; the message says what to do."""


def check_champion(settings: Settings) -> ChampionCheck:
    """Complete an interrupted promotion (when allowed), then resolve the verified champion.

    Raises
    ------
    mlflow.exceptions.MlflowException
        When the registry cannot be read.
    stratum_ml.signing.SigningKeyError
        When the ``promotion`` key cannot be read.
    """
    configure_mlflow(settings)
    client = client_for(settings)
    key = load_signing_key(PROMOTION_PURPOSE, settings=settings)
    try:
        complete_pending(client, settings.model_name, key)
    except MlflowException as exc:  # a reader without write rights still reads the record
        log.warning("cannot complete the pending promotion: %s", exc)
    return verified_champion(client, settings.model_name, key)


def verified_info(settings: Settings) -> tuple[ModelVersionInfo, ChampionCheck]:
    """The verified champion's registry entry and the check it came from.

    Raises
    ------
    ChampionUnverified
        When no version has a verified promotion record.
    """
    try:
        check = check_champion(settings)
    except SigningKeyError as exc:
        raise ChampionUnverified(f"the promotion key cannot be read: {exc}") from None
    if check.version is None:
        where = (
            f"the champion alias points at version {check.alias}, but "
            if check.alias is not None
            else f"{settings.model_name!r} has no '{CHAMPION}' and "
        )
        raise ChampionUnverified(
            f"{where}no version of {settings.model_name!r} has a verified promotion record "
            f"in {settings.tracking_uri}."
            + (f" Problems: {'; '.join(check.problems)}." if check.problems else "")
        )
    mv = client_for(settings).get_model_version(settings.model_name, check.version)
    return ModelVersionInfo.from_mlflow(mv), check


class ChampionWatch:
    """The service's view of the champion: the verified one, and what is wrong, if anything.

    Parameters
    ----------
    settings
        Where the registry is.
    alert
        Called with a message for the admin when a new problem is seen (sends it to
        the admin subscriptions); None for none.
    """

    def __init__(self, settings: Settings, alert: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.alert = alert
        self._lock = threading.Lock()
        self._problems: tuple[str, ...] = ()
        self._told: set[str] = set()
        #: the alert threads started (tests join them)
        self.alerts: list[threading.Thread] = []

    @property
    def problems(self) -> list[str]:
        """What is wrong with the registry's champion now (empty when all verifies)."""
        with self._lock:
            return list(self._problems)

    def _note(self, problems: tuple[str, ...], serving: str | None) -> None:
        with self._lock:
            self._problems = problems
            new = [p for p in problems if p not in self._told]
            self._told.update(new)
        for problem in new:
            message = (
                f"registry: {problem}. The service keeps serving version {serving}, the last "
                "verified champion."
            )
            log.warning("%s", message)
            # once for all workers; in the background: a slow receiver delays no answer
            if self.alert is not None and first_to_tell(self.settings, problem):
                thread = threading.Thread(
                    target=self._send, args=(message,), name="registry-alert", daemon=True
                )
                thread.start()
                self.alerts.append(thread)

    def _send(self, message: str) -> None:
        assert self.alert is not None
        try:
            self.alert(message)
        except Exception:  # telling the admin must not stop the service
            log.exception("the admin could not be notified")

    def startup(self) -> ModelVersionInfo:
        """The version to start with: the newest verified champion.

        Raises
        ------
        ChampionUnverified
            When there is none.
        """
        info, check = verified_info(self.settings)
        self._note(check.problems, info.version)
        return info

    def champion(self, serving: str) -> str:
        """The version to serve now, given the one serving: a new one only when all verifies."""
        try:
            check = check_champion(self.settings)
        except (MlflowException, SigningKeyError) as exc:
            self._note((f"the registry or the promotion key cannot be read ({exc})",), serving)
            return serving
        if check.version is not None and check.alias == check.version:
            # the alias and the newest verified record agree: follow them
            self._note(check.problems, check.version)
            return check.version
        self._note(check.problems or ("no version has a verified promotion record",), serving)
        return serving
