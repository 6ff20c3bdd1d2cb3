"""Drift: is the population a model scores still the one it learnt from?

:func:`compare` sets the features and raw scores of a scored population beside
the training reference of the model version (:class:`~stratum_ml.model.reference.DriftReference`,
logged with the training run) and returns a :class:`DriftResult`: per feature the
PSI and the change in its missing rate, the KS statistic of the score, the share of
addresses outside the training range, and -- against :class:`DriftThresholds` -- a
verdict (``drifted``) with its reasons in words. :func:`drift_of` does the same for
a :class:`~stratum_ml.scoring.scorer.Scorer`, the one call a scoring run makes; the
result is pydantic (``to_json``) and flattens to MLflow metrics (``metrics``).

The measures
------------
PSI (population stability index), per feature, over the reference's bins of the
non-missing values: ``sum((c - r) * ln(c / r))`` with ``r`` and ``c`` the reference and
current share of a bin. An empty bin's share is taken as :data:`PSI_EPSILON` (1e-4,
i.e. 0.01 %) on either side, so that a bin empty at training and filled now adds a
large but finite term. Missing values are not a bin: the change in the missing rate
is measured on its own. Read as usual: below 0.1 stable, 0.1-0.25 a shift worth a
look (warn), above 0.25 a different population (alarm).

KS: the two-sample Kolmogorov-Smirnov statistic (largest gap between the two
empirical distribution functions) of the current raw scores against the reference's
sample, with its p-value (``scipy.stats.ks_2samp``). With tens of thousands of
addresses any difference is significant, so the verdict is on the statistic, not
on the p-value.

Out of range: a numeric value below the training minimum or above the training
maximum, or a category training never saw. Per feature, and overall: the share of
addresses with at least one such value.

Too few values: a PSI over a few hundred values is mostly noise (its expected
value under no drift is about ``(bins - 1) * (1/n_ref + 1/n_now)``), so a feature
with fewer than ``min_values`` non-missing values on either side is reported but
its PSI raises nothing; the same holds for the score.

Accepted drift: some features move by construction, and an alarm on them every
month would teach the reader to ignore the alarm. :data:`ACCEPTED_DRIFT` names
them with the reason (a count over the whole recorded history only grows; an
owner-level count is shared by every dwelling of that owner, so one housing
corporation buying one dwelling moves thousands of addresses at once). They are
measured and reported as warnings quoting the reason, never as alarms, and they
do not count towards the share outside the training range. Set
``accepted={}`` to judge every feature.

Why scipy and not a drift library
---------------------------------
The issue prefers a maintained library (evidently or nannyml) if it installs
cleanly beside the pinned stack. Measured with ``pip install --dry-run -c
constraints.txt`` on this stack (Python 3.11):

* nannyml does not install at all: 0.13.1 needs ``lightgbm<4.6`` (pinned 4.7.0),
  every release 0.9.0-0.13.0 needs ``Jinja2<3.1`` (pinned 3.1.6);
* evidently 0.7.23 resolves without changing a pinned version but brings 31 new
  packages, among them a second web framework (litestar, uvloop, websockets,
  httptools, watchdog), statsmodels with patsy and formulaic, nltk, plotly 5,
  Faker, dynaconf and ``iterative-telemetry`` (usage telemetry, unwelcome on a
  municipality's server) -- for three statistics.

So the statistics come from scipy (already installed with scikit-learn, now a
declared dependency): ``scipy.stats.ks_2samp`` for KS; PSI and the range checks
are a few lines of numpy over the reference's bins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from stratum_ml.model.reference import DriftReference

if TYPE_CHECKING:
    from stratum_ml.scoring.scorer import Scorer

__all__ = [
    "ACCEPTED_DRIFT",
    "PSI_EPSILON",
    "DriftResult",
    "DriftThresholds",
    "FeatureDrift",
    "ScoreDrift",
    "compare",
    "drift_of",
    "psi",
]

#: Share that stands in for an empty bin in the PSI (0.01 %).
PSI_EPSILON = 1e-4
#: Features named in the reason about addresses outside the training range.
_NAMED_OUTSIDE = 3

_OWNER_LUMP = (
    "an owner-level count shared by every dwelling of that owner: one large owner "
    "buying or selling one dwelling moves all its dwellings at once"
)
#: Features whose drift is expected by construction, and why (the default of
#: ``DriftThresholds.accepted``).
ACCEPTED_DRIFT: dict[str, str] = {
    "network_component_size": (
        "the link network accumulates over the whole recorded history, so its largest "
        "component only grows"
    ),
    "owner_dwellings": _OWNER_LUMP,
    "owner_acquisitions_24m": _OWNER_LUMP,
    "owner_sales_24m": _OWNER_LUMP,
}

Status = Literal["ok", "warn", "alarm"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriftThresholds(_Frozen):
    """When a population counts as drifted (any one alarm is enough).

    Attributes
    ----------
    psi_warn : float, default 0.1
        PSI of a feature at or above which it is reported as a warning.
    psi_alarm : float, default 0.25
        PSI of a feature at or above which the population has drifted.
    missing_rate_change : float, default 0.1
        Change of a feature's missing rate (absolute, as a share: 0.1 is 10
        percentage points) at or above which the population has drifted.
    ks_statistic : float, default 0.1
        KS statistic of the score at or above which the population has drifted.
    out_of_range_share : float, default 0.05
        Share of addresses with a feature outside its training range at or above
        which the population has drifted.
    min_values : int, default 500
        Fewest non-missing values, on either side, for a feature's PSI (or the
        score's KS) to raise a warning or an alarm.
    accepted : dict of str to str, default ACCEPTED_DRIFT
        Features whose drift is expected, with the reason: reported, never alarms.
    """

    psi_warn: float = Field(default=0.1, gt=0)
    psi_alarm: float = Field(default=0.25, gt=0)
    missing_rate_change: float = Field(default=0.1, gt=0, le=1)
    ks_statistic: float = Field(default=0.1, gt=0, le=1)
    out_of_range_share: float = Field(default=0.05, gt=0, le=1)
    min_values: int = Field(default=500, ge=1)
    accepted: dict[str, str] = Field(default_factory=lambda: dict(ACCEPTED_DRIFT))

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholds:
        if self.psi_warn > self.psi_alarm:
            raise ValueError(
                f"psi_warn ({self.psi_warn}) must not be above psi_alarm ({self.psi_alarm})"
            )
        return self


class FeatureDrift(_Frozen):
    """One feature now against training.

    Attributes
    ----------
    feature : str
    kind : {"numeric", "categorical"}
    psi : float or None
        None when either side has no non-missing value.
    n_values_reference, n_values_current : int
        Non-missing values on each side.
    missing_rate_reference, missing_rate_current, missing_rate_change : float
        The change is current minus reference.
    out_of_range_share : float
        Share of the current rows outside the training range.
    status : {"ok", "warn", "alarm"}
        Against the thresholds (a PSI over too few values counts as ok).
    accepted : str or None
        Why this feature's drift is expected (then it never makes the result drifted).
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float | None
    n_values_reference: int
    n_values_current: int
    missing_rate_reference: float
    missing_rate_current: float
    missing_rate_change: float
    out_of_range_share: float
    status: Status
    accepted: str | None


class ScoreDrift(_Frozen):
    """The raw score (log-odds) now against training.

    Attributes
    ----------
    ks_statistic, ks_pvalue : float
        Two-sample KS test of the current scores against the reference sample.
    n_reference, n_current : int
        Scores on each side (the reference's is its sample).
    median_reference, median_current : float
    """

    ks_statistic: float
    ks_pvalue: float
    n_reference: int
    n_current: int
    median_reference: float
    median_current: float


class DriftResult(_Frozen):
    """A population compared with the training reference of its model version.

    Attributes
    ----------
    reference_as_of : datetime.date
        The date of the training population.
    as_of : datetime.date or None
        The date of the current population.
    n_reference, n_current : int
        Addresses on each side.
    features : tuple of FeatureDrift
        One per compared feature, largest PSI first.
    score : ScoreDrift
    out_of_range_share : float
        Share of the current addresses with at least one feature outside its
        training range (accepted features left out).
    thresholds : DriftThresholds
        What the verdict was measured against.
    drifted : bool
        Whether any alarm went off.
    reasons : tuple of str
        Each alarm in words (empty when not drifted).
    warnings : tuple of str
        Shifts worth a look that are not alarms.
    """

    reference_as_of: dt.date
    as_of: dt.date | None
    n_reference: int
    n_current: int
    features: tuple[FeatureDrift, ...]
    score: ScoreDrift
    out_of_range_share: float
    thresholds: DriftThresholds
    drifted: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]

    def feature(self, name: str) -> FeatureDrift:
        """The comparison of one feature.

        Raises
        ------
        KeyError
            If the feature was not compared.
        """
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(f"feature {name!r} was not compared")

    def metrics(self) -> dict[str, float]:
        """The result flattened to MLflow metric keys (the only place the keys are made).

        ``drift_drifted`` (1 or 0), ``drift_features_alarm``, ``drift_features_warn``,
        ``drift_out_of_range_share``, ``drift_score_ks_statistic``,
        ``drift_score_ks_pvalue``, and per feature ``drift_psi_<feature>`` (where
        defined), ``drift_missing_rate_change_<feature>``,
        ``drift_out_of_range_share_<feature>``.
        """
        out = {
            "drift_drifted": float(self.drifted),
            "drift_features_alarm": float(sum(f.status == "alarm" for f in self.features)),
            "drift_features_warn": float(sum(f.status == "warn" for f in self.features)),
            "drift_out_of_range_share": self.out_of_range_share,
            "drift_score_ks_statistic": self.score.ks_statistic,
            "drift_score_ks_pvalue": self.score.ks_pvalue,
        }
        for f in self.features:
            if f.psi is not None:
                out[f"drift_psi_{f.feature}"] = f.psi
            out[f"drift_missing_rate_change_{f.feature}"] = f.missing_rate_change
            out[f"drift_out_of_range_share_{f.feature}"] = f.out_of_range_share
        return out

    def to_json(self) -> str:
        """The result as JSON, indented (a run stores it, MLflow logs it)."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> DriftResult:
        """Read a result written by :meth:`to_json`."""
        return cls.model_validate_json(text)


def psi(
    reference: np.ndarray | Sequence[float],
    current: np.ndarray | Sequence[float],
    *,
    epsilon: float = PSI_EPSILON,
) -> float:
    """Population stability index of two distributions over the same bins.

    Parameters
    ----------
    reference, current : array-like
        Counts or shares per bin (each normalised to shares here).
    epsilon : float, default PSI_EPSILON
        Share that stands in for an empty bin, on either side.

    Returns
    -------
    float
        ``sum((c - r) * ln(c / r))``; 0 for equal distributions, never negative.

    Raises
    ------
    ValueError
        If the bins differ in number, a count is negative, or a side is empty.

    Examples
    --------
    >>> psi([50, 50], [50, 50])
    0.0
    >>> round(psi([0.5, 0.5], [0.9, 0.1]), 3)
    0.879
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if r.shape != c.shape or r.ndim != 1:
        raise ValueError(f"bins differ: {r.shape} in the reference, {c.shape} now")
    if (r < 0).any() or (c < 0).any():
        raise ValueError("counts and shares cannot be negative")
    if r.sum() <= 0 or c.sum() <= 0:
        raise ValueError("a distribution with no values has no PSI")
    r = np.maximum(r / r.sum(), epsilon)
    c = np.maximum(c / c.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def _judged_psi(f: FeatureDrift, t: DriftThresholds) -> float | None:
    """The PSI if there were enough values on both sides to judge it, else None."""
    if f.psi is None or min(f.n_values_reference, f.n_values_current) < t.min_values:
        return None
    return f.psi


def _status(f: FeatureDrift, t: DriftThresholds) -> Status:
    value = _judged_psi(f, t)
    if abs(f.missing_rate_change) >= t.missing_rate_change or (
        value is not None and value >= t.psi_alarm
    ):
        return "alarm"
    if value is not None and value >= t.psi_warn:
        return "warn"
    return "ok"


def _feature_drift(
    name: str, reference: DriftReference, values: pd.Series, t: DriftThresholds
) -> tuple[FeatureDrift, np.ndarray]:
    ref = reference.features[name]
    missing = ref.missing(values)
    counts = ref.bin_counts(values)
    outside = ref.outside(values)
    missing_now = float(missing.mean())
    drift = FeatureDrift(
        feature=name,
        kind=ref.kind,
        psi=psi(ref.shares, counts) if ref.shares and counts.sum() > 0 else None,
        n_values_reference=round(ref.n * (1 - ref.missing_rate)),
        n_values_current=int(counts.sum()),
        missing_rate_reference=ref.missing_rate,
        missing_rate_current=missing_now,
        missing_rate_change=missing_now - ref.missing_rate,
        out_of_range_share=float(outside.mean()),
        status="ok",
        accepted=t.accepted.get(name),
    )
    return drift.model_copy(update={"status": _status(drift, t)}), outside


def _score_drift(reference: DriftReference, raw_scores: np.ndarray) -> ScoreDrift:
    sample = np.asarray(reference.score.sample, dtype=np.float64)
    test = stats.ks_2samp(sample, raw_scores)
    return ScoreDrift(
        ks_statistic=float(test.statistic),
        ks_pvalue=float(test.pvalue),
        n_reference=len(sample),
        n_current=len(raw_scores),
        median_reference=float(np.median(sample)),
        median_current=float(np.median(raw_scores)),
    )


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _feature_words(f: FeatureDrift, t: DriftThresholds) -> tuple[list[str], list[str]]:
    """The alarms and the warnings of one feature, in words (an accepted one has no alarms)."""
    alarms, warnings = [], []
    value = _judged_psi(f, t)
    if value is not None and value >= t.psi_alarm:
        alarms.append(
            f"{f.feature}: PSI {value:.2f} is at or above the alarm level {t.psi_alarm:g} "
            "(its distribution differs from training)"
        )
    elif value is not None and value >= t.psi_warn:
        warnings.append(
            f"{f.feature}: PSI {value:.2f} is at or above the warning level {t.psi_warn:g}"
        )
    elif f.psi is not None and f.psi >= t.psi_warn:
        warnings.append(
            f"{f.feature}: PSI {f.psi:.2f} over too few values to judge "
            f"({min(f.n_values_reference, f.n_values_current)}; at least {t.min_values} needed)"
        )
    if abs(f.missing_rate_change) >= t.missing_rate_change:
        alarms.append(
            f"{f.feature}: missing for {_pct(f.missing_rate_current)} of addresses against "
            f"{_pct(f.missing_rate_reference)} at training (a change of "
            f"{100 * abs(f.missing_rate_change):.1f} points; limit "
            f"{100 * t.missing_rate_change:g})"
        )
    if f.accepted is not None and alarms:
        first = alarms[0].split(": ", 1)[1]
        return [], [*warnings, f"{f.feature}: {first}; accepted, because {f.accepted}"]
    return alarms, warnings


def compare(
    reference: DriftReference,
    features: pd.DataFrame,
    raw_scores: np.ndarray,
    *,
    thresholds: DriftThresholds | None = None,
    as_of: dt.date | None = None,
) -> DriftResult:
    """Compare a scored population with the training reference of its model version.

    Parameters
    ----------
    reference : DriftReference
        The model version's training reference (``model.reference.load_reference``).
    features : pandas.DataFrame
        The current population, one row per address; every column must be one the
        reference knows (the model's features are).
    raw_scores : numpy.ndarray
        The model's raw scores (log-odds) of the current population.
    thresholds : DriftThresholds, optional
        Default: :class:`DriftThresholds` ().
    as_of : datetime.date, optional
        The date of the current population, recorded in the result.

    Returns
    -------
    DriftResult

    Raises
    ------
    ValueError
        If there are no rows or no columns, a column is not in the reference, or a
        raw score is not finite.
    """
    t = thresholds or DriftThresholds()
    scores = np.asarray(raw_scores, dtype=np.float64)
    unknown = [str(c) for c in features.columns if c not in reference.features]
    if unknown:
        raise ValueError(f"the training reference has no feature {', '.join(unknown)}")
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError("no population to compare: the feature table is empty")
    if not np.isfinite(scores).all() or len(scores) == 0:
        raise ValueError("raw scores must be finite, and there must be some")

    compared = [_feature_drift(str(c), reference, features[c], t) for c in features.columns]
    judged_outside = [outside for drift, outside in compared if drift.accepted is None]
    outside_any = (
        np.logical_or.reduce(judged_outside)
        if judged_outside
        else np.zeros(len(features), dtype=bool)
    )
    per_feature = sorted(
        (drift for drift, _ in compared),
        key=lambda f: (-1.0 if f.psi is None else -f.psi, f.feature),
    )
    score = _score_drift(reference, scores)
    out_of_range = float(outside_any.mean())

    reasons: list[str] = []
    warnings: list[str] = []
    for f in per_feature:
        alarms, warns = _feature_words(f, t)
        reasons += alarms
        warnings += warns
    if min(score.n_reference, score.n_current) >= t.min_values and (
        score.ks_statistic >= t.ks_statistic
    ):
        reasons.append(
            f"score: KS statistic {score.ks_statistic:.3f} against the training scores is at "
            f"or above {t.ks_statistic:g} (median log-odds {score.median_reference:.2f} at "
            f"training, {score.median_current:.2f} now)"
        )
    if out_of_range >= t.out_of_range_share:
        judged = [f for f in per_feature if f.accepted is None]
        most = sorted(judged, key=lambda f: -f.out_of_range_share)[:_NAMED_OUTSIDE]
        named = ", ".join(f"{f.feature} {_pct(f.out_of_range_share)}" for f in most)
        reasons.append(
            f"{_pct(out_of_range)} of addresses have a feature outside its training range "
            f"(limit {_pct(t.out_of_range_share)}); most often {named}"
        )
    return DriftResult(
        reference_as_of=reference.as_of,
        as_of=as_of,
        n_reference=reference.n,
        n_current=len(features),
        features=tuple(per_feature),
        score=score,
        out_of_range_share=out_of_range,
        thresholds=t,
        drifted=bool(reasons),
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def drift_of(
    scorer: Scorer, reference: DriftReference, thresholds: DriftThresholds | None = None
) -> DriftResult:
    """Compare what a :class:`~stratum_ml.scoring.scorer.Scorer` scored with the reference.

    The one call a scoring run makes: the scorer's features (the model's) and raw
    scores, as of its date.

    Parameters
    ----------
    scorer : Scorer
    reference : DriftReference
        The training reference of the scorer's model version.
    thresholds : DriftThresholds, optional

    Returns
    -------
    DriftResult
    """
    return compare(
        reference,
        scorer.features,
        scorer.table["raw_score"].to_numpy(),
        thresholds=thresholds,
        as_of=scorer.as_of,
    )
