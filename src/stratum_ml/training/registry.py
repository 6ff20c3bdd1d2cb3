"""The model registry: load versions by alias, and gated promotion to ``champion``.

Aliases, not stages (stages are deprecated in MLflow):

* ``challenger``: the newest version whose training run finished (set by tracking);
* ``champion``: the version that scores; moved only by :func:`promote`;
* ``previous_champion``: the champion before the last promotion, kept loadable so
  that a promotion can be undone by hand.

:func:`promote` moves ``champion`` to a challenger only when (a) the challenger's
fairness gate passed and (b) its honest precision@k is not worse than the current
champion's, both models scored on the *challenger's* logged holdout and population
(the same random-sample visits). Otherwise it refuses, naming every failed check.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from stratum_ml.config import Settings, get_settings
from stratum_ml.evaluation.gates import PromotionCheck
from stratum_ml.evaluation.metrics import HonestEstimate
from stratum_ml.training.config import RunConfig
from stratum_ml.training.holdout import honest_estimates
from stratum_ml.training.model import RiskModel
from stratum_ml.training.tracking import (
    CHALLENGER,
    RISK_MODEL_ARTIFACT,
    client_for,
    configure_mlflow,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "ModelVersionInfo",
    "PromotionResult",
    "champion_info",
    "load_risk_model",
    "promote",
]

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
FAIRNESS_CHECK = "fairness gate"


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered version, as the registry knows it.

    Attributes
    ----------
    name, version : str
        Registered model and version.
    aliases : tuple of str
        Aliases pointing at this version.
    run_id : str
        The training run.
    tags : dict of str to str
        Version tags (``fairness_passed``, ``honest_precision_at_<k>``, ...).
    trained_from, trained_until : str or None
        The period of the visits the model was trained on.
    """

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str
    tags: dict[str, str]
    trained_from: str | None
    trained_until: str | None

    @classmethod
    def from_mlflow(cls, mv: ModelVersion) -> ModelVersionInfo:
        """Read an MLflow ``ModelVersion``."""
        tags = dict(mv.tags or {})
        return cls(
            name=mv.name,
            version=str(mv.version),
            aliases=tuple(mv.aliases or ()),
            run_id=str(mv.run_id),
            tags=tags,
            trained_from=tags.get("trained_from"),
            trained_until=tags.get("trained_until"),
        )


@dataclass
class PromotionResult:
    """What :func:`promote` decided, and why.

    Attributes
    ----------
    promoted : bool
        Whether ``champion`` now points at the challenger.
    reasons : list of str
        One sentence per check, each starting with the check's name
        (``fairness gate``, ``honest precision@k``, ...); on refusal, the failed ones.
    previous_champion : str or None
        The champion version before the call.
    new_champion : str or None
        The champion version after the call (unchanged when refused).
    challenger : str or None
        The version considered.
    challenger_estimate, champion_estimate : HonestEstimate or None
        Both models' honest estimates on the challenger's holdout, when computed.
    """

    promoted: bool
    reasons: list[str]
    previous_champion: str | None
    new_champion: str | None
    challenger: str | None = None
    challenger_estimate: HonestEstimate | None = field(default=None, repr=False)
    champion_estimate: HonestEstimate | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- loading


def _aliases(client: MlflowClient, name: str) -> dict[str, str] | None:
    """Alias -> version of a registered model; None if no such model is registered."""
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return {alias: str(v) for alias, v in (registered.aliases or {}).items()}


def _resolve(client: MlflowClient, name: str, alias_or_version: str | int) -> ModelVersion:
    ref = str(alias_or_version)
    if ref.isdigit():
        return client.get_model_version(name, ref)
    return client.get_model_version_by_alias(name, ref)


def _download(run_id: str, path: str, dst: Path, settings: Settings) -> Path:
    local = download_artifacts(
        run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=settings.tracking_uri
    )
    return Path(local)


def _load_version(
    client: MlflowClient, name: str, ref: str | int, settings: Settings
) -> tuple[RiskModel, ModelVersion]:
    mv = _resolve(client, name, ref)
    with tempfile.TemporaryDirectory(prefix="stratum-model-") as tmp:
        folder = _download(str(mv.run_id), RISK_MODEL_ARTIFACT, Path(tmp), settings)
        return RiskModel.load(folder), mv


def load_risk_model(
    model_name: str | None = None,
    alias_or_version: str | int = CHAMPION,
    settings: Settings | None = None,
) -> tuple[RiskModel, ModelVersionInfo]:
    """Load a registered version as a :class:`RiskModel` (not only the pyfunc).

    Parameters
    ----------
    model_name : str, optional
        Registered model; default ``settings.model_name``.
    alias_or_version : str or int, default "champion"
        An alias (``champion``, ``challenger``, ``previous_champion``) or a version number.
    settings : Settings, optional
        Where the MLflow store is; default: from the environment.

    Returns
    -------
    (RiskModel, ModelVersionInfo)

    Raises
    ------
    mlflow.exceptions.MlflowException
        If the model, version or alias does not exist.
    """
    settings = settings or get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    model, mv = _load_version(client_for(settings), name, alias_or_version, settings)
    return model, ModelVersionInfo.from_mlflow(mv)


def champion_info(
    model_name: str | None = None, settings: Settings | None = None
) -> ModelVersionInfo | None:
    """The current champion, or None when there is none (or no such model)."""
    settings = settings or get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    client = client_for(settings)
    aliases = _aliases(client, name)
    if not aliases or CHAMPION not in aliases:
        return None
    return ModelVersionInfo.from_mlflow(client.get_model_version(name, aliases[CHAMPION]))


# --------------------------------------------------------------------------- promotion


def _fairness(run_id: str, tmp: Path, settings: Settings) -> tuple[bool, str]:
    """The challenger's logged fairness verdict, as (passed, reason)."""
    try:
        path = _download(run_id, "fairness/verdict.json", tmp, settings)
    except MlflowException:
        return False, f"{FAIRNESS_CHECK}: the challenger's run holds no fairness verdict"
    verdict = json.loads(path.read_text("utf-8"))
    if verdict.get("passed") is True:
        return True, f"{FAIRNESS_CHECK}: passed"
    failed = "; ".join(verdict.get("reasons") or ["no reason recorded"])
    return False, f"{FAIRNESS_CHECK} failed: {failed}"


def _aligned_estimates(
    challenger: RiskModel,
    champion: RiskModel,
    holdout: pd.DataFrame,
    population: pd.DataFrame,
    k: int,
) -> tuple[HonestEstimate, HonestEstimate]:
    """Both models' honest precision over the same region of the population.

    A model's region can be larger than ``k``: the estimator widens it when too few
    random-sample visits fall in the top ``k``, and ties at the cut-off join it.
    When the two regions differ in size, both are re-estimated for the larger one
    until they agree; ``k`` grows every round, and the whole population is a
    region both agree on.
    """
    while True:
        ours = honest_estimates(challenger, holdout, population, [k])[k]
        theirs = honest_estimates(champion, holdout, population, [k])[k]
        if ours.region_k == theirs.region_k:
            return ours, theirs
        k = max(ours.region_k, theirs.region_k)


def _honest_check(
    client: MlflowClient,
    name: str,
    challenger: str,
    champion: str | None,
    run_id: str,
    settings: Settings,
    tolerance: float,
) -> tuple[bool, str, HonestEstimate | None, HonestEstimate | None]:
    """Compare challenger and champion on the challenger's holdout: (ok, reason, ours, theirs)."""
    with tempfile.TemporaryDirectory(prefix="stratum-promote-") as tmp_name:
        tmp = Path(tmp_name)
        config_text = _download(run_id, "run_config.yaml", tmp, settings).read_text("utf-8")
        holdout = pd.read_parquet(_download(run_id, "evaluation/holdout.parquet", tmp, settings))
        population = pd.read_parquet(
            _download(run_id, "evaluation/population.parquet", tmp, settings)
        )
    k = RunConfig.model_validate(yaml.safe_load(config_text)).headline_k
    label = f"honest precision@{k}"
    check = PromotionCheck(tolerance=tolerance)
    challenger_model, _ = _load_version(client, name, challenger, settings)
    if champion is None:
        ours = honest_estimates(challenger_model, holdout, population, [k])[k]
        ok, why = check.compare_honest(ours, None)
        return ok, f"{label}: {why}", ours, None
    champion_model, _ = _load_version(client, name, champion, settings)
    try:
        ours, theirs = _aligned_estimates(challenger_model, champion_model, holdout, population, k)
    except ValueError as exc:  # the champion reads a feature the frames lack
        return (
            False,
            f"{label}: champion version {champion} cannot be scored on the challenger's "
            f"holdout ({exc}), so the two cannot be compared",
            None,
            None,
        )
    ok, why = check.compare_honest(ours, theirs)
    return ok, f"{label}: {why}", ours, theirs


def promote(
    model_name: str | None = None,
    version: str | int | None = None,
    *,
    settings: Settings | None = None,
    tolerance: float = 0.0,
    accept_fairness_risk: str | None = None,
) -> PromotionResult:
    """Move ``champion`` to a challenger if it is fair and not worse; otherwise refuse.

    Checks, all evaluated so that a refusal names every failure:

    1. ``training run``: the challenger's run finished (a crashed run is never promoted);
    2. ``fairness gate``: the challenger's logged verdict passed;
    3. ``honest precision@k``: on the challenger's logged holdout and population,
       the challenger's honest precision at the headline k is at least the
       champion's minus ``tolerance`` (:meth:`PromotionCheck.compare_honest`).
       Without a champion, a fair challenger is promoted.

    On promotion the old champion gets the alias ``previous_champion`` (it stays
    registered and loadable) and the ``challenger`` alias is removed. The decision
    is recorded as tags on the challenger version (``promotion_decision``,
    ``promotion_reasons``, ``promotion_checked_at``).

    Parameters
    ----------
    model_name : str, optional
        Registered model; default ``settings.model_name``.
    version : str or int, optional
        The version to promote; default: the one with alias ``challenger``.
    settings : Settings, optional
        Where the MLflow store is; default: from the environment.
    tolerance : float, default 0.0
        How far the challenger's honest precision may fall below the champion's.
    accept_fairness_risk : str, optional
        A person's written reason (at least 30 characters) for promoting although the
        fairness gate failed. Every other check still applies. The acceptance, the
        reason, who gave it (the OS user) and when are recorded as version tags
        (``fairness_risk_accepted``, ``fairness_risk_reason``, ``fairness_risk_accepted_by``,
        ``fairness_risk_accepted_at``) and stay in the reasons of the result; the
        failed verdict itself stays in the run and the model card.

    Returns
    -------
    PromotionResult
    """
    settings = settings or get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    client = client_for(settings)
    aliases = _aliases(client, name)
    if aliases is None:
        return PromotionResult(
            False, [f"no registered model named {name!r}; train one first"], None, None
        )
    champion = aliases.get(CHAMPION)
    target = str(version) if version is not None else aliases.get(CHALLENGER)
    if target is None:
        return PromotionResult(
            False, [f"{name} has no challenger; train a model first"], champion, champion
        )
    if target == champion:
        return PromotionResult(
            False, [f"version {target} is already the champion"], champion, champion, target
        )
    try:
        mv = client.get_model_version(name, target)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return PromotionResult(
            False, [f"{name} has no version {target}"], champion, champion, target
        )
    run = client.get_run(str(mv.run_id))
    run_id = run.info.run_id
    result = PromotionResult(False, [], champion, champion, target)
    passed: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="stratum-verdict-") as tmp:
        fair, reason = _fairness(run_id, Path(tmp), settings)
    accepted: dict[str, str] = {}
    if fair:
        passed.append(reason)
    elif accept_fairness_risk is not None and len(accept_fairness_risk.strip()) >= 30:
        accepted = {
            "fairness_risk_accepted": "true",
            "fairness_risk_reason": accept_fairness_risk.strip()[:4900],
            "fairness_risk_accepted_by": getpass.getuser(),
            "fairness_risk_accepted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        passed.append(
            f"{reason} -- RISK ACCEPTED by {accepted['fairness_risk_accepted_by']}: "
            f"{accepted['fairness_risk_reason']}"
        )
    else:
        if accept_fairness_risk is not None:
            reason += "; an accepted-risk reason must be at least 30 characters"
        failed.append(reason)
    if run.info.status != "FINISHED":
        failed.append(
            f"training run: run {run_id} of version {target} ended {run.info.status}, "
            "not FINISHED, so the version is incomplete"
        )
    else:
        ok, reason, ours, theirs = _honest_check(
            client, name, target, champion, run_id, settings, tolerance
        )
        (passed if ok else failed).append(reason)
        result.challenger_estimate, result.champion_estimate = ours, theirs

    result.promoted = not failed
    result.reasons = passed if result.promoted else failed
    decision = {
        "promotion_checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "promotion_decision": "promoted" if result.promoted else "refused",
        "promotion_reasons": "; ".join(result.reasons)[:4900],
    }
    if result.promoted:
        decision.update(accepted)
    for key, value in decision.items():
        client.set_model_version_tag(name, target, key, value)
    if result.promoted:
        if champion is not None:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, champion)
        client.set_registered_model_alias(name, CHAMPION, target)
        if aliases.get(CHALLENGER) == target:
            client.delete_registered_model_alias(name, CHALLENGER)
        result.new_champion = target
    return result
