"""The audited group metrics: rates over rows, callable as fairlearn metrics."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class GroupMetric:
    """A rate ``weight(numerator & denominator) / weight(denominator)`` over rows.

    Called as a fairlearn metric, ``metric(y_true, y_pred, sample_weight)``.
    Unlabelled rows have ``y_true`` NaN, so ``y_true == 0`` and ``y_true == 1``
    are both False for them and a denominator built on them leaves them out.
    A rate with an empty denominator is NaN, never a warning or a 0.

    Attributes
    ----------
    name : str
        Column name in results.
    description : str
        What the rate means, for reports.
    labelled_only : bool
        Whether it needs outcomes (and so uses only labelled rows).
    numerator, denominator : callable
        ``(y_true, y_pred) -> bool mask`` over rows.
    """

    name: str
    description: str
    labelled_only: bool
    numerator: Callable[[FloatArray, FloatArray], BoolArray]
    denominator: Callable[[FloatArray, FloatArray], BoolArray]

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """The rate over the given rows (weighted by ``sample_weight``)."""
        y, p, w = _rows(y_true, y_pred, sample_weight)
        denominator = self.denominator(y, p)
        total = w[denominator].sum()
        if total == 0:
            return math.nan
        return float(w[denominator & self.numerator(y, p)].sum() / total)

    def support(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Number (total weight) of rows the rate rests on: its denominator."""
        y, p, w = _rows(y_true, y_pred, sample_weight)
        return float(w[self.denominator(y, p)].sum())

    def by_group(
        self, y: FloatArray, p: FloatArray, weight: FloatArray, group: NDArray[np.intp], n: int
    ) -> tuple[FloatArray, FloatArray]:
        """The rate and its support of each of ``n`` groups (``group``: each row's, 0..n-1).

        One pass over the rows for every group: what calling the metric on each group's
        rows gives (the same sums when the weights are whole numbers, as counts are).
        """
        denominator = self.denominator(y, p)
        hit = denominator & self.numerator(y, p)
        support = _weighted_counts(group[denominator], weight[denominator], n)
        hits = _weighted_counts(group[hit], weight[hit], n)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(support == 0, math.nan, hits / support), support


def _weighted_counts(group: NDArray[np.intp], weight: FloatArray, n: int) -> FloatArray:
    """The total weight of each of ``n`` groups."""
    return np.asarray(np.bincount(group, weights=weight, minlength=n), dtype=np.float64)


def _rows(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
    return y, p, w


def _count(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    return float(_rows(y_true, y_pred, sample_weight)[2].sum())


def _mean_score(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike, score: ArrayLike
) -> float:
    """Mean model score; a cell's ``score`` is the mean over its ``sample_weight`` rows."""
    weights = np.asarray(sample_weight, np.float64)
    return float(np.average(np.asarray(score, np.float64), weights=weights))


#: The audited group metrics, one entry each (fairlearn ``METRICS_SPEC`` style).
METRICS_SPEC: tuple[GroupMetric, ...] = (
    GroupMetric(
        name="selection_rate",
        description="share of the group's addresses selected in the top k",
        labelled_only=False,
        numerator=lambda y, p: p == 1,
        denominator=lambda y, p: np.ones(p.shape, dtype=bool),
    ),
    GroupMetric(
        name="false_positive_rate",
        description="share of the group's labelled addresses without a violation that were "
        "selected",
        labelled_only=True,
        numerator=lambda y, p: p == 1,
        denominator=lambda y, p: y == 0,
    ),
    GroupMetric(
        name="false_negative_rate",
        description="share of the group's labelled addresses with a violation that were not "
        "selected",
        labelled_only=True,
        numerator=lambda y, p: p == 0,
        denominator=lambda y, p: y == 1,
    ),
    GroupMetric(
        name="precision",
        description="share of the group's selected, labelled addresses with a violation",
        labelled_only=True,
        numerator=lambda y, p: y == 1,
        denominator=lambda y, p: (p == 1) & ~np.isnan(y),
    ),
)
