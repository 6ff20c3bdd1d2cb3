"""The write side of a promotion: record the decision, then apply it.

:func:`stratum_ml.training.registry.promote` decides (the gate and the
comparison); this module turns a decision to promote into one signed
:class:`~stratum_ml.model.promotion.PromotionRecord`, records it in one registry
write and applies it (:mod:`stratum_ml.model.promotion`). A promotion that was
interrupted is completed by the next ``promote`` (:func:`finish_interrupted`)
and by the next start of the service.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping

from mlflow import MlflowClient

from stratum_ml.config import Settings
from stratum_ml.model.promotion import (
    PROMOTION_PURPOSE,
    PromotionRecord,
    apply_record,
    complete_pending,
    record_promotion,
    verified_champion,
)
from stratum_ml.signing import load_signing_key

__all__ = ["commit_promotion", "finish_interrupted", "verified_champion_version"]


def finish_interrupted(
    client: MlflowClient, name: str, settings: Settings
) -> PromotionRecord | None:
    """Complete a recorded promotion a kill interrupted; return it (None when none was)."""
    return complete_pending(client, name, load_signing_key(PROMOTION_PURPOSE, settings=settings))


def verified_champion_version(client: MlflowClient, name: str, settings: Settings) -> str | None:
    """The champion a promotion compares against: the one whose promotion record verifies.

    An alias moved by hand is not the champion. A registry from before promotion
    records has none: its champion is promoted again once (``stratum promote
    --version N``) to get one.
    """
    key = load_signing_key(PROMOTION_PURPOSE, settings=settings)
    return verified_champion(client, name, key).version


def commit_promotion(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    previous_champion: str | None,
    remove_challenger: bool,
    fairness_passed: bool,
    reasons: list[str],
    acceptance: Mapping[str, str],
    version_tags: Mapping[str, str],
    settings: Settings,
) -> PromotionRecord:
    """Record a decision to promote ``version``, signed, then apply it.

    Parameters
    ----------
    client
        An MLflow client on the registry.
    name, version
        The registered model and the version to make champion.
    previous_champion
        The champion now (it gets ``previous_champion``), or None.
    remove_challenger
        Whether ``challenger`` points at ``version`` (it is removed).
    fairness_passed
        The gate's fairness verdict.
    reasons
        The checks that passed.
    acceptance
        The fairness-risk acceptance tags (empty when the gate passed).
    version_tags
        Every tag the decision sets on the version (the acceptance included).
    settings
        Whose home holds the ``promotion`` signing key (created when missing).

    Returns
    -------
    PromotionRecord
        The record, applied.
    """
    record = PromotionRecord.decide(
        model_name=name,
        version=version,
        previous_champion=previous_champion,
        remove_challenger=remove_challenger,
        fairness_passed=fairness_passed,
        reasons=reasons,
        acceptance=acceptance,
        version_tags=version_tags,
        decided_by=getpass.getuser(),
        key=load_signing_key(PROMOTION_PURPOSE, settings=settings),
    )
    record_promotion(client, record)
    apply_record(client, record)
    return record
