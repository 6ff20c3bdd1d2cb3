"""The registry, write side: gated promotion to ``champion``.

The aliases (``challenger``, ``champion``, ``previous_champion``) and loading a
version are the runtime's: :mod:`stratum_ml.model.registry`.

:func:`promote` moves ``champion`` to a challenger only when (a) the challenger's
fairness gate passed and (b) it is not worse than the current champion beyond the
interval of the paired difference in precision@k, both models scored on the
*challenger's* logged holdout and population (the same random-sample visits; see
:mod:`stratum_ml.training.compare`). Otherwise it refuses, naming every failed check.
The challenger's verdict and headline k are read from its logged
:class:`~stratum_ml.training.report.EvaluationReport`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from stratum_ml.config import Settings, get_settings
from stratum_ml.docs.pack import TAG_DOCS_PACK_SHA256
from stratum_ml.evaluation.gates import PromotionCheck
from stratum_ml.evaluation.metrics import HonestEstimate
from stratum_ml.model.registry import (
    CHALLENGER,
    TAG_FAIRNESS_RISK_ACCEPTED,
    TAG_FAIRNESS_RISK_ACCEPTED_AT,
    TAG_FAIRNESS_RISK_ACCEPTED_BY,
    TAG_FAIRNESS_RISK_REASON,
    TAG_FRONTIER_CHOSEN,
    TAG_FRONTIER_CHOSEN_BY,
    TAG_FRONTIER_REASON,
    TAG_FRONTIER_SOURCE_VERSION,
    TAG_FRONTIER_TRADEOFF,
    TAG_PROMOTION_CHECKED_AT,
    TAG_PROMOTION_DECISION,
    TAG_PROMOTION_REASONS,
    download_run_artifact,
    registered_aliases,
)
from stratum_ml.model.store import client_for, configure_mlflow
from stratum_ml.store import Store
from stratum_ml.training.compare import (
    VersionComparison,
    evaluated_model,
    paired_comparison,
    paired_verdict,
)
from stratum_ml.training.frontier_point import (
    FrontierChoice,
    FrontierPointError,
    choice_tags,
    register_frontier_point,
)
from stratum_ml.training.holdout import honest_estimates
from stratum_ml.training.promotion import (
    commit_promotion,
    finish_interrupted,
    verified_champion_version,
)
from stratum_ml.training.report import EvaluationReport, ReportMissing, read_logged_report

__all__ = [
    "FAIRNESS_CHECK",
    "FRONTIER_CHECK",
    "TAG_FRONTIER_CHOSEN",
    "TAG_PROMOTION_DOCS_PACK",
    "PromotionResult",
    "promote",
]

#: the name a promotion's fairness reasons start with
FAIRNESS_CHECK = "fairness gate"
#: decision tag: the hash of the documentation pack the version carried when decided
#: (``stratum docs`` tags the version with it; "none" when no pack was written)
TAG_PROMOTION_DOCS_PACK = "promotion_docs_pack_sha256"
#: the name a frontier choice's reasons start with
FRONTIER_CHECK = "frontier point"


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
        Both models' estimates on the challenger's holdout visits at the k decided on,
        when computed.
    comparison : VersionComparison or None
        The paired comparison with the champion (per k, and the decision).
        Both models' honest estimates on the challenger's holdout, when computed.
    docs_pack_sha256 : str or None
        The hash of the version's documentation pack (``stratum docs``) at the decision,
        also recorded as the tag ``promotion_docs_pack_sha256``; None if it has none.
    """

    promoted: bool
    reasons: list[str]
    previous_champion: str | None
    new_champion: str | None
    challenger: str | None = None
    challenger_estimate: HonestEstimate | None = field(default=None, repr=False)
    champion_estimate: HonestEstimate | None = field(default=None, repr=False)
    comparison: VersionComparison | None = field(default=None, repr=False)
    docs_pack_sha256: str | None = None


# --------------------------------------------------------------------------- promotion


def _fairness(report: EvaluationReport | None) -> tuple[bool, str]:
    """The challenger's logged fairness verdict, as (passed, reason)."""
    if report is None:
        return False, f"{FAIRNESS_CHECK}: the challenger's run holds no evaluation report"
    if report.fairness.passed:
        return True, f"{FAIRNESS_CHECK}: passed"
    failed = "; ".join(report.fairness.reasons or ["no reason recorded"])
    return False, f"{FAIRNESS_CHECK} failed: {failed}"


def _first_check(
    client: MlflowClient, name: str, challenger: str, run_id: str, settings: Settings, k: int
) -> tuple[bool, str, HonestEstimate]:
    """Without a champion: the challenger's honest estimate on its own holdout.

    Of its evaluated model: a registered final fit has seen the holdout visits.
    """
    with tempfile.TemporaryDirectory(prefix="stratum-promote-") as tmp_name:
        tmp = Path(tmp_name)
        holdout = pd.read_parquet(
            download_run_artifact(run_id, "evaluation/holdout.parquet", tmp, settings)
        )
        population = pd.read_parquet(
            download_run_artifact(run_id, "evaluation/population.parquet", tmp, settings)
        )
    challenger_model, _ = evaluated_model(client, name, challenger, settings)
    ours = honest_estimates(challenger_model, holdout, population, [k])[k]
    ok, why = PromotionCheck().compare_honest(ours, None)
    return ok, f"honest precision@{k}: {why}", ours


def _honest_check(
    client: MlflowClient,
    name: str,
    challenger: str,
    champion: str | None,
    run_id: str,
    settings: Settings,
    tolerance: float,
    report: EvaluationReport,
    store: Store | None = None,
) -> tuple[bool, str, VersionComparison | None, HonestEstimate | None]:
    """Challenger against champion, paired on the challenger's holdout visits.

    Returns (ok, reason, the comparison, the challenger's estimate without a champion).
    The decision is :func:`~stratum_ml.training.compare.paired_verdict`'s.
    """
    k = report.headline_k
    label = f"honest precision@{k}"
    if champion is None:
        ok, why, ours = _first_check(client, name, challenger, run_id, settings, k)
        return ok, why, None, ours
    try:
        result = paired_comparison(
            client,
            name,
            challenger,
            champion,
            settings,
            ks=tuple(at.k for at in report.precision),
            decide_k=k,
            store=store,
        )
    except ValueError as exc:  # the champion reads a feature the frames lack
        return (
            False,
            f"{label}: champion version {champion} cannot be scored on the challenger's "
            f"holdout ({exc}), so the two cannot be compared",
            None,
            None,
        )
    ok, why = paired_verdict(result, tolerance)
    return ok, f"{label}: {why}", result, None


def promote(
    model_name: str | None = None,
    version: str | int | None = None,
    *,
    settings: Settings | None = None,
    tolerance: float = 0.0,
    accept_fairness_risk: str | None = None,
    frontier_point: int | None = None,
    frontier_reason: str | None = None,
    store: Store | None = None,
) -> PromotionResult:
    """Move ``champion`` to a challenger if it is fair and not worse; otherwise refuse.

    Checks, all evaluated so that a refusal names every failure:

    1. ``training run``: the challenger's run finished (a crashed run is never promoted);
    2. ``fairness gate``: the challenger's logged verdict passed;
    3. ``honest precision@k``: both versions' evaluated models are scored on the
       challenger's logged holdout and population, on the same random-sample visits,
       and the paired difference in precision at the headline k is estimated with a
       bootstrap interval (:func:`~stratum_ml.training.compare.paired_comparison`);
       the challenger is refused only when it is worse beyond that interval (its
       upper end below ``-tolerance``), see
       :func:`~stratum_ml.training.compare.paired_verdict`. Without a champion, a fair
       challenger with an honest estimate is promoted.

    On promotion the old champion gets the alias ``previous_champion`` (it stays
    registered and loadable) and the ``challenger`` alias is removed. The decision
    is recorded as tags on the challenger version (``promotion_decision``,
    ``promotion_reasons``, ``promotion_checked_at``). A promotion is first recorded as
    one signed decision and then applied (:mod:`stratum_ml.training.promotion`); a
    promotion a kill interrupted is completed at the start of the next call. The decision records
    ``promotion_docs_pack_sha256``: the hash of the documentation pack ``stratum docs``
    wrote for the version, or ``none``.

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
    frontier_point : int, optional
        Promote point N of the fairness frontier that ``version``'s (default: the
        challenger's) training run logged, instead of its registered model: the point
        is registered as a version of its own (or the version registered for it
        before is used; :func:`~stratum_ml.training.frontier_point.register_frontier_point`)
        and every check above applies to it (its own fairness verdict, the paired
        comparison with the champion). Needs ``frontier_reason``.
    frontier_reason : str, optional
        A person's written reason (at least 30 characters) for choosing the point.
        Recorded like the fairness-risk acceptance, in the signed decision and as
        version tags (``frontier_point_chosen``, ``frontier_point_reason``,
        ``frontier_point_tradeoff``: the point's estimated precision and innocent
        households per group per 500 visits against the model and current practice,
        ``frontier_point_chosen_by``, ``frontier_point_chosen_at``).
    store : Store, optional
        The operational store. Where the run of the challenger's date has a visit
        plan with visits (and both versions were scored on that date), check 3
        decides on the design-based (Horvitz-Thompson) paired difference on the
        plan's visits instead of the bootstrap; the reason says which.

    Returns
    -------
    PromotionResult
    """
    settings = settings or get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    client = client_for(settings)
    finish_interrupted(client, name, settings)  # a promotion a kill interrupted is completed first
    aliases = registered_aliases(client, name)
    if aliases is None:
        return PromotionResult(
            False, [f"no registered model named {name!r}; train one first"], None, None
        )
    # the champion whose promotion record verifies, not whatever the alias says now
    champion = verified_champion_version(client, name, settings)
    target = str(version) if version is not None else aliases.get(CHALLENGER)
    if target is None:
        return PromotionResult(
            False, [f"{name} has no challenger; train a model first"], champion, champion
        )
    chosen: dict[str, str] = {}
    if frontier_point is not None:
        reason_text = (frontier_reason or "").strip()
        if len(reason_text) < 30:
            return PromotionResult(
                False,
                [
                    f"{FRONTIER_CHECK} {frontier_point}: choosing a frontier point needs a "
                    "written reason of at least 30 characters"
                ],
                champion,
                champion,
                target,
            )
        choice = FrontierChoice(
            reason=reason_text,
            by=getpass.getuser(),
            at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        try:
            registered = register_frontier_point(
                client, name, target, frontier_point, settings, choice=choice
            )
        except (FrontierPointError, MlflowException) as exc:
            return PromotionResult(
                False, [f"{FRONTIER_CHECK} {frontier_point}: {exc}"], champion, champion, target
            )
        chosen = choice_tags(frontier_point, target, registered.tradeoff, choice)
        target = registered.version
        if target == champion:
            return PromotionResult(
                False,
                [
                    f"{FRONTIER_CHECK} {frontier_point} of version "
                    f"{chosen[TAG_FRONTIER_SOURCE_VERSION]} is registered as version {target}, "
                    "which is already the champion"
                ],
                champion,
                champion,
                target,
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
    try:
        report: EvaluationReport | None = read_logged_report(run_id, settings)
    except ReportMissing:
        report = None
    fair, reason = _fairness(report)
    accepted: dict[str, str] = dict(chosen)
    if chosen:
        passed.append(
            f"{FRONTIER_CHECK} {chosen[TAG_FRONTIER_CHOSEN]} of version "
            f"{chosen[TAG_FRONTIER_SOURCE_VERSION]} (registered as version {target}) CHOSEN by "
            f"{chosen[TAG_FRONTIER_CHOSEN_BY]}: {chosen[TAG_FRONTIER_REASON]}; estimated "
            f"trade-off: {chosen[TAG_FRONTIER_TRADEOFF]}"
        )
    if fair:
        passed.append(reason)
    elif accept_fairness_risk is not None and len(accept_fairness_risk.strip()) >= 30:
        accepted |= {
            TAG_FAIRNESS_RISK_ACCEPTED: "true",
            TAG_FAIRNESS_RISK_REASON: accept_fairness_risk.strip()[:4900],
            TAG_FAIRNESS_RISK_ACCEPTED_BY: getpass.getuser(),
            TAG_FAIRNESS_RISK_ACCEPTED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        passed.append(
            f"{reason} -- RISK ACCEPTED by {accepted[TAG_FAIRNESS_RISK_ACCEPTED_BY]}: "
            f"{accepted[TAG_FAIRNESS_RISK_REASON]}"
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
    elif report is None:
        failed.append(
            "honest precision: the challenger's run holds no evaluation report, so its "
            "headline k is unknown; retrain it"
        )
    else:
        ok, reason, paired, alone = _honest_check(
            client, name, target, champion, run_id, settings, tolerance, report, store
        )
        (passed if ok else failed).append(reason)
        result.comparison = paired
        if paired is not None:
            result.challenger_estimate = paired.challenger_estimate
            result.champion_estimate = paired.champion_estimate
        else:
            result.challenger_estimate = alone

    if failed and chosen:
        failed.insert(
            0,
            f"{FRONTIER_CHECK} {chosen[TAG_FRONTIER_CHOSEN]} of version "
            f"{chosen[TAG_FRONTIER_SOURCE_VERSION]} is registered as version {target}, "
            "which is refused for the reasons below",
        )
    result.promoted = not failed
    result.reasons = passed if result.promoted else failed
    decision = {
        TAG_PROMOTION_CHECKED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        TAG_PROMOTION_DECISION: "promoted" if result.promoted else "refused",
        TAG_PROMOTION_REASONS: "; ".join(result.reasons)[:4900],
    }
    result.docs_pack_sha256 = (mv.tags or {}).get(TAG_DOCS_PACK_SHA256) or None
    decision[TAG_PROMOTION_DOCS_PACK] = result.docs_pack_sha256 or "none"
    if not result.promoted:
        for key, value in decision.items():
            client.set_model_version_tag(name, target, key, value)
        return result
    # one recorded, signed decision, then its writes (training.promotion)
    commit_promotion(
        client,
        name,
        target,
        previous_champion=champion,
        remove_challenger=aliases.get(CHALLENGER) == target,
        fairness_passed=fair,
        reasons=result.reasons,
        acceptance=accepted,
        version_tags=decision | accepted,
        settings=settings,
    )
    result.new_champion = target
    return result
