"""Design-based estimates: Horvitz-Thompson from visits chosen by a known design.

A visit plan (:mod:`stratum_ml.runs.plan`) splits a scored population into
strata by the rank of the run that drew it: a *certainty* stratum (the top
picks, each visited with inclusion probability 1) and rank bands beyond it, in
each of which a fixed number of addresses was drawn uniformly at random without
replacement. Every address's inclusion probability is therefore known:
``pi_i = n_h / N_h`` for an address in stratum ``h`` of size ``N_h`` from which
``n_h`` were drawn.

**Estimator.** A population total ``T = sum_i z_i`` (for example the number of
violations in some model's top k: ``z_i = y_i * [rank_i <= k]``) is estimated by
Horvitz-Thompson, ``T_hat = sum_{i visited} z_i / pi_i``, which under this design
is the stratified expansion estimator ``sum_h N_h * mean_h(z)``. It is unbiased
for *any* ``z`` -- any model version's ranking, any group -- because the only
randomness is the draw, whose probabilities are known; no model of who was
visited is needed.

**Variance.** Stratified simple random sampling without replacement:
``Var(T_hat) = sum_h N_h**2 * (1 - n_h / N_h) * s_h**2 / n_h``, estimated with the
sample variance ``s_h**2`` of ``z`` in the stratum. The certainty stratum adds no
variance. For a 0/1 ``z`` the per-stratum variance is floored at
``p~ (1 - p~)`` with the Agresti-Coull ``p~ = (x + 2) / (n + 4)``: a stratum in
which every drawn address had the same outcome otherwise claims zero variance
and the interval would be too short. Ratios (recall, false-positive rates and
their ratio) use the linearised (Taylor) variance; the ratio of two groups'
false-positive rates is post-stratified by group (known cell sizes) with each cell's
variance floored likewise (:func:`fpr_ratio`). Intervals are
``estimate +/- z_{0.975} * SE``, clipped to the range of the quantity.

**Non-response.** A drawn address that was not visited, declined by an
analyst, or whose visit was inconclusive has no outcome. Nothing is assumed
about it: the estimate is computed twice, with the missing outcomes set to the
value that makes the quantity smallest and largest (all negative / all
positive, per address where the direction differs), and the interval becomes
``[low of the first, high of the second]``. ``estimate`` then is the value under
missing-at-random within strata (respondents reweighted), reported beside the
two extremes.

**Not estimable.** Where the quantity depends on a stratum from which no
address was visited, or on fewer than ``min_visits`` visited addresses outside
the certainty stratum, the design gives no information: the result says
``not estimable`` and gives the worst- and best-case bounds (every unvisited
address of the region negative / positive) beside the naive number (the rate
among visited addresses), which is labelled biased. A wider region's estimate
is never given for a smaller region.

**Assumptions.** (1) The plan was drawn as stored: the strata, their sizes and
the numbers drawn are those used here, with the stored seed. (2) A visit's
outcome is what a visit on the run's date would have found: the estimate is of
what visits find (an inspector who misses a violation makes it a negative; the
design cannot correct detection errors). (3) The population is the run's
scored population; an address outside it is outside every estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DesignEstimate",
    "StratifiedDesign",
    "fpr_ratio",
    "group_fpr",
    "ht_total",
    "precision_at_k",
    "precision_difference_at_k",
    "prevalence",
    "recall_at_k",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: z_{0.975}: the normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054
#: z of a two-sided 97.5% interval: two such intervals hold together with >= 95% (Bonferroni)
Z_JOINT = 2.241402727604947
#: fewest visited addresses outside the certainty stratum an estimate needs
MIN_VISITS = 10

HT = "horvitz_thompson"
HT_BOUNDS = "horvitz_thompson_with_nonresponse_bounds"
NOT_ESTIMABLE = "not_estimable"


@dataclass(frozen=True)
class StratifiedDesign:
    """A stratified design without replacement over a population, and what it observed.

    Parameters
    ----------
    stratum : array-like of int, shape (n,)
        The stratum of every address of the population (any integer labels).
    sampled : array-like of bool, shape (n,)
        True where the address was drawn (a pick of the plan, top or exploration).
    observed : array-like of bool, shape (n,)
        True where a drawn address has a conclusive outcome.
    y : array-like of float, shape (n,)
        1 = violation, 0 = none, where ``observed``; ignored (may be NaN) elsewhere.

    Notes
    -----
    The inclusion probability of an address is ``n_h / N_h`` of its stratum; a
    stratum with every address drawn is a certainty stratum.
    """

    stratum: NDArray[np.int64]
    sampled: BoolArray
    observed: BoolArray
    y: FloatArray

    @classmethod
    def of(
        cls, stratum: ArrayLike, sampled: ArrayLike, observed: ArrayLike, y: ArrayLike
    ) -> StratifiedDesign:
        """Check and build a design (see the class parameters)."""
        s = np.asarray(stratum, dtype=np.int64)
        d = np.asarray(sampled, dtype=bool)
        o = np.asarray(observed, dtype=bool)
        v = np.asarray(y, dtype=np.float64)
        if not s.ndim == d.ndim == o.ndim == v.ndim == 1 or not (
            s.size == d.size == o.size == v.size
        ):
            raise ValueError("stratum, sampled, observed and y must be 1-d and of one length")
        if (o & ~d).any():
            raise ValueError("an address has an outcome but was not drawn by the design")
        labels = v[o]
        if np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("y must be 0 or 1 wherever observed")
        return cls(stratum=s, sampled=d, observed=o, y=np.where(o, v, np.nan))

    @property
    def size(self) -> int:
        """Addresses in the population."""
        return int(self.stratum.size)

    def inclusion_probability(self) -> FloatArray:
        """``n_h / N_h`` of every address's stratum."""
        _, inverse, sizes = np.unique(self.stratum, return_inverse=True, return_counts=True)
        drawn = np.bincount(inverse, weights=self.sampled.astype(np.float64))
        return np.asarray((drawn / sizes)[inverse], dtype=np.float64)

    def certain(self) -> BoolArray:
        """True for addresses of a certainty stratum (inclusion probability 1)."""
        return np.asarray(self.inclusion_probability() >= 1.0, dtype=bool)


@dataclass(frozen=True)
class DesignEstimate:
    """One design-based estimate with its interval, or bounds where it is not estimable.

    Attributes
    ----------
    quantity : str
        What is estimated (``precision@100``, ``recall@500``, ``prevalence``, ...).
    estimate : float
        The Horvitz-Thompson estimate (missing outcomes at random within strata);
        NaN when not estimable.
    low, high : float
        The 95% interval; with non-response the interval of the worst case below
        and the best case above; when not estimable, the worst- and best-case
        bounds (unvisited all negative / all positive).
    method : str
        ``horvitz_thompson``, ``horvitz_thompson_with_nonresponse_bounds`` or
        ``not_estimable``.
    n_visits : int
        Visited addresses (with an outcome) the quantity depends on.
    n_missing : int
        Drawn addresses the quantity depends on without an outcome (non-response).
    estimate_low, estimate_high : float
        The point estimate with missing outcomes all negative / all positive (equal
        to ``estimate`` without non-response).
    se : float
        Standard error of ``estimate`` (NaN when not estimable).
    naive : float or None
        When not estimable: the rate among visited addresses, biased (who was
        visited was not chosen at random); None otherwise.
    note : str
        One sentence for reports.
    """

    quantity: str
    estimate: float
    low: float
    high: float
    method: str
    n_visits: int
    n_missing: int
    estimate_low: float
    estimate_high: float
    se: float
    naive: float | None
    note: str

    @property
    def estimable(self) -> bool:
        """Whether the design gives an estimate (not only bounds)."""
        return self.method != NOT_ESTIMABLE

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in ``[low, high]``."""
        return self.low - 1e-12 <= value <= self.high + 1e-12

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable fields (NaN as None)."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            out[name] = None if isinstance(value, float) and math.isnan(value) else value
        out["naive_label"] = "biased: visited addresses only" if self.naive is not None else None
        return out


@dataclass(frozen=True)
class _Total:
    total: float
    var: float


def ht_total(
    design: StratifiedDesign,
    z: ArrayLike,
    *,
    use: ArrayLike | None = None,
    binary: bool = False,
) -> tuple[float, float]:
    """Horvitz-Thompson total of ``z`` and its variance under stratified SRSWOR.

    Parameters
    ----------
    design : StratifiedDesign
        The strata and which addresses were drawn.
    z : array-like of float, shape (n,)
        The value of every address; only entries of the used addresses are read.
    use : array-like of bool, optional
        The drawn addresses the estimate uses (default: the observed ones). A
        stratum is expanded by ``N_h / m_h`` with ``m_h`` the used addresses in it
        (missing at random within strata when ``use`` is the observed subset).
    binary : bool, default False
        ``z`` is 0/1: floor each stratum's variance at the Agresti-Coull value.

    Returns
    -------
    (total, variance) : tuple of float
        NaN when a stratum holds addresses but none is used and ``z`` may be
        non-zero there (unknown); see the module notes.

    Examples
    --------
    >>> d = StratifiedDesign.of([0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0],
    ...                         [1, 0, 1, 0, np.nan, np.nan])
    >>> ht_total(d, d.y)[0]
    3.0
    """
    t = _total(design, np.asarray(z, dtype=np.float64), _used(design, use), binary)
    return t.total, t.var


def _used(design: StratifiedDesign, use: ArrayLike | None) -> BoolArray:
    if use is None:
        return design.observed
    used = np.asarray(use, dtype=bool)
    if (used & ~design.sampled).any():
        raise ValueError("only drawn addresses can be used")
    return used


def _total(
    design: StratifiedDesign,
    z: FloatArray,
    used: BoolArray,
    binary: bool,
    only: BoolArray | None = None,
) -> _Total:
    """Stratified expansion total; strata without an ``only`` address are skipped (z = 0)."""
    total = 0.0
    var = 0.0
    strata = design.stratum if only is None else design.stratum[only]
    for h in np.unique(strata):
        members = design.stratum == h
        size = int(members.sum())
        values = z[members & used]
        m = values.size
        if m == 0:
            return _Total(math.nan, math.nan)
        total += size * float(values.sum()) / m  # exact for a census stratum (m == size)
        if m >= size:
            continue
        s2 = float(values.var(ddof=1)) if m > 1 else 0.0
        if binary:  # 0/1, or -1/0/1 (a paired difference): floor on the non-zero share
            p = (float(np.abs(values).sum()) + 2.0) / (m + 4.0)
            s2 = max(s2, p * (1.0 - p))
        var += size**2 * (1.0 - m / size) * s2 / m
    return _Total(total, var)


def _impute(design: StratifiedDesign, fill: FloatArray) -> FloatArray:
    """``y`` with the missing outcomes of drawn addresses set to ``fill``."""
    return np.where(design.observed, design.y, fill)


#: (estimate, standard error) or (estimate, standard error, low, high)
Statistic = Callable[[StratifiedDesign, FloatArray, BoolArray], tuple[float, ...]]


def _interval(result: tuple[float, ...]) -> tuple[float, float]:
    if len(result) == 4:
        return result[2], result[3]
    return result[0] - Z95 * result[1], result[0] + Z95 * result[1]


def _unestimable(design: StratifiedDesign, relevant: BoolArray, min_visits: int) -> str | None:
    """Why the design gives no estimate of a quantity over ``relevant``; None if it does."""
    uncertain = relevant & ~design.certain()
    visits_uncertain = int((uncertain & design.observed).sum())
    drawn_per_stratum_ok = all(
        (design.observed & (design.stratum == h)).any() for h in np.unique(design.stratum[relevant])
    )
    # visits needed: min_visits for a quantity that lies wholly outside the top picks,
    # in proportion to its share outside them otherwise
    need = min(
        int(uncertain.sum()),
        math.ceil(min_visits * uncertain.sum() / max(int(relevant.sum()), 1)),
    )
    if not drawn_per_stratum_ok:
        return "a stratum it depends on has no visited address"
    if visits_uncertain < need:
        return f"{visits_uncertain} visits outside the top picks, fewer than {need}"
    return None


def _estimate(
    quantity: str,
    design: StratifiedDesign,
    relevant: BoolArray,
    statistic: Statistic,
    *,
    fill_low: FloatArray,
    fill_high: FloatArray,
    bounds: tuple[float, float],
    naive: float,
    limits: tuple[float, float],
    min_visits: int,
) -> DesignEstimate:
    """Estimate, interval and non-response bounds of one quantity; or not estimable."""
    sub = design
    rel = relevant
    n_visits = int((rel & sub.observed).sum())
    n_missing = int((rel & sub.sampled & ~sub.observed).sum())
    lo_lim, hi_lim = limits
    why = _unestimable(sub, rel, min_visits)
    if why is not None:
        return DesignEstimate(
            quantity=quantity,
            estimate=math.nan,
            low=bounds[0],
            high=bounds[1],
            method=NOT_ESTIMABLE,
            n_visits=n_visits,
            n_missing=n_missing,
            estimate_low=math.nan,
            estimate_high=math.nan,
            se=math.nan,
            naive=naive,
            note=f"not estimable ({why}): worst and best case shown; the naive rate is biased",
        )
    est, se = statistic(sub, sub.y, sub.observed)[:2]
    lows = statistic(sub, _impute(sub, fill_low), sub.sampled)
    highs = statistic(sub, _impute(sub, fill_high), sub.sampled)
    low = _interval(lows)[0]
    high = _interval(highs)[1]
    if math.isnan(est):
        est_low, est_high = lows[0], highs[0]
    else:
        est_low, est_high = (lows[0], highs[0]) if n_missing else (est, est)
    return DesignEstimate(
        quantity=quantity,
        estimate=est,
        low=float(np.clip(low, lo_lim, hi_lim)),
        high=float(np.clip(high, lo_lim, hi_lim)),
        method=HT_BOUNDS if n_missing else HT,
        n_visits=n_visits,
        n_missing=n_missing,
        estimate_low=est_low,
        estimate_high=est_high,
        se=se,
        naive=None,
        note=(
            f"design-based; {n_missing} drawn addresses without an outcome widen the interval "
            "into bounds"
            if n_missing
            else "design-based (Horvitz-Thompson, stratified sampling without replacement)"
        ),
    )


def _rate(values: FloatArray) -> float:
    return float(values.mean()) if values.size else math.nan


def precision_at_k(
    design: StratifiedDesign,
    in_top: ArrayLike,
    *,
    min_visits: int = MIN_VISITS,
    label: str | None = None,
) -> DesignEstimate:
    """Precision of a selection (a model's top k): violations among its addresses.

    Parameters
    ----------
    design : StratifiedDesign
        The plan's strata and visits.
    in_top : array-like of bool, shape (n,)
        The selection, e.g. ``rank <= k`` of any model version's ranking on the
        run's date (it need not be the ranking that drew the plan).
    min_visits : int, default MIN_VISITS
        Fewest visits outside the certainty stratum inside the selection needed;
        fewer (unless the selection holds fewer such addresses and all were visited)
        and it is not estimable.
    label : str, optional
        The quantity's name (default ``precision@<size of the selection>``).

    Returns
    -------
    DesignEstimate
        ``T_hat / k`` with ``T_hat`` the HT total of ``y * in_top``.
    """
    a = np.asarray(in_top, dtype=bool)
    k = int(a.sum())
    if k == 0:
        raise ValueError("the selection is empty")
    obs = design.observed & a
    positives = float(design.y[obs].sum())
    negatives = float(obs.sum()) - positives

    def stat(d: StratifiedDesign, y: FloatArray, used: BoolArray) -> tuple[float, ...]:
        t = _total(d, np.nan_to_num(y) * a, used, binary=True, only=a)
        return t.total / k, math.sqrt(t.var) / k

    return _estimate(
        label or f"precision@{k}",
        design,
        a,
        stat,
        fill_low=np.zeros(design.size),
        fill_high=np.ones(design.size),
        bounds=(positives / k, (k - negatives) / k),
        naive=_rate(design.y[obs]),
        limits=(0.0, 1.0),
        min_visits=min_visits,
    )


def prevalence(design: StratifiedDesign, *, min_visits: int = MIN_VISITS) -> DesignEstimate:
    """The share of the population in violation.

    Returns
    -------
    DesignEstimate
        ``T_hat / N`` with ``T_hat`` the HT total of ``y``.
    """
    n = design.size
    everyone = np.ones(n, dtype=bool)
    obs = design.observed
    positives = float(design.y[obs].sum())
    negatives = float(obs.sum()) - positives

    def stat(d: StratifiedDesign, y: FloatArray, used: BoolArray) -> tuple[float, ...]:
        t = _total(d, np.nan_to_num(y), used, binary=True)
        return t.total / n, math.sqrt(t.var) / n

    return _estimate(
        "prevalence",
        design,
        everyone,
        stat,
        fill_low=np.zeros(n),
        fill_high=np.ones(n),
        bounds=(positives / n, (n - negatives) / n),
        naive=_rate(design.y[obs]),
        limits=(0.0, 1.0),
        min_visits=min_visits,
    )


def _ratio(
    d: StratifiedDesign,
    num: FloatArray,
    den: FloatArray,
    used: BoolArray,
    only: BoolArray | None = None,
) -> tuple[float, float]:
    """HT ratio ``sum num / sum den`` with its linearised standard error."""
    t_num = _total(d, num, used, binary=False, only=only).total
    t_den = _total(d, den, used, binary=False, only=only).total
    if not t_den > 0 or math.isnan(t_num):
        return math.nan, math.nan
    r = t_num / t_den
    lin = _total(d, (num - r * den) / t_den, used, binary=False, only=only)
    return r, math.sqrt(lin.var)


def _bounded(t: _Total, z: float) -> tuple[float, float]:
    """A total's interval, not below 0."""
    half = z * math.sqrt(t.var)
    return max(0.0, t.total - half), t.total + half


def _share_interval(
    d: StratifiedDesign,
    part: FloatArray,
    part_only: BoolArray,
    rest: FloatArray,
    rest_only: BoolArray,
    used: BoolArray,
) -> tuple[float, float]:
    """Interval of ``P / (P + Q)`` from 97.5% intervals of the 0/1 totals ``P`` and ``Q``."""
    p_lo, p_hi = _bounded(_total(d, part, used, binary=True, only=part_only), Z_JOINT)
    q_lo, q_hi = _bounded(_total(d, rest, used, binary=True, only=rest_only), Z_JOINT)
    low = p_lo / (p_lo + q_hi) if p_lo + q_hi > 0 else 0.0
    high = p_hi / (p_hi + q_lo) if p_hi + q_lo > 0 else 1.0
    return low, high


def precision_difference_at_k(
    design: StratifiedDesign,
    in_a: ArrayLike,
    in_b: ArrayLike,
    *,
    min_visits: int = MIN_VISITS,
    label: str | None = None,
) -> DesignEstimate:
    """Paired difference of the precision of two selections of one size, on the same visits.

    ``precision(A) - precision(B) = sum_i y_i ([i in A] - [i in B]) / k``: one
    Horvitz-Thompson total of ``z_i = y_i c_i`` with ``c_i`` in {-1, 0, 1}, so its
    stratified variance accounts for the pairing (an address in both selections
    contributes nothing). Non-response: a missing outcome is set to 1 where it
    lowers the difference (``c_i < 0``) and 0 where ``c_i > 0`` for the low end,
    and the other way round for the high end. Each stratum's variance is floored
    at the Agresti-Coull value of its share of non-zero ``z`` (as for 0/1 totals),
    so a stratum whose visits all agree does not claim zero variance.

    Parameters
    ----------
    design : StratifiedDesign
        The plan's strata and visits.
    in_a, in_b : array-like of bool, shape (n,)
        The two selections (for example two model versions' top k on the run's date).
    min_visits : int, default MIN_VISITS
        Fewest visits outside the certainty stratum, among the addresses in exactly
        one of the selections, needed (scaled as in :func:`precision_at_k`).
    label : str, optional
        The quantity's name (default ``precision@<k> difference``).

    Returns
    -------
    DesignEstimate
        In [-1, 1]; ``not estimable`` with the worst and best case where the design
        holds too little on the addresses the selections disagree on. Identical
        selections give exactly 0.

    Raises
    ------
    ValueError
        If the selections are empty or of different sizes.
    """
    a = np.asarray(in_a, dtype=bool)
    b = np.asarray(in_b, dtype=bool)
    k = int(a.sum())
    if k == 0 or int(b.sum()) != k:
        raise ValueError("the two selections must be non-empty and of one size")
    quantity = label or f"precision@{k} difference"
    c = a.astype(np.float64) - b.astype(np.float64)
    differ = c != 0
    if not differ.any():
        n_visits = int((design.observed & a).sum())
        return DesignEstimate(
            quantity=quantity,
            estimate=0.0,
            low=0.0,
            high=0.0,
            method=HT,
            n_visits=n_visits,
            n_missing=0,
            estimate_low=0.0,
            estimate_high=0.0,
            se=0.0,
            naive=None,
            note="the two selections are the same addresses",
        )
    obs = design.observed & differ
    seen = float((np.nan_to_num(design.y) * c)[obs].sum())
    unseen = differ & ~design.observed

    def stat(d: StratifiedDesign, y: FloatArray, used: BoolArray) -> tuple[float, ...]:
        t = _total(d, np.nan_to_num(y) * c, used, binary=True, only=differ)
        return t.total / k, math.sqrt(t.var) / k

    return _estimate(
        quantity,
        design,
        differ,
        stat,
        fill_low=np.where(c < 0, 1.0, 0.0),
        fill_high=np.where(c > 0, 1.0, 0.0),
        bounds=(
            (seen + float(c[unseen & (c < 0)].sum())) / k,
            (seen + float(c[unseen & (c > 0)].sum())) / k,
        ),
        naive=_rate((design.y * c)[obs]),
        limits=(-1.0, 1.0),
        min_visits=min_visits,
    )


def recall_at_k(
    design: StratifiedDesign, in_top: ArrayLike, *, min_visits: int = MIN_VISITS
) -> DesignEstimate:
    """The share of all violations that a selection (a model's top k) finds.

    Returns
    -------
    DesignEstimate
        ``T_hat(y * in_top) / T_hat(y)``; ``se`` is the linearised standard error.
        The interval is not ``+/- 1.96 se``: the total outside the selection is
        mostly estimated from a few population-wide visits and skewed, so the
        interval combines a 97.5% interval of the violations found with one of
        those missed (together >= 95%), ``[f_lo / (f_lo + m_hi), f_hi / (f_hi + m_lo)]``.
        Worst case: missing outcomes inside the selection negative, outside positive.
    """
    a = np.asarray(in_top, dtype=bool)
    k = int(a.sum())
    af = a.astype(np.float64)
    everyone = np.ones(design.size, dtype=bool)
    obs = design.observed

    def stat(d: StratifiedDesign, y: FloatArray, used: BoolArray) -> tuple[float, ...]:
        v = np.nan_to_num(y)
        r, se = _ratio(d, v * af, v, used)
        return (r, se, *_share_interval(d, v * af, a, v * (1.0 - af), ~a, used))

    in_pos = float(design.y[obs & a].sum())
    out_neg = float((obs & ~a).sum() - design.y[obs & ~a].sum())
    low_total = in_pos + float((~a).sum()) - out_neg
    high_in = k - float((obs & a).sum() - in_pos)
    high_total = high_in + float(design.y[obs & ~a].sum())
    bounds = (
        in_pos / low_total if low_total > 0 else 0.0,
        high_in / high_total if high_total > 0 else 1.0,
    )
    return _estimate(
        f"recall@{k}",
        design,
        everyone,
        stat,
        fill_low=1.0 - af,
        fill_high=af,
        bounds=bounds,
        naive=_rate(design.y[obs & a]) if (obs & a).any() else math.nan,
        limits=(0.0, 1.0),
        min_visits=min_visits,
    )


def group_fpr(
    design: StratifiedDesign,
    in_top: ArrayLike,
    group: ArrayLike,
    *,
    min_visits: int = MIN_VISITS,
    label: str = "false_positive_rate",
) -> DesignEstimate:
    """False-positive rate of a selection within a group: selected among the innocent.

    ``FPR_g = #(selected, no violation, in g) / #(no violation, in g)``, a ratio of
    HT totals; the interval combines 97.5% intervals of the two totals as for
    :func:`recall_at_k`. Worst case (highest): missing outcomes in the selection
    negative, outside it positive.

    Parameters
    ----------
    design : StratifiedDesign
    in_top : array-like of bool
        The selection.
    group : array-like of bool
        Membership of every address (an address-level protected group).
    min_visits : int, default MIN_VISITS
    label : str
        The quantity's name.

    Returns
    -------
    DesignEstimate
    """
    a = np.asarray(in_top, dtype=bool)
    g = np.asarray(group, dtype=bool)
    af = a.astype(np.float64)
    gf = g.astype(np.float64)
    obs = design.observed

    def stat(d: StratifiedDesign, y: FloatArray, used: BoolArray) -> tuple[float, ...]:
        neg = (1.0 - np.nan_to_num(y)) * gf
        r, se = _ratio(d, neg * af, neg, used, only=g)
        return (r, se, *_share_interval(d, neg * af, g & a, neg * (1.0 - af), g & ~a, used))

    fp = float((1 - design.y[obs & g & a]).sum())
    tn_known = float((1 - design.y[obs & g & ~a]).sum())
    sel_unknown = float((g & a & ~obs).sum())
    out_unknown = float((g & ~a & ~obs).sum())
    low_den = fp + tn_known + out_unknown
    high_num = fp + sel_unknown
    bounds = (
        fp / low_den if low_den > 0 else 0.0,
        high_num / (high_num + tn_known) if high_num + tn_known > 0 else 1.0,
    )
    naive_neg = obs & g & (design.y == 0)
    return _estimate(
        label,
        design,
        g,
        stat,
        fill_low=af,
        fill_high=1.0 - af,
        bounds=bounds,
        naive=_rate(af[naive_neg]) if naive_neg.any() else math.nan,
        limits=(0.0, 1.0),
        min_visits=min_visits,
    )


def fpr_ratio(
    design: StratifiedDesign,
    in_top: ArrayLike,
    group: ArrayLike,
    reference: ArrayLike,
    *,
    min_visits: int = MIN_VISITS,
    label: str = "false_positive_rate_ratio",
) -> DesignEstimate:
    """The ratio of two groups' false-positive rates, ``FPR_group / FPR_reference``.

    **Estimate.** Post-stratified Horvitz-Thompson: every stratum of the design is
    split by group membership (known for every address of the population), and each
    group's innocent households, selected and in all, are expanded cell by cell from
    the cell's known size, ``N_gh * mean over the cell's visits``. A group's count of
    innocent households then rests on the violation rate among its visits in each
    stratum, not on how many of a stratum's few draws happened to fall in the group
    (which is what made the interval of the plain expansion too short). A stratum in
    which one group's cell has no visited address is left whole (plain expansion).

    **Interval.** On the log scale, ``log R +/- z_{0.975} SE``, with ``SE`` from the
    linearised (Taylor) variance under stratified sampling of the cells, and each
    cell's variance floored at the Agresti-Coull value of its two 0/1 parts (innocent
    and selected, innocent and not selected), so that a cell whose few visits all
    agree does not claim that its count is known. Measured on a known population over
    1,000 plan draws (``tests/evaluation/test_design_ratio_coverage.py``) and in
    ``bench/loop.py``: the 95% interval holds the true ratio in at least 90% of draws.

    **Not estimable.** Where either group's false-positive rate is not estimable
    (:func:`group_fpr`), or the visits hold no innocent selected household of a
    group, the result is ``not estimable``: its bounds
    are the ratio of the two groups' intervals or bounds (``low_1 / high_0``,
    ``high_1 / low_0``), which hold the truth whenever the two rates' intervals do,
    beside the naive ratio, labelled biased. Non-response: the lowest ratio puts
    the group's missing outcomes at its best case and the reference's at its worst,
    and the other way round for the highest.

    Returns
    -------
    DesignEstimate
    """
    a = np.asarray(in_top, dtype=bool)
    g1 = np.asarray(group, dtype=bool)
    g0 = np.asarray(reference, dtype=bool)
    if (g1 & g0).any():
        raise ValueError("the group and the reference group must not overlap")
    af = a.astype(np.float64)
    both = g1 | g0
    code = np.where(g1, _GROUP, np.where(g0, _REFERENCE, _NEITHER)).astype(np.int64)
    cells = _post_strata(design, code)
    why = (
        _unestimable(design, g1, min_visits)
        or _unestimable(design, g0, min_visits)
        or _unestimable(cells, both, min_visits)
    )
    if why is not None:
        return _ratio_bounds(design, a, g1, g0, min_visits=min_visits, label=label)

    def stat(d: StratifiedDesign, y: FloatArray, used: BoolArray) -> tuple[float, ...]:
        return _log_fpr_ratio(d, code, y, used, a)

    log_est = _estimate(
        label,
        cells,
        both,
        stat,
        fill_low=np.where(g1, af, 1.0 - af),
        fill_high=np.where(g1, 1.0 - af, af),
        bounds=(math.nan, math.nan),
        naive=math.nan,
        limits=(-math.inf, math.inf),
        min_visits=min_visits,
    )
    if math.isnan(log_est.estimate) or math.isnan(log_est.low) or math.isnan(log_est.high):
        # a group with no innocent household selected (or none at all) among the visits
        return _ratio_bounds(design, a, g1, g0, min_visits=min_visits, label=label)
    return DesignEstimate(
        quantity=label,
        estimate=_exp(log_est.estimate),
        low=_exp(log_est.low),
        high=_exp(log_est.high),
        method=log_est.method,
        n_visits=log_est.n_visits,
        n_missing=log_est.n_missing,
        estimate_low=_exp(log_est.estimate_low),
        estimate_high=_exp(log_est.estimate_high),
        se=log_est.se,
        naive=None,
        note=log_est.note + "; post-stratified by group, interval on the log scale",
    )


def _ratio_bounds(
    design: StratifiedDesign,
    a: BoolArray,
    g1: BoolArray,
    g0: BoolArray,
    *,
    min_visits: int,
    label: str,
) -> DesignEstimate:
    """The not-estimable FPR ratio: the ratio of the two groups' intervals or bounds."""
    f1 = group_fpr(design, a, g1, min_visits=min_visits)
    f0 = group_fpr(design, a, g0, min_visits=min_visits)
    both = g1 | g0
    naive = (
        f1.naive / f0.naive
        if f1.naive is not None and f0.naive is not None and f0.naive > 0
        else math.nan
    )
    return DesignEstimate(
        quantity=label,
        estimate=math.nan,
        low=f1.low / f0.high if f0.high > 0 else 0.0,
        high=f1.high / f0.low if f0.low > 0 else math.inf,
        method=NOT_ESTIMABLE,
        n_visits=int((both & design.observed).sum()),
        n_missing=int((both & design.sampled & ~design.observed).sum()),
        estimate_low=math.nan,
        estimate_high=math.nan,
        se=math.nan,
        naive=naive,
        note="not estimable: a group's false-positive rate is not, or no innocent selected "
        "household of a group was visited; the ratio of the two rates' bounds is shown "
        "and the naive ratio is biased",
    )


def _exp(value: float) -> float:
    return math.nan if math.isnan(value) else math.exp(value)


#: post-stratum codes of :func:`_post_strata`: neither group, the group, the reference
_NEITHER, _GROUP, _REFERENCE = 0, 1, 2


def _post_strata(design: StratifiedDesign, code: NDArray[np.int64]) -> StratifiedDesign:
    """The design with every stratum split by group membership (known for every address).

    Within a stratum, the drawn addresses of one group are a simple random sample of
    that group's addresses there, given how many were drawn; so each (stratum, group)
    cell is a stratum of its own with its known size (post-stratification). A cell of
    a certainty stratum is a certainty cell. A stratum in which a group's cell has no
    visited address is left whole (the plain expansion there): a cell is never empty.
    """
    _, index = np.unique(design.stratum, return_inverse=True)
    cell = index * 3 + code
    k = int(index.max()) * 3 + 3
    size = np.bincount(cell, minlength=k)
    seen = np.bincount(cell, weights=design.observed.astype(np.float64), minlength=k)
    empty = (size > 0) & (seen == 0) & (np.arange(k) % 3 != _NEITHER)
    whole = np.zeros(k // 3, dtype=bool)
    whole[np.arange(k)[empty] // 3] = True
    return StratifiedDesign(
        stratum=np.where(whole[index], index * 3 + _NEITHER, cell).astype(np.int64),
        sampled=design.sampled,
        observed=design.observed,
        y=design.y,
    )


def _ac_var(count: FloatArray, m: FloatArray) -> FloatArray:
    """Agresti-Coull ``p~ (1 - p~)`` of ``count`` successes in ``m`` draws."""
    p = (count + 2.0) / (m + 4.0)
    return np.asarray(p * (1.0 - p), dtype=np.float64)


def _log_fpr_ratio(
    cells: StratifiedDesign,
    code: NDArray[np.int64],
    y: FloatArray,
    used: BoolArray,
    selected: BoolArray,
) -> tuple[float, float]:
    """Post-stratified log FPR ratio and its linearised standard error, floored per cell.

    ``FPR_g = FP_g / D_g`` with ``FP_g`` (innocent and selected) and ``D_g`` (innocent)
    expanded cell by cell from the known cell sizes. ``log R`` is linearised as
    ``u_i = +-(a_i n_i / FP_g - n_i / D_g)`` (``n_i`` innocent, ``a_i`` selected; ``+``
    in the group, ``-`` in the reference). A cell's sample variance of ``u`` is
    floored at ``sum_p w_p^2 v(e_p)`` over its 0/1 parts ``e_p`` (innocent, selected or
    not, of each group the cell holds; a part the cell cannot hold is left out), with
    ``w_p`` the part's weight in ``u`` and ``v`` the Agresti-Coull variance of its count
    among the cell's used draws: a cell whose visits all agree does not claim that its
    counts are known.
    """
    cell = cells.stratum
    k = int(cell.max()) + 1
    n = (1.0 - np.nan_to_num(y)) * used
    a = selected.astype(np.float64)
    # part of an address: 2 * code + selected (codes 1 and 2 hold the groups)
    part = 2 * code + selected.astype(np.int64)

    def per(values: FloatArray, key: NDArray[np.int64], length: int) -> FloatArray:
        return np.bincount(key, weights=values, minlength=length).astype(np.float64)

    size = per(np.ones(cell.size), cell, k)
    m = per(used.astype(np.float64), cell, k)
    relevant = per((code != _NEITHER).astype(np.float64), cell, k) > 0
    if (m[relevant] == 0).any():
        return math.nan, math.nan
    scale = np.divide(size, m, out=np.zeros(k), where=m > 0)
    # innocent used draws per (cell, part), expanded by the cell's scale
    x = per(n, cell * 6 + part, 6 * k).reshape(k, 6)
    by_part = (scale[:, None] * x).sum(axis=0)
    fp = np.array([1.0, by_part[3], by_part[5]])
    den = np.array([1.0, by_part[2] + by_part[3], by_part[4] + by_part[5]])
    if not (fp[1:] > 0).all():
        return math.nan, math.nan
    sign = np.array([0.0, 1.0, -1.0])
    u = sign[code] * n * (a / fp[code] - 1.0 / den[code])
    su, su2 = per(u * used, cell, k), per(u * u * used, cell, k)
    s2 = np.divide(su2 - su * su / np.maximum(m, 1.0), m - 1.0, out=np.zeros(k), where=m > 1)
    # weight of each part in u, and whether a cell holds addresses of the part
    weight = np.array([0.0, 0.0, -1.0 / den[1], 1.0 / fp[1] - 1.0 / den[1]])
    weight = np.concatenate([weight, [1.0 / den[2], -(1.0 / fp[2] - 1.0 / den[2])]])
    holds = per(np.ones(cell.size), cell * 6 + part, 6 * k).reshape(k, 6) > 0
    floor = (np.where(holds, weight**2 * _ac_var(x, m[:, None]), 0.0)).sum(axis=1)
    drawn = relevant & (m < size)
    var = np.where(
        drawn,
        size**2 * (1.0 - m / np.maximum(size, 1.0)) * np.maximum(s2, floor) / np.maximum(m, 1.0),
        0.0,
    )
    log_r = math.log(fp[1] / den[1]) - math.log(fp[2] / den[2])
    return log_r, math.sqrt(float(var.sum()))
