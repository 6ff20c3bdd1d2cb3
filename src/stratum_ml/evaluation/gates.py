"""Gates a model must pass before promotion: fairness limits and honest precision@k.

Both gates return plain verdicts with reasons in sentences, so that a refused
promotion says exactly which check failed and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stratum_ml.evaluation.fairness import METRICS_SPEC, MISSING_GROUP, FairnessResult
from stratum_ml.evaluation.metrics import HonestEstimate

__all__ = ["FairnessGateConfig", "GateVerdict", "PromotionCheck", "fairness_gate"]

_GATEABLE = {m.name for m in METRICS_SPEC} | {"mean_score"}
_CHECK_COLUMNS = [
    "attribute",
    "metric",
    "group",
    "reference_group",
    "value",
    "reference_value",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "status",
    "note",
]
_NUMERIC_CHECK_COLUMNS = (
    "value",
    "reference_value",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
)


class FairnessGateConfig(BaseModel):
    """Limits of the fairness gate (part of the run config).

    Every non-reference group's metric divided by the reference group's must
    lie within ``[min_ratio, max_ratio]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_ratio: float = Field(default=0.8, gt=0.0, le=1.0, description="Lowest allowed ratio.")
    max_ratio: float = Field(default=1.25, ge=1.0, description="Highest allowed ratio.")
    metrics: tuple[str, ...] = Field(
        default=("selection_rate", "false_positive_rate"),
        min_length=1,
        description="Metrics to check, names from fairness.METRICS_SPEC (or mean_score).",
    )
    attributes: tuple[str, ...] | None = Field(
        default=None, description="Attributes to check; None: every attribute audited."
    )
    min_group_size: int = Field(
        default=20,
        ge=1,
        description="Groups, and metric supports, smaller than this are skipped with a note.",
    )
    require_significance: bool = Field(
        default=False,
        description=(
            "Fail a check only when its ratio is outside the limits AND the ratio's bootstrap "
            "interval excludes 1; a ratio outside the limits whose interval includes 1 is "
            "recorded as 'inconclusive' with a note instead. Use where labels are sparse and "
            "point ratios are noisy."
        ),
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(metrics) - _GATEABLE)
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {sorted(_GATEABLE)}")
        return metrics

    @model_validator(mode="after")
    def _ordered(self) -> FairnessGateConfig:
        if self.min_ratio > self.max_ratio:
            raise ValueError("min_ratio must not exceed max_ratio")
        return self


@dataclass(frozen=True, eq=False)
class GateVerdict:
    """Outcome of the fairness gate.

    Attributes
    ----------
    passed : bool
        True when no check failed.
    reasons : list of str
        One sentence per failed check (empty when passed).
    checks : pandas.DataFrame
        Every check: ``attribute, metric, group, reference_group, value,
        reference_value, ratio, ratio_ci_low, ratio_ci_high, status`` (pass,
        fail, skipped) and ``note``. The verdict uses the ratio itself; its
        bootstrap interval is there to judge how firm a failure is. Values of
        groups below the minimum size are blanked.
    notes : list of str
        Skipped checks and other remarks, one sentence each.
    """

    passed: bool
    reasons: list[str]
    checks: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable verdict, for logging as an artifact."""
        checks = self.checks.astype(object).where(self.checks.notna(), None)
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "checks": checks.to_dict(orient="records"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateVerdict:
        """Rebuild a verdict written by :meth:`to_dict` (missing numbers become NaN).

        Parameters
        ----------
        data : mapping
            ``passed``, ``reasons``, ``notes`` and ``checks`` (a list of records);
            numbers may also be strings such as ``"Infinity"`` or ``"NaN"``.

        Returns
        -------
        GateVerdict
        """
        checks = pd.DataFrame(list(data.get("checks") or []), columns=_CHECK_COLUMNS)
        for name in _NUMERIC_CHECK_COLUMNS:
            checks[name] = np.array(
                [math.nan if v is None else float(v) for v in checks[name]], dtype=float
            )
        return cls(
            passed=bool(data["passed"]),
            reasons=[str(r) for r in data.get("reasons") or []],
            checks=checks,
            notes=[str(n) for n in data.get("notes") or []],
        )


def fairness_gate(result: FairnessResult, config: FairnessGateConfig) -> GateVerdict:
    """Check a fairness audit against the configured ratio limits.

    For each configured attribute and metric, every group is compared with the
    attribute's reference group. A check

    * **fails** when the ratio lies outside ``[min_ratio, max_ratio]`` (a ratio
      of infinity, a positive rate against a reference of 0, fails too);
    * **passes** when it lies inside, or when both rates are 0;
    * is **skipped**, with a note, when the group or the reference has fewer
      than ``min_group_size`` addresses, when either rate rests on fewer than
      ``min_group_size`` rows (e.g. few labelled visits), or when a rate is
      undefined.

    An attribute or metric the audit does not contain fails the gate: a gate
    that cannot check what it was told to check must not pass.

    Parameters
    ----------
    result : FairnessResult
        Output of :func:`~stratum_ml.evaluation.fairness.fairness_audit`.
    config : FairnessGateConfig
        The limits.

    Returns
    -------
    GateVerdict
    """
    frame = result.frame
    attributes = config.attributes or tuple(dict.fromkeys(frame["attribute"]))
    reasons: list[str] = []
    notes: list[str] = []
    checks: list[dict[str, Any]] = []
    bounds = f"[{config.min_ratio:g}, {config.max_ratio:g}]"
    minimum = config.min_group_size
    for attribute in attributes:
        for metric in config.metrics:
            rows = frame[(frame["attribute"] == attribute) & (frame["metric"] == metric)]
            if rows.empty:
                reasons.append(f"{metric} for {attribute} is not in the fairness audit")
                continue
            reference = rows[rows["is_reference"]].iloc[0].to_dict()
            for row in rows[~rows["is_reference"]].to_dict(orient="records"):
                label = f"{metric} ratio for {attribute}={row['group']} vs {reference['group']}"
                status, note = _judge(row, reference, config)
                if status == "fail":
                    reasons.append(f"{label} is {row['ratio']:.2f}, outside {bounds}")
                elif status in ("skipped", "inconclusive"):
                    notes.append(f"{label}: {status}, {note}")
                group_small = row["count"] < minimum
                reference_small = reference["count"] < minimum
                hidden = group_small or reference_small
                checks.append(
                    {
                        "attribute": attribute,
                        "metric": metric,
                        "group": row["group"],
                        "reference_group": reference["group"],
                        "value": math.nan if group_small else row["value"],
                        "reference_value": math.nan if reference_small else reference["value"],
                        "ratio": math.nan if hidden else row["ratio"],
                        "ratio_ci_low": math.nan if hidden else row["ratio_ci_low"],
                        "ratio_ci_high": math.nan if hidden else row["ratio_ci_high"],
                        "status": status,
                        "note": note,
                    }
                )
    return GateVerdict(
        passed=not reasons,
        reasons=reasons,
        checks=pd.DataFrame(checks, columns=_CHECK_COLUMNS),
        notes=notes,
    )


def _judge(
    row: Mapping[Hashable, Any], reference: Mapping[Hashable, Any], config: FairnessGateConfig
) -> tuple[str, str]:
    minimum = config.min_group_size
    if row["group"] == MISSING_GROUP:
        return "skipped", "the attribute is unknown for these addresses (reported, not gated)"
    if row["count"] < minimum:
        return "skipped", f"group has fewer than {minimum} addresses"
    if reference["count"] < minimum:
        return "skipped", f"reference group has fewer than {minimum} addresses"
    if row["support"] < minimum or reference["support"] < minimum:
        return "skipped", f"the rate rests on fewer than {minimum} addresses in a group"
    if math.isnan(row["value"]) or math.isnan(reference["value"]):
        return "skipped", "the rate is undefined"
    if row["value"] == 0 and reference["value"] == 0:
        return "pass", "both rates are 0"
    if config.min_ratio <= row["ratio"] <= config.max_ratio:
        return "pass", ""
    bounds = f"outside [{config.min_ratio:g}, {config.max_ratio:g}]"
    low, high = row["ratio_ci_low"], row["ratio_ci_high"]
    if (
        config.require_significance
        and not (math.isnan(low) or math.isnan(high))
        and low <= 1 <= high
    ):
        return "inconclusive", (
            f"ratio {row['ratio']:.2f} is {bounds}, but its interval [{low:.2f}, {high:.2f}] "
            "includes 1: not a significant difference"
        )
    return "fail", bounds


class PromotionCheck(BaseModel):
    """Whether a challenger's honest precision@k is not worse than the champion's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tolerance: float = Field(
        default=0.0,
        ge=0.0,
        description="How far the challenger's estimate may fall below the champion's.",
    )

    def compare_honest(
        self, challenger: HonestEstimate, champion: HonestEstimate | None
    ) -> tuple[bool, str]:
        """Compare two honest estimates made on the same validation visits.

        The estimates must be for the same region of the same population (same
        ``k``, ``region_k`` and ``population``): a precision@100 cannot be
        compared with a precision@1000 that was widened for lack of random
        visits. When they differ, the comparison is refused with the ``k`` to
        re-estimate both for.

        Parameters
        ----------
        challenger : HonestEstimate
            The new model's estimate.
        champion : HonestEstimate or None
            The current champion's estimate; None when there is no champion.

        Returns
        -------
        tuple of (bool, str)
            Whether the challenger may be promoted on this criterion, and why.
        """
        ours = _describe(challenger)
        if math.isnan(challenger.estimate):
            return False, f"challenger has no honest estimate ({challenger.region})"
        if champion is None:
            return True, f"no champion to compare with; challenger {ours}"
        if (challenger.k, challenger.region_k, challenger.population) != (
            champion.k,
            champion.region_k,
            champion.population,
        ):
            k = max(challenger.region_k, champion.region_k)
            return False, (
                f"estimates are not comparable: challenger covers the top "
                f"{challenger.region_k} of {challenger.population} for k={challenger.k}, "
                f"champion the top {champion.region_k} of {champion.population} for "
                f"k={champion.k}; re-estimate both on the same visits with k={k}"
            )
        theirs = _describe(champion)
        if math.isnan(champion.estimate):
            return True, f"champion has no honest estimate; challenger {ours}"
        if challenger.estimate >= champion.estimate - self.tolerance:
            return True, f"challenger {ours} is not worse than champion {theirs}"
        return False, (
            f"challenger {ours} is worse than champion {theirs}"
            + (f" by more than the tolerance {self.tolerance:g}" if self.tolerance else "")
        )


def _describe(estimate: HonestEstimate) -> str:
    return (
        f"honest precision@{estimate.region_k} {estimate.estimate:.3f} "
        f"[{estimate.ci_low:.3f}, {estimate.ci_high:.3f}] (n={estimate.n})"
    )
