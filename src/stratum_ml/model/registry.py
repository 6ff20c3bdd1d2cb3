"""The registry, read side: load a registered version by alias or number.

Aliases, not stages (stages are deprecated in MLflow):

* :data:`CHALLENGER`: the newest version whose training run finished (set by
  ``training.tracking``);
* :data:`CHAMPION`: the version that scores; moved only by ``training.registry.promote``;
* :data:`PREVIOUS_CHAMPION`: the champion before the last promotion, kept loadable
  so that a promotion can be undone by hand.

The names of the tags training writes on a version are here too (``TAG_*``), so
that readers and the writer share them. Writing (logging, promotion) is training's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from stratum_ml.config import Settings, get_settings
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.store import client_for, configure_mlflow

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "RISK_MODEL_ARTIFACT",
    "TAG_FAIRNESS_PASSED",
    "TAG_FAIRNESS_RISK_ACCEPTED",
    "TAG_FAIRNESS_RISK_ACCEPTED_AT",
    "TAG_FAIRNESS_RISK_ACCEPTED_BY",
    "TAG_FAIRNESS_RISK_REASON",
    "TAG_FEATURE_SET",
    "TAG_FRONTIER_CHOSEN",
    "TAG_FRONTIER_CHOSEN_AT",
    "TAG_FRONTIER_CHOSEN_BY",
    "TAG_FRONTIER_CONSTRAINT",
    "TAG_FRONTIER_POINT",
    "TAG_FRONTIER_REASON",
    "TAG_FRONTIER_SOURCE_RUN",
    "TAG_FRONTIER_SOURCE_VERSION",
    "TAG_FRONTIER_TRADEOFF",
    "TAG_HEADLINE_K",
    "TAG_PROMOTION_CHECKED_AT",
    "TAG_PROMOTION_DECISION",
    "TAG_PROMOTION_REASONS",
    "TAG_RUN_ID",
    "TAG_SOURCES_FINGERPRINT",
    "TAG_TRAINED_FROM",
    "TAG_TRAINED_UNTIL",
    "ArtifactMissing",
    "ModelVersionInfo",
    "champion_info",
    "download_run_artifact",
    "honest_precision_tag",
    "load_risk_model",
    "load_version",
    "read_run_artifact_text",
    "registered_aliases",
]

#: Alias of the version that scores.
CHAMPION = "champion"
#: Alias of the newest successfully logged version (promotion moves ``champion``).
CHALLENGER = "challenger"
#: Alias of the champion before the last promotion.
PREVIOUS_CHAMPION = "previous_champion"

#: Run artifact folder holding the :class:`RiskModel` files.
RISK_MODEL_ARTIFACT = "risk_model"

#: Version tags written when a training is logged.
TAG_RUN_ID = "run_id"
TAG_FAIRNESS_PASSED = "fairness_passed"
TAG_HEADLINE_K = "headline_k"
TAG_TRAINED_FROM = "trained_from"
TAG_TRAINED_UNTIL = "trained_until"
TAG_FEATURE_SET = "feature_set"
TAG_SOURCES_FINGERPRINT = "sources_fingerprint"
#: Version tags written by a promotion decision.
TAG_PROMOTION_DECISION = "promotion_decision"
TAG_PROMOTION_REASONS = "promotion_reasons"
TAG_PROMOTION_CHECKED_AT = "promotion_checked_at"
#: Version tags of a fairness risk accepted in writing at promotion.
TAG_FAIRNESS_RISK_ACCEPTED = "fairness_risk_accepted"
TAG_FAIRNESS_RISK_REASON = "fairness_risk_reason"
TAG_FAIRNESS_RISK_ACCEPTED_BY = "fairness_risk_accepted_by"
TAG_FAIRNESS_RISK_ACCEPTED_AT = "fairness_risk_accepted_at"
#: Version tags of a fairness-frontier point registered as a version
#: (``stratum promote --frontier-point N``): where it comes from, its constraint, and
#: the choice (reason, who, when, the estimated trade-off).
TAG_FRONTIER_SOURCE_RUN = "frontier_source_run"
TAG_FRONTIER_POINT = "frontier_point"
TAG_FRONTIER_CONSTRAINT = "frontier_constraint"
TAG_FRONTIER_CHOSEN = "frontier_point_chosen"
TAG_FRONTIER_SOURCE_VERSION = "frontier_point_source_version"
TAG_FRONTIER_REASON = "frontier_point_reason"
TAG_FRONTIER_TRADEOFF = "frontier_point_tradeoff"
TAG_FRONTIER_CHOSEN_BY = "frontier_point_chosen_by"
TAG_FRONTIER_CHOSEN_AT = "frontier_point_chosen_at"


def honest_precision_tag(k: int) -> str:
    """The version tag holding the honest precision@k estimate.

    Examples
    --------
    >>> honest_precision_tag(100)
    'honest_precision_at_100'
    """
    return f"honest_precision_at_{k}"


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
            trained_from=tags.get(TAG_TRAINED_FROM),
            trained_until=tags.get(TAG_TRAINED_UNTIL),
        )


def registered_model(client: MlflowClient, name: str) -> RegisteredModel | None:
    """The registry's entry of ``name`` (aliases and tags); None when it is not registered."""
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def aliases_of(registered: RegisteredModel) -> dict[str, str]:
    """Alias -> version of a registry entry."""
    return {alias: str(v) for alias, v in (registered.aliases or {}).items()}


def registered_aliases(client: MlflowClient, name: str) -> dict[str, str] | None:
    """Alias -> version of a registered model; None if no such model is registered."""
    registered = registered_model(client, name)
    return None if registered is None else aliases_of(registered)


def _resolve(client: MlflowClient, name: str, alias_or_version: str | int) -> ModelVersion:
    ref = str(alias_or_version)
    if ref.isdigit():
        return client.get_model_version(name, ref)
    return client.get_model_version_by_alias(name, ref)


def download_run_artifact(run_id: str, path: str, dst: Path, settings: Settings) -> Path:
    """Download one artifact (file or folder) of a run into ``dst``; return its local path.

    Raises
    ------
    mlflow.exceptions.MlflowException
        If the run has no such artifact.
    """
    local = download_artifacts(
        run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=settings.tracking_uri
    )
    return Path(local)


class ArtifactMissing(LookupError):
    """A run holds no artifact at the path asked for (or it could not be read)."""


def read_run_artifact_text(run_id: str, path: str, settings: Settings | None = None) -> str:
    """The text of one file artifact of a run.

    Parameters
    ----------
    run_id : str
        The MLflow run.
    path : str
        The artifact's path inside the run (``evaluation/report.json``, ...).
    settings : Settings, optional
        Where the MLflow store is; default: from the environment.

    Raises
    ------
    ArtifactMissing
        If the run has no such artifact, or it cannot be read; the message says why.
    """
    settings = settings or get_settings()
    configure_mlflow(settings)
    with tempfile.TemporaryDirectory(prefix="stratum-artifact-") as tmp:
        try:
            return download_run_artifact(run_id, path, Path(tmp), settings).read_text("utf-8")
        except (MlflowException, OSError) as exc:
            raise ArtifactMissing(f"run {run_id} has no readable {path} artifact ({exc})") from exc


def load_version(
    client: MlflowClient, name: str, ref: str | int, settings: Settings
) -> tuple[RiskModel, ModelVersion]:
    """Load version or alias ``ref`` of ``name`` with an open client (no configuring)."""
    mv = _resolve(client, name, ref)
    with tempfile.TemporaryDirectory(prefix="stratum-model-") as tmp:
        folder = download_run_artifact(str(mv.run_id), RISK_MODEL_ARTIFACT, Path(tmp), settings)
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
    model, mv = load_version(client_for(settings), name, alias_or_version, settings)
    return model, ModelVersionInfo.from_mlflow(mv)


def champion_info(
    model_name: str | None = None, settings: Settings | None = None
) -> ModelVersionInfo | None:
    """The current champion, or None when there is none (or no such model)."""
    settings = settings or get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    client = client_for(settings)
    aliases = registered_aliases(client, name)
    if not aliases or CHAMPION not in aliases:
        return None
    return ModelVersionInfo.from_mlflow(client.get_model_version(name, aliases[CHAMPION]))
