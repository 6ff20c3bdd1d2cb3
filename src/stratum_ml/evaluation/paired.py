"""Two rankings compared on the same random-sample visits: the paired difference in precision@k.

Two models rank the same population; the same uniform random-sample visits are
placed inside it. For each model, precision@k is estimated as in
:func:`~stratum_ml.evaluation.metrics.honest_precision_at_k` (the hit rate of the
random visits whose address scores at or above the model's k-th highest score) but
at exactly ``k``: a ``k`` whose top holds fewer than ``min_visits`` random visits of
either model is *not estimable*, never replaced by a wider region on its row.

**Paired.** Both estimates rest on the same visits, so their errors are
correlated: a visit in both tops counts for both. The interval of the difference
(challenger minus champion) is a percentile bootstrap that resamples the visits
once per replicate and recomputes *both* estimates on that resample; it is much
narrower than two separate intervals when the lists overlap, and it is the interval
promotion decides on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from stratum_ml.evaluation.metrics import wilson_interval

__all__ = ["PairedComparison", "PairedDifference", "paired_precision_at_k"]

#: fewest random visits in each model's top k for that k to be estimable
MIN_VISITS = 30
#: population fractions tried, in order, when the deciding k is not estimable
DECIDE_WIDEN_TO: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class PairedDifference:
    """Precision@k of two rankings on the same random visits, and their paired difference.

    Attributes
    ----------
    k : int
    estimable : bool
        Whether both tops hold at least the minimum of random visits.
    challenger, champion : float
        Each ranking's hit rate of the random visits in its top ``k`` (NaN if none).
    challenger_low, challenger_high, champion_low, champion_high : float
        Each estimate's Wilson interval on its own.
    difference, low, high : float
        Challenger minus champion, and the paired bootstrap interval of it
        (NaN where not estimable).
    n_challenger, n_champion : int
        Random visits in each top ``k``.
    n_both : int
        Random visits in both tops.
    confidence : float
    """

    k: int
    estimable: bool
    challenger: float
    champion: float
    challenger_low: float
    challenger_high: float
    champion_low: float
    champion_high: float
    difference: float
    low: float
    high: float
    n_challenger: int
    n_champion: int
    n_both: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain fields (NaN stays NaN; ``tracking.json_text`` writes it as null)."""
        return {"method": "paired bootstrap over random-sample visits", **asdict(self)}

    def describe(self) -> str:
        """One sentence: both estimates, the difference and its interval."""
        if not self.estimable:
            return (
                f"precision@{self.k} not estimable: {self.n_challenger} and {self.n_champion} "
                "random visits in the two tops"
            )
        return (
            f"precision@{self.k} challenger {self.challenger:.3f} (n={self.n_challenger}), "
            f"champion {self.champion:.3f} (n={self.n_champion}), difference "
            f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}] "
            f"({self.confidence:.0%} paired interval)"
        )


@dataclass(frozen=True)
class PairedComparison:
    """Paired differences per k, and the one a decision rests on.

    Attributes
    ----------
    rows : tuple of PairedDifference
        One per requested k, in increasing k (for display).
    decision : PairedDifference
        At the deciding k, or, when that is not estimable, at the smallest top
        (population fractions ``DECIDE_WIDEN_TO``) where both rankings hold enough
        random visits. ``decision.k`` says which; it is never shown as another k.
    decide_k : int
        The k asked for.
    n_visits : int
        Random-sample visits both rankings were compared on.
    population : int
        Rows ranked.
    """

    rows: tuple[PairedDifference, ...]
    decision: PairedDifference
    decide_k: int
    n_visits: int
    population: int

    def to_dict(self) -> dict[str, Any]:
        """Plain fields for ``--json``."""
        return {
            "decide_k": self.decide_k,
            "n_visits": self.n_visits,
            "population": self.population,
            "decision": self.decision.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
        }


def _in_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows scoring at or above the k-th highest score (ties at the cut-off join)."""
    threshold = float(np.partition(scores, scores.size - k)[scores.size - k])
    return np.asarray(scores >= threshold, dtype=bool)


def _difference(
    in_a: np.ndarray,
    in_b: np.ndarray,
    y: np.ndarray,
    k: int,
    counts: np.ndarray,
    min_visits: int,
    confidence: float,
) -> PairedDifference:
    n_a, n_b = int(in_a.sum()), int(in_b.sum())
    hits_a, hits_b = int(y[in_a].sum()), int(y[in_b].sum())
    est_a = hits_a / n_a if n_a else math.nan
    est_b = hits_b / n_b if n_b else math.nan
    a_low, a_high = wilson_interval(hits_a, n_a, confidence=confidence)
    b_low, b_high = wilson_interval(hits_b, n_b, confidence=confidence)
    estimable = n_a >= min_visits and n_b >= min_visits
    low = high = math.nan
    if estimable:
        with np.errstate(invalid="ignore", divide="ignore"):
            boot_a = (counts @ (y * in_a)) / (counts @ in_a.astype(float))
            boot_b = (counts @ (y * in_b)) / (counts @ in_b.astype(float))
        diff = boot_a - boot_b
        diff = diff[np.isfinite(diff)]
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(diff, [alpha, 1 - alpha]))
    return PairedDifference(
        k=k,
        estimable=estimable,
        challenger=est_a,
        champion=est_b,
        challenger_low=a_low,
        challenger_high=a_high,
        champion_low=b_low,
        champion_high=b_high,
        difference=est_a - est_b if estimable else math.nan,
        low=low,
        high=high,
        n_challenger=n_a,
        n_champion=n_b,
        n_both=int((in_a & in_b).sum()),
        confidence=confidence,
    )


def paired_precision_at_k(
    challenger_scores: ArrayLike,
    champion_scores: ArrayLike,
    visited_mask: ArrayLike,
    labels: ArrayLike,
    ks: Iterable[int],
    *,
    decide_k: int,
    min_visits: int = MIN_VISITS,
    widen_to: Sequence[float] = DECIDE_WIDEN_TO,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Precision@k of two rankings of one population on the same random visits, paired.

    Parameters
    ----------
    challenger_scores, champion_scores : array-like of shape (n,)
        Each model's score of every row of the population (random-sample visits
        included, each with its score as of its visit date); no NaN.
    visited_mask : array-like of bool, shape (n,)
        True where the row is a random-sample visit.
    labels : array-like of shape (n,)
        Outcome (1 = violation) where ``visited_mask``; ignored elsewhere.
    ks : iterable of int
        Cut-offs to show.
    decide_k : int
        The cut-off a decision rests on (the headline k).
    min_visits : int, default 30
        Fewest random visits each top must hold for its k to be estimable.
    widen_to : sequence of float
        Population fractions tried, in increasing order, for the decision when
        ``decide_k`` is not estimable.
    confidence : float, default 0.95
    n_boot : int, default 2000
        Bootstrap replicates (resampling the random visits).
    seed : int, default 0

    Returns
    -------
    PairedComparison

    Raises
    ------
    ValueError
        If the arrays differ in length or hold NaN scores, or a k is outside 1..n.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.random(2000) < 0.2
    >>> visited = rng.random(2000) < 0.5
    >>> good, poor = truth + rng.random(2000), rng.random(2000)
    >>> cmp = paired_precision_at_k(good, poor, visited, truth, [100], decide_k=100)
    >>> cmp.decision.low > 0
    True
    """
    a = np.asarray(challenger_scores, dtype=float)
    b = np.asarray(champion_scores, dtype=float)
    mask = np.asarray(visited_mask, dtype=bool)
    y_all = np.asarray(labels, dtype=float)
    if not (a.shape == b.shape == mask.shape == y_all.shape) or a.ndim != 1:
        raise ValueError("scores, mask and labels must be 1-d arrays of one length")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("scores hold NaN")
    n = a.size
    wanted = sorted(set(ks) | {decide_k})
    for k in wanted:
        if not 1 <= k <= n:
            raise ValueError(f"k={k} is outside 1..{n} (the population ranked)")
    y = np.nan_to_num(y_all[mask])
    if mask.any() and not np.isin(y_all[mask], (0.0, 1.0)).all():
        raise ValueError("labels of visited rows must be 0 or 1")
    n_visits = int(mask.sum())
    rng = np.random.default_rng(seed)
    counts = (
        rng.multinomial(n_visits, np.full(n_visits, 1.0 / n_visits), size=n_boot).astype(float)
        if n_visits
        else np.zeros((n_boot, 0))
    )

    def at(k: int) -> PairedDifference:
        return _difference(
            _in_top(a, k)[mask], _in_top(b, k)[mask], y, k, counts, min_visits, confidence
        )

    rows = {k: at(k) for k in wanted}
    decision = rows[decide_k]
    if not decision.estimable:
        for fraction in sorted(widen_to):
            k = max(decide_k, math.ceil(fraction * n))
            if k <= decide_k:
                continue
            decision = at(min(k, n))
            if decision.estimable:
                break
    return PairedComparison(
        rows=tuple(rows[k] for k in sorted(set(ks))),
        decision=decision,
        decide_k=decide_k,
        n_visits=n_visits,
        population=n,
    )
