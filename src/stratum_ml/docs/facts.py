"""What the documentation may say about a model version: read from its run and the registry.

Nothing here is typed in by hand: every fact comes from the artifacts the
training run logged (the run config, the evaluation report, the fairness
verdict, the feature set and catalogue, the source fingerprints), from the
version's tags (the recorded fairness-risk acceptance, the promotion decision),
from the registry's promotion history, and from the scoring runs of the version
in the MLflow experiment ``scoring``. The same reader serves the training run's
staging folder (the draft entry logged with the run) and a downloaded run
(``stratum docs``).

The report is read as plain JSON, defensively: a field that an older or newer
report lacks is treated as unknown, never guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from stratum_ml.config import Settings
from stratum_ml.model.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    TAG_FAIRNESS_RISK_ACCEPTED,
    TAG_FAIRNESS_RISK_ACCEPTED_AT,
    TAG_FAIRNESS_RISK_ACCEPTED_BY,
    TAG_FAIRNESS_RISK_REASON,
    TAG_FRONTIER_CHOSEN_AT,
    TAG_FRONTIER_CHOSEN_BY,
    TAG_FRONTIER_CONSTRAINT,
    TAG_FRONTIER_POINT,
    TAG_FRONTIER_REASON,
    TAG_FRONTIER_SOURCE_RUN,
    TAG_FRONTIER_SOURCE_VERSION,
    TAG_FRONTIER_TRADEOFF,
    TAG_PROMOTION_CHECKED_AT,
    TAG_PROMOTION_DECISION,
    download_run_artifact,
)

__all__ = [
    "RUN_FILES",
    "Acceptance",
    "FrontierFacts",
    "Precision",
    "Promotion",
    "RunRecord",
    "ScoringRun",
    "VersionFacts",
    "gather_facts",
    "names",
    "precision_at",
    "read_run_folder",
]

#: run artifacts the documentation reads; the first two are required
RUN_FILES = (
    "run_config.yaml",
    "evaluation/report.json",
    "fairness/verdict.json",
    "features/feature_set.json",
    "features/catalogue.csv",
    "sources/fingerprints.json",
    "sources/row_counts.json",
)
#: run tag holding the commit of the code that trained the model (set by training)
TAG_CODE_COMMIT = "stratum_ml_commit"
#: the tag MLflow itself sets when a run starts from a git checkout
_MLFLOW_COMMIT = "mlflow.source.git.commit"
_SCORING_EXPERIMENT = "scoring"


def names(value: Any, otherwise: str) -> str:
    """A config list as comma-separated text; ``otherwise`` for None or an empty list."""
    if isinstance(value, list | tuple) and value:
        return ", ".join(str(v) for v in value)
    return otherwise


def _number(value: Any) -> float | None:
    """A finite float, or None for missing, null, NaN or non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


@dataclass(frozen=True)
class Precision:
    """The honest precision at one k, as the report holds it, and what it may be called.

    Attributes
    ----------
    k : int
        The list size asked for.
    estimate, ci_low, ci_high : float or None
        The estimate and its interval; None where the report has no number.
    n : int or None
        Random-sample visits behind the estimate.
    region_k : int or None
        How many of the highest-scored addresses the estimate is about.
    population : int or None
        Addresses scored.
    widened : bool
        Whether the report says the region was widened beyond the top ``k``.
    confidence : float or None
        Coverage of the interval.
    """

    k: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    region_k: int | None
    population: int | None
    widened: bool
    confidence: float | None

    @property
    def is_precision_at_k(self) -> bool:
        """Whether the number may be presented as precision@k.

        Only when there is an estimate, the region was not widened and the region is
        the top ``k`` itself (ties at the cut-off may add up to a tenth of ``k``).
        """
        if self.estimate is None or self.widened or self.region_k is None:
            return False
        return self.k <= self.region_k <= self.k + max(1, self.k // 10)

    @property
    def covers_population(self) -> bool:
        """Whether the region is every scored address (the estimate is the base rate)."""
        return self.region_k is not None and self.region_k == self.population


def precision_at(report: Mapping[str, Any], k: int) -> Precision | None:
    """The honest precision at ``k`` from a report (plain JSON), or None if it has none.

    Read defensively: a missing or null field is unknown; a report that marks the
    estimate as not estimable at ``k`` (any boolean field ``estimable``/``estimable_at_k``
    that is false) is treated as widened: its number is never precision@k, only
    the hit rate of the region it covers.
    """
    for at in report.get("precision", ()) or ():
        if not isinstance(at, Mapping) or at.get("k") != k:
            continue
        honest = at.get("honest")
        if not isinstance(honest, Mapping):
            return None
        estimable = all(
            honest.get(key) is not False for key in ("estimable", "estimable_at_k", "at_k")
        )
        return Precision(
            k=k,
            estimate=_number(honest.get("estimate")),
            ci_low=_number(honest.get("ci_low")),
            ci_high=_number(honest.get("ci_high")),
            n=_int(honest.get("n")),
            region_k=_int(honest.get("region_k")),
            population=_int(honest.get("population")),
            widened=honest.get("widened") is not False or not estimable,
            confidence=_number(honest.get("confidence")),
        )
    return None


@dataclass(frozen=True)
class RunRecord:
    """What a training run logged, as read back from its artifacts.

    Attributes
    ----------
    config : dict
        The run config (``run_config.yaml``).
    report : dict
        The evaluation report (``evaluation/report.json``), plain JSON.
    verdict : dict
        The fairness verdict with its checks (``fairness/verdict.json``); empty if absent.
    feature_set : str
        The feature set's name.
    features : tuple of str
        The features the model reads.
    catalogue : pandas.DataFrame
        The feature catalogue with ``in_model``; empty if absent.
    fingerprints : dict of str to str
        sha256 per source file.
    row_counts : dict of str to int
        Rows per source table.
    """

    config: dict[str, Any]
    report: dict[str, Any]
    verdict: dict[str, Any]
    feature_set: str
    features: tuple[str, ...]
    catalogue: pd.DataFrame
    fingerprints: dict[str, str]
    row_counts: dict[str, int]

    @property
    def headline_k(self) -> int:
        """The list size the report leads with (the config's, if the report lacks it)."""
        k = self.report.get("headline_k", self.config.get("headline_k"))
        return int(k) if isinstance(k, int) else 100

    @property
    def fairness_passed(self) -> bool | None:
        """The fairness gate's verdict; None if the report holds none."""
        fairness = self.report.get("fairness")
        if isinstance(fairness, Mapping) and isinstance(fairness.get("passed"), bool):
            return bool(fairness["passed"])
        return None

    @property
    def fairness_reasons(self) -> list[str]:
        """Why the fairness gate failed (empty when it passed)."""
        fairness = self.report.get("fairness")
        reasons = fairness.get("reasons", []) if isinstance(fairness, Mapping) else []
        return [str(r) for r in reasons or []]

    def precision(self, k: int | None = None) -> Precision | None:
        """The honest precision at ``k`` (default: the headline k)."""
        return precision_at(self.report, self.headline_k if k is None else k)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def read_run_folder(folder: str | Path) -> RunRecord:
    """Read a training run's artifacts from a local folder (staged or downloaded).

    Parameters
    ----------
    folder : str or Path
        Holds the run's artifacts at their run paths (:data:`RUN_FILES`).

    Raises
    ------
    ValueError
        If the run config or the evaluation report is missing or unreadable: the
        documentation would have nothing true to say.
    """
    folder = Path(folder)
    config_path, report_path = folder / RUN_FILES[0], folder / RUN_FILES[1]
    try:
        config = yaml.safe_load(config_path.read_text("utf-8"))
        report = json.loads(report_path.read_text("utf-8"))
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"the run holds no readable {RUN_FILES[0]} and {RUN_FILES[1]} ({exc}); "
            "documentation needs both, retrain to record them"
        ) from exc
    if not isinstance(config, dict) or not isinstance(report, dict):
        raise ValueError(f"{RUN_FILES[0]} and {RUN_FILES[1]} must each be a mapping")
    verdict = _read_json(folder / "fairness/verdict.json")
    feature_set = _read_json(folder / "features/feature_set.json") or {}
    catalogue_path = folder / "features/catalogue.csv"
    catalogue = pd.read_csv(catalogue_path) if catalogue_path.is_file() else pd.DataFrame()
    return RunRecord(
        config=config,
        report=report,
        verdict=verdict if isinstance(verdict, dict) else {},
        feature_set=str(feature_set.get("name", config.get("feature_set", ""))),
        features=tuple(feature_set.get("features", ())),
        catalogue=catalogue,
        fingerprints=dict(_read_json(folder / "sources/fingerprints.json") or {}),
        row_counts=dict(_read_json(folder / "sources/row_counts.json") or {}),
    )


@dataclass(frozen=True)
class Acceptance:
    """A recorded acceptance of a failed fairness gate (``stratum promote --accept-fairness-risk``).

    Attributes
    ----------
    reason, by, at : str
        The written reason, who gave it (OS user) and when (ISO time).
    """

    reason: str
    by: str
    at: str


@dataclass(frozen=True)
class FrontierFacts:
    """A version that is a fairness-frontier point (``stratum promote --frontier-point N``).

    Attributes
    ----------
    point : str
        The point's number in its training run's frontier.
    source_run : str
        That training run.
    source_version : str
        The version whose frontier it is ("" when not recorded).
    constraint : str
        The constraint it was fitted under ("" when not recorded).
    tradeoff : str
        Its estimated trade-off, one sentence ("" when not recorded).
    reason, by, at : str
        The recorded choice: the written reason, who, when ("" when none is recorded).
    """

    point: str
    source_run: str
    source_version: str
    constraint: str
    tradeoff: str
    reason: str
    by: str
    at: str


@dataclass(frozen=True)
class Promotion:
    """One version's promotion to champion, from the registry."""

    version: str
    at: dt.datetime


@dataclass(frozen=True)
class ScoringRun:
    """One stored scoring run of the version, from the MLflow experiment ``scoring``."""

    as_of: str
    drift: str


@dataclass(frozen=True)
class VersionFacts:
    """Everything the documentation of one registered version may state.

    Attributes
    ----------
    name, version, run_id : str
        The registered model, version and its training run.
    run : RunRecord
        The run's artifacts.
    aliases : tuple of str
        Aliases on the version now.
    tags : dict of str to str
        The version's tags.
    run_tags : dict of str to str
        The training run's tags.
    run_started : datetime or None
        When the training run started (UTC).
    run_status : str
        ``FINISHED``, ``FAILED``, ...
    promotions : tuple of Promotion
        Every promotion of any version of the model, oldest first.
    previous : VersionFacts or None
        The version this one replaced (or would replace): the champion before it.
    scoring_runs : tuple of ScoringRun
        Stored scoring runs of this version, oldest first.
    """

    name: str
    version: str
    run_id: str
    run: RunRecord
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    run_tags: dict[str, str] = field(default_factory=dict)
    run_started: dt.datetime | None = None
    run_status: str = "FINISHED"
    promotions: tuple[Promotion, ...] = ()
    previous: VersionFacts | None = None
    scoring_runs: tuple[ScoringRun, ...] = ()

    @property
    def source_id(self) -> str:
        """Model name and version: the entry's ``source_id``."""
        return f"{self.name} versie {self.version}"

    @property
    def commit(self) -> str | None:
        """The commit of the code that trained the model, if the run recorded one."""
        return self.run_tags.get(TAG_CODE_COMMIT) or self.run_tags.get(_MLFLOW_COMMIT) or None

    @property
    def acceptance(self) -> Acceptance | None:
        """The recorded fairness-risk acceptance, if the version carries one."""
        if self.tags.get(TAG_FAIRNESS_RISK_ACCEPTED) != "true":
            return None
        return Acceptance(
            reason=self.tags.get(TAG_FAIRNESS_RISK_REASON, ""),
            by=self.tags.get(TAG_FAIRNESS_RISK_ACCEPTED_BY, ""),
            at=self.tags.get(TAG_FAIRNESS_RISK_ACCEPTED_AT, ""),
        )

    @property
    def frontier(self) -> FrontierFacts | None:
        """The version's fairness-frontier point, if it is one."""
        point = self.tags.get(TAG_FRONTIER_POINT)
        if point is None:
            return None
        return FrontierFacts(
            point=point,
            source_run=self.tags.get(TAG_FRONTIER_SOURCE_RUN, ""),
            source_version=self.tags.get(TAG_FRONTIER_SOURCE_VERSION, ""),
            constraint=self.tags.get(TAG_FRONTIER_CONSTRAINT, ""),
            tradeoff=self.tags.get(TAG_FRONTIER_TRADEOFF, ""),
            reason=self.tags.get(TAG_FRONTIER_REASON, ""),
            by=self.tags.get(TAG_FRONTIER_CHOSEN_BY, ""),
            at=self.tags.get(TAG_FRONTIER_CHOSEN_AT, ""),
        )

    @property
    def promoted_at(self) -> dt.datetime | None:
        """When this version became champion (None: never)."""
        own = [p.at for p in self.promotions if p.version == self.version]
        return own[-1] if own else None

    @property
    def replaced_at(self) -> dt.datetime | None:
        """When another version replaced this one as champion (None: not replaced)."""
        start = self.promoted_at
        if start is None or CHAMPION in self.aliases:
            return None
        later = [p.at for p in self.promotions if p.at > start and p.version != self.version]
        return min(later) if later else None

    @property
    def status(self) -> str:
        """The register's status: ``In gebruik``, ``Buiten gebruik`` or ``In ontwikkeling``."""
        if CHAMPION in self.aliases:
            return "In gebruik"
        if self.promoted_at is not None:
            return "Buiten gebruik"
        return "In ontwikkeling"


def _when(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _promotions(client: MlflowClient, name: str) -> tuple[Promotion, ...]:
    """Every recorded promotion of the model's versions, oldest first."""
    found = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = dict(mv.tags or {})
        at = _when(tags.get(TAG_PROMOTION_CHECKED_AT))
        if tags.get(TAG_PROMOTION_DECISION) == "promoted" and at is not None:
            found.append(Promotion(str(mv.version), at))
    return tuple(sorted(found, key=lambda p: p.at))


def _scoring_runs(client: MlflowClient, name: str, version: str) -> tuple[ScoringRun, ...]:
    experiment = client.get_experiment_by_name(_SCORING_EXPERIMENT)
    if experiment is None:
        return ()
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"params.model_name = '{name}' and params.model_version = '{version}' "
        "and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    found = [
        ScoringRun(as_of=r.data.params.get("as_of", "?"), drift=r.data.params.get("drift", "?"))
        for r in runs
    ]
    return tuple(sorted(found, key=lambda s: s.as_of))


def _download_run(run_id: str, dst: Path, settings: Settings) -> RunRecord:
    for path in RUN_FILES:
        folder = dst / Path(path).parent  # MLflow puts a file at dst/<its name>
        folder.mkdir(parents=True, exist_ok=True)
        try:
            download_run_artifact(run_id, path, folder, settings)
        except (MlflowException, OSError):
            continue  # absent: read_run_folder says what it needs
    return read_run_folder(dst)


def _facts(
    client: MlflowClient,
    name: str,
    version: str,
    settings: Settings,
    promotions: tuple[Promotion, ...],
    *,
    with_previous: bool,
) -> VersionFacts:
    mv = client.get_model_version(name, version)
    run = client.get_run(str(mv.run_id))
    with tempfile.TemporaryDirectory(prefix="stratum-docs-") as tmp:
        record = _download_run(run.info.run_id, Path(tmp), settings)
    facts = VersionFacts(
        name=name,
        version=str(mv.version),
        run_id=run.info.run_id,
        run=record,
        aliases=tuple(mv.aliases or ()),
        tags=dict(mv.tags or {}),
        run_tags=dict(run.data.tags or {}),
        run_started=dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC),
        run_status=str(run.info.status),
        promotions=promotions,
        scoring_runs=_scoring_runs(client, name, str(mv.version)),
    )
    if not with_previous:
        return facts
    previous = _previous_version(client, facts)
    if previous is None:
        return facts
    prev = _facts(client, name, previous, settings, promotions, with_previous=False)
    return VersionFacts(**{**facts.__dict__, "previous": prev})


def _previous_version(client: MlflowClient, facts: VersionFacts) -> str | None:
    """The champion this version replaced, or would replace if it is not promoted."""
    start = facts.promoted_at
    if start is not None:
        before = [p for p in facts.promotions if p.at < start and p.version != facts.version]
        return before[-1].version if before else None
    aliases = {a: str(v) for a, v in client.get_registered_model(facts.name).aliases.items()}
    champion = aliases.get(CHAMPION) or aliases.get(PREVIOUS_CHAMPION)
    return champion if champion != facts.version else None


def gather_facts(
    model: str, *, model_name: str, settings: Settings, client: MlflowClient
) -> VersionFacts:
    """Read everything the documentation of one version may state.

    Parameters
    ----------
    model : str
        A version number or an alias (``champion``, ``challenger``, ...).
    model_name : str
        The registered model.
    settings : Settings
        Where the MLflow store is.
    client : MlflowClient

    Returns
    -------
    VersionFacts

    Raises
    ------
    LookupError
        If the model, version or alias does not exist.
    ValueError
        If the version's run lacks its run config or evaluation report.
    """
    try:
        if model.isdigit():
            mv = client.get_model_version(model_name, model)
        else:
            mv = client.get_model_version_by_alias(model_name, model)
    except MlflowException as exc:
        kind = "version" if model.isdigit() else "alias"
        raise LookupError(f"{model_name} has no {kind} {model!r}") from exc
    promotions = _promotions(client, model_name)
    return _facts(client, model_name, str(mv.version), settings, promotions, with_previous=True)


def is_challenger(facts: VersionFacts) -> bool:
    """Whether the version is the current challenger."""
    return CHALLENGER in facts.aliases
