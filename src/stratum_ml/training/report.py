"""What a training measured: the evaluation report, typed and nested.

:func:`~stratum_ml.training.train.train_model` returns it inside its
:class:`~stratum_ml.training.outcome.TrainingOutcome`; ``training.tracking`` logs
it as the JSON artifact :data:`REPORT_ARTIFACT` and flattens it to MLflow metric
keys (only there); ``stratum evaluate`` and ``stratum promote`` read it back with
:func:`read_logged_report`.

::

    EvaluationReport
      headline_k
      precision          one PrecisionAtK per k: honest, naive, current practice
      random_baseline    hit rate of the holdout's random-sample visits
      holdout            probability metrics (all visits, random visits), calibration bins
      fairness           the fairness gate's verdict; proxy_features_flagged
      variants           one VariantReport per mitigation trained
      propensity         how selective past visits were
      best_iteration

Numbers that are not defined (no random visits in a region, one class only) are
NaN; in the JSON they are written as the strings ``"NaN"`` / ``"Infinity"`` so
the file stays strict JSON and reads back to the same floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator

from stratum_ml.config import Settings
from stratum_ml.evaluation.gates import GateVerdict
from stratum_ml.evaluation.metrics import HonestEstimate, NaiveEstimate
from stratum_ml.model.registry import ArtifactMissing, read_run_artifact_text

__all__ = [
    "REPORT_ARTIFACT",
    "CalibrationBin",
    "EvaluationReport",
    "HoldoutMetrics",
    "PrecisionAtK",
    "ProbabilityMetrics",
    "PropensityReport",
    "RandomBaseline",
    "ReportMissing",
    "VariantReport",
    "read_logged_report",
]

#: Where a training run keeps its report.
REPORT_ARTIFACT = "evaluation/report.json"


def _ratio(numerator: float, denominator: float | None) -> float:
    """``numerator / denominator``; NaN when the denominator is 0, NaN or absent."""
    if denominator is None or denominator == 0 or math.isnan(denominator):
        return math.nan
    return numerator / denominator


def _verdict(value: Any) -> GateVerdict:
    if isinstance(value, GateVerdict):
        return value
    if isinstance(value, Mapping):
        return GateVerdict.from_dict(value)
    raise ValueError("a fairness verdict is a GateVerdict or its to_dict() mapping")


#: A :class:`GateVerdict` in a report: written with ``to_dict``, read with ``from_dict``.
Verdict = Annotated[
    GateVerdict,
    PlainValidator(_verdict),
    PlainSerializer(lambda v: v.to_dict(), return_type=dict[str, Any]),
]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")


class ProbabilityMetrics(_Part):
    """Threshold-free metrics of the calibrated probabilities on labelled visits.

    See :func:`~stratum_ml.evaluation.metrics.classification_report`.
    """

    roc_auc: float
    pr_auc: float
    brier: float
    log_loss: float
    prevalence: float
    n: int


class CalibrationBin(_Part):
    """One bin of predicted probability: observed violation rate with its interval.

    See :func:`~stratum_ml.evaluation.metrics.calibration_table`.
    """

    bin: int
    p_low: float
    p_high: float
    n: int
    mean_predicted: float
    observed_rate: float
    ci_low: float
    ci_high: float


class HoldoutMetrics(_Part):
    """The registered model's probabilities on the holdout visits.

    Attributes
    ----------
    all_visits : ProbabilityMetrics
        On every holdout visit (biased by who was visited).
    random_visits : ProbabilityMetrics or None
        On the random-sample visits only, when there are at least 20 with both outcomes.
    calibration : tuple of CalibrationBin
        Observed rate per bin of predicted probability, on every holdout visit.
    """

    all_visits: ProbabilityMetrics
    random_visits: ProbabilityMetrics | None = None
    calibration: tuple[CalibrationBin, ...] = ()

    def calibration_frame(self) -> pd.DataFrame:
        """The calibration bins as a table (the ``calibration_table`` artifact)."""
        return pd.DataFrame(
            [b.model_dump() for b in self.calibration], columns=list(CalibrationBin.model_fields)
        )


class RandomBaseline(_Part):
    """Choosing addresses at random: the hit rate of the holdout's random-sample visits.

    Attributes
    ----------
    precision : float
        ``hits / n`` (NaN without random visits): the expected precision@k of any k.
    ci_low, ci_high : float
        Wilson interval.
    n, hits : int
        Random-sample visits, and how many found a violation.
    """

    precision: float
    ci_low: float
    ci_high: float
    n: int
    hits: int


class PrecisionAtK(_Part):
    """Precision at one cut-off: the model honest and naive, beside current practice.

    Attributes
    ----------
    k : int
    honest : HonestEstimate
        The model, estimated from random-sample visits (the number to read).
    naive : NaiveEstimate
        The model ranking all holdout visits (biased by who was visited).
    current_practice : HonestEstimate or None
        Ranking by reports in the past year, estimated the same honest way; None
        when the feature is not available.
    """

    k: int
    honest: HonestEstimate
    naive: NaiveEstimate
    current_practice: HonestEstimate | None = None

    def lift_over(self, baseline: float | None) -> float:
        """The honest estimate divided by a baseline precision (NaN if that is 0 or absent)."""
        return _ratio(self.honest.estimate, baseline)


class VariantReport(_Part):
    """One fairness-mitigation variant, trained and assessed like the registered model.

    Attributes
    ----------
    mitigation : str
        ``none``, ``reweight`` or ``drop_proxies``.
    registered : bool
        Whether this variant is the registered model.
    n_features : int
    headline : HonestEstimate
        Honest precision at the headline k.
    fairness_passed : bool
    selection_rate_ratio_min, selection_rate_ratio_max : float
        Range of the selection-rate ratios among the gate's checks (NaN when not gated).
    failed_checks : tuple of str
        The gate's reasons for failing.
    """

    mitigation: str
    registered: bool
    n_features: int
    headline: HonestEstimate
    fairness_passed: bool
    selection_rate_ratio_min: float = math.nan
    selection_rate_ratio_max: float = math.nan
    failed_checks: tuple[str, ...] = ()

    def to_row(self) -> dict[str, Any]:
        """One row of the ``mitigation_comparison`` table."""
        k = self.headline.k
        return {
            "mitigation": self.mitigation,
            "registered": self.registered,
            "n_features": self.n_features,
            f"honest_precision_at_{k}": self.headline.estimate,
            f"honest_precision_at_{k}_ci_low": self.headline.ci_low,
            f"honest_precision_at_{k}_ci_high": self.headline.ci_high,
            "fairness_passed": self.fairness_passed,
            "selection_rate_ratio_min": self.selection_rate_ratio_min,
            "selection_rate_ratio_max": self.selection_rate_ratio_max,
            "failed_checks": "; ".join(self.failed_checks),
        }


class PropensityReport(_Part):
    """How selective past visits were (see ``training.propensity``).

    Attributes
    ----------
    auc : float
        Out-of-fold AUC of visits against unvisited controls.
    effective_sample_size : float
        Of the inverse-propensity weights.
    max_weight : float
    clipped : int
        Weights clipped at the run config's ``ipw_clip``.
    controls : int
        Control queries drawn.
    """

    auc: float
    effective_sample_size: float
    max_weight: float
    clipped: int
    controls: int


class EvaluationReport(_Part):
    """Everything a training measured about its registered model.

    Attributes
    ----------
    headline_k : int
        The cut-off promotion and the model card lead with.
    precision : tuple of PrecisionAtK
        One per k of the run config, in that order.
    fairness : GateVerdict
        The fairness gate's verdict on the registered model.
    random_baseline : RandomBaseline or None
    holdout : HoldoutMetrics or None
    proxy_features_flagged : tuple of str
        Features that predict a protected attribute (AUC above the threshold).
    variants : tuple of VariantReport
        Every mitigation variant trained (the registered one included).
    propensity : PropensityReport or None
    best_iteration : int or None
        Boosting rounds kept by early stopping.
    """

    headline_k: int
    precision: tuple[PrecisionAtK, ...]
    fairness: Verdict
    random_baseline: RandomBaseline | None = None
    holdout: HoldoutMetrics | None = None
    proxy_features_flagged: tuple[str, ...] = ()
    variants: tuple[VariantReport, ...] = ()
    propensity: PropensityReport | None = None
    best_iteration: int | None = None

    @property
    def ks(self) -> list[int]:
        """The cut-offs, in report order."""
        return [p.k for p in self.precision]

    def at(self, k: int) -> PrecisionAtK:
        """The precision block of cut-off ``k``.

        Raises
        ------
        KeyError
            If ``k`` was not evaluated.
        """
        for p in self.precision:
            if p.k == k:
                return p
        raise KeyError(f"precision@{k} was not evaluated (ks: {self.ks})")

    @property
    def honest(self) -> dict[int, HonestEstimate]:
        """Honest estimate by k."""
        return {p.k: p.honest for p in self.precision}

    @property
    def naive(self) -> dict[int, NaiveEstimate]:
        """Naive estimate by k."""
        return {p.k: p.naive for p in self.precision}

    @property
    def headline(self) -> HonestEstimate:
        """The honest estimate at :attr:`headline_k`."""
        return self.at(self.headline_k).honest

    def honest_vs_naive(self) -> pd.DataFrame:
        """One row per k: the honest estimate's fields beside the naive and current practice."""
        return pd.DataFrame(
            [
                {
                    **p.honest.to_dict(),
                    "naive_estimate": p.naive.estimate,
                    "naive_n": p.naive.n,
                    "current_practice_estimate": (
                        p.current_practice.estimate if p.current_practice else math.nan
                    ),
                }
                for p in self.precision
            ]
        )

    def to_json(self) -> str:
        """The report as strict JSON (NaN and infinities as strings), indented."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> EvaluationReport:
        """Read a report written by :meth:`to_json`."""
        return cls.model_validate_json(text)


class ReportMissing(LookupError):
    """A training run holds no evaluation report (logged before reports, or incomplete)."""


def read_logged_report(run_id: str, settings: Settings | None = None) -> EvaluationReport:
    """The evaluation report a training run logged.

    Parameters
    ----------
    run_id : str
        The training run (``ModelVersionInfo.run_id``).
    settings : Settings, optional
        Where the MLflow store is; default: from the environment.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    ReportMissing
        If the run has no :data:`REPORT_ARTIFACT` (a run logged by an older
        stratum_ml, or one that failed before its artifacts were written).
    """
    try:
        text = read_run_artifact_text(run_id, REPORT_ARTIFACT, settings)
    except ArtifactMissing as exc:
        raise ReportMissing(
            f"run {run_id} holds no evaluation report ({REPORT_ARTIFACT}); retrain to record one"
        ) from exc
    return EvaluationReport.from_json(text)
