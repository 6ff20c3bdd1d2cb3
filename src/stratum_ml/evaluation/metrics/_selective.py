"""Precision@k under selective labels: the honest estimate and the naive one beside it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from stratum_ml.evaluation.metrics._bootstrap import bootstrap_ci
from stratum_ml.evaluation.metrics._checks import (
    _as_binary,
    _as_scores,
    _check_k,
    _check_same_length,
)
from stratum_ml.evaluation.metrics._probability import wilson_interval
from stratum_ml.evaluation.metrics._ranking import _kth_highest, _precision_at_k

#: Population fractions the honest estimator widens its region to, in this order,
#: when too few ``random_sample`` visits fall in the top k.
DEFAULT_WIDEN_TO: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class HonestEstimate:
    """Precision@k of the whole population, estimated from random-sample visits.

    Attributes
    ----------
    estimate : float
        Hit rate of the ``random_sample`` visits inside the region (NaN if none).
    ci_low, ci_high : float
        Confidence interval of the region's hit rate.
    n : int
        Random-sample visits inside the region (the sample size behind the estimate).
    n_positive : int
        Of which found a violation.
    k : int
        The requested cut-off.
    region_k : int
        Population rows in the region actually used: all rows scoring at least
        ``threshold``. Equals ``k`` (up to ties) unless the region was widened.
    population : int
        Number of rows in the scored population.
    threshold : float
        Lowest score inside the region.
    widened : bool
        Whether the region was widened beyond the top ``k``.
    ci_method : str
        ``"wilson"`` or ``"bootstrap"``.
    confidence : float
        Coverage of the interval.
    region : str
        The region and, if widened, why, in one sentence for reports.
    estimable : bool
        Whether ``estimate`` is precision@k itself: the top ``k`` held at least
        ``min_random_visits`` random-sample visits and was not widened. When False,
        ``estimate`` and its interval are those of the wider region (precision@
        ``region_k``) and must never be shown as precision@k: show
        :attr:`precision_at_k_text`, "not estimable" with the bounds below.
    bound_low, bound_high : float
        Worst- and best-case precision@k: the random-sample visits in the top ``k``
        as they are, every other address of the top ``k`` counted as without
        (``bound_low``) or with (``bound_high``) a violation (default: nothing known,
        0 and 1).
    n_in_top_k : int
        Random-sample visits inside the top ``k`` itself.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    n_positive: int
    k: int
    region_k: int
    population: int
    threshold: float
    widened: bool
    ci_method: str
    confidence: float
    region: str
    estimable: bool = True
    bound_low: float = 0.0
    bound_high: float = 1.0
    n_in_top_k: int = -1

    @property
    def precision_at_k(self) -> float:
        """The estimate of precision@k when estimable, else NaN (never the wider region's)."""
        return self.estimate if self.estimable else math.nan

    @property
    def precision_at_k_text(self) -> str:
        """What a report prints on the row of this k."""
        if self.estimable:
            return f"{self.estimate:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"
        return (
            f"not estimable: {max(self.n_in_top_k, 0)} random-sample visits in the top "
            f"{self.k}; bounds [{self.bound_low:.3f}, {self.bound_high:.3f}] (unvisited all "
            "without / all with a violation)"
        )

    @property
    def region_fraction(self) -> float:
        """Share of the population inside the region."""
        return self.region_k / self.population

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable fields (NaN stays NaN)."""
        return {"method": "honest", **asdict(self), "region_fraction": self.region_fraction}


@dataclass(frozen=True)
class NaiveEstimate:
    """Precision@k among visited addresses only; biased by the visit policy.

    Attributes
    ----------
    estimate : float
        Precision of the top ``n`` visited addresses ranked by the model.
    ci_low, ci_high : float
        Wilson interval for sampling noise only; it says nothing about the bias
        from which addresses were visited.
    n : int
        Visits ranked (``min(k, n_visited)``).
    k : int
        The requested cut-off.
    n_visited : int
        All visits with a label.
    confidence : float
        Coverage of the interval.
    region : str
        What was ranked, in one sentence for reports.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    k: int
    n_visited: int
    confidence: float
    region: str

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable fields (NaN stays NaN)."""
        return {"method": "naive", **asdict(self)}


def honest_precision_at_k(
    scores_population: ArrayLike,
    visited_mask_random: ArrayLike,
    y_random: ArrayLike,
    k: int,
    *,
    min_random_visits: int = 30,
    widen_to: Sequence[float] = DEFAULT_WIDEN_TO,
    ci_method: Literal["wilson", "bootstrap"] = "wilson",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> HonestEstimate:
    """Estimate precision@k of the whole population from random-sample visits.

    **Target.** The model scores every address; the municipality would visit the
    ``k`` highest. Precision@k is the share of violations among those ``k``
    addresses -- a property of the population, unknown because most of them
    were never visited.

    **Estimator.** Let ``t`` be the k-th highest population score and the
    *region* the addresses scoring at least ``t``. Among the ``random_sample``
    visits, take those whose address lies in the region; the estimate is their
    share of violations, ``n_positive / n``.

    **Why it is honest.** If the random-sample visits are a uniform random sample
    of the population, those that fall in the region are, given their number
    ``n``, a uniform random sample of the region. Their hit rate is then an
    unbiased estimate of the region's hit rate, which is precision@k. Visits
    chosen by reports, projects or earlier models are *not* used: they are
    concentrated where violations were expected and inflate the number (see
    :func:`naive_precision_at_k`).

    **Widening.** With a 2% random sample the top 100 of 50,000 addresses holds
    about two random visits: too few. When the region holds fewer than
    ``min_random_visits``, it is widened to the top ``f`` of the population for
    the first fraction ``f`` in ``widen_to`` (larger than ``k``) that holds
    enough; if none does, the widest is used. The result then estimates
    precision@``region_k`` instead of precision@k, and says so in ``widened``,
    ``region_k`` and ``region``. For a model whose hit rate falls with rank that
    understates precision@k. The choice of region depends only on *how many*
    random visits fall in each candidate region, never on their labels, so the
    estimate stays unbiased for the region it reports. It is *not* precision@k:
    the result then says ``estimable=False``, and reports print
    :attr:`HonestEstimate.precision_at_k_text` on the row of ``k`` -- "not
    estimable" with worst- and best-case bounds -- never the wider region's number.
    Only a design with known inclusion probabilities inside the top k gives
    precision@k there (:mod:`stratum_ml.evaluation.design`).

    **Interval.** Wilson score interval for a binomial proportion (default), or a
    percentile bootstrap over the visits in the region. Sampling without
    replacement from a finite region makes both slightly conservative.

    **Assumptions.** (1) ``random_sample`` visits are a uniform sample of the
    scored population, drawn independently of outcome and score. (2) A visit's
    label is what a visit at scoring time would have found (outcomes stable over
    the evaluation period; dropping inconclusive visits is harmless only if
    inconclusiveness is unrelated to violation). (3) The scores of visited
    addresses are the ones used to rank the population (same model, features as
    of the same reference date or of the visit date, never after it).

    Parameters
    ----------
    scores_population : array-like of shape (n,)
        Model score of every address in the population; no NaN.
    visited_mask_random : array-like of bool, shape (n,)
        True where the address has a labelled ``random_sample`` visit.
    y_random : array-like
        0/1 outcome of those visits (1 = violation): either of shape (n,),
        aligned with the population (entries outside the mask are ignored and may
        be NaN), or one entry per True in the mask, in population order.
    k : int
        The cut-off, ``1 <= k <= n``.
    min_random_visits : int, default 30
        Fewest random-sample visits a region must hold before it is used.
    widen_to : sequence of float, default DEFAULT_WIDEN_TO
        Population fractions to widen to, tried in increasing order.
    ci_method : {"wilson", "bootstrap"}, default "wilson"
        Interval method.
    confidence : float, default 0.95
        Coverage of the interval.
    n_boot : int, default 1000
        Bootstrap replicates (``ci_method="bootstrap"`` only).
    seed : int, default 0
        Bootstrap seed (``ci_method="bootstrap"`` only).

    Returns
    -------
    HonestEstimate
    """
    s = _as_scores(scores_population, "scores_population")
    mask = np.asarray(visited_mask_random)
    if mask.dtype != bool:
        raise ValueError("visited_mask_random must be a boolean array")
    _check_same_length(scores_population=s, visited_mask_random=mask)
    labels = np.asarray(y_random, dtype=np.float64)
    if labels.shape == s.shape:
        labels = labels[mask]
    elif labels.shape != (int(mask.sum()),):
        raise ValueError(
            f"y_random has {labels.size} entries; expected {s.size} (population-aligned) "
            f"or {int(mask.sum())} (one per random-sample visit)"
        )
    y = _as_binary(labels, "y_random[visited_mask_random]")
    population = s.size
    k = _check_k(k, population)
    if any(not 0.0 < f <= 1.0 for f in widen_to):
        raise ValueError("widen_to fractions must lie in (0, 1]")
    if ci_method not in ("wilson", "bootstrap"):
        raise ValueError(f"ci_method must be 'wilson' or 'bootstrap', got {ci_method!r}")

    visited_scores = s[mask]
    top_threshold = _kth_highest(s, k)
    in_top = visited_scores >= top_threshold
    top_size = int((s >= top_threshold).sum())
    top_hits = int(y[in_top].sum())
    top_n = int(in_top.sum())
    wider = {math.ceil(f * population) for f in widen_to}
    sizes = [k, *sorted(size for size in wider if size > k)]
    for size in sizes:
        threshold = _kth_highest(s, size)
        in_region = visited_scores >= threshold
        n = int(in_region.sum())
        if n >= min_random_visits:
            break
    region_k = int((s >= threshold).sum())
    widened = size > k
    hits = y[in_region]
    n_positive = int(hits.sum())
    estimate = n_positive / n if n else math.nan
    if ci_method == "wilson" or n == 0:
        ci_low, ci_high = wilson_interval(n_positive, n, confidence)
    else:
        boot = bootstrap_ci(np.mean, hits, n_boot=n_boot, seed=seed, alpha=1 - confidence)
        ci_low, ci_high = float(boot.low), float(boot.high)

    share = f"{region_k / population:.2%}"
    region = f"top {region_k} of {population} addresses ({share}), {n} random-sample visits"
    if widened:
        region += (
            f"; widened from the top {k}, which held fewer than {min_random_visits} "
            f"random-sample visits: this estimates precision@{region_k}, not precision@{k}"
        )
    if n < min_random_visits:
        region += f"; fewer than {min_random_visits} random-sample visits even so"
    return HonestEstimate(
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        n=n,
        n_positive=n_positive,
        k=k,
        region_k=region_k,
        population=population,
        threshold=threshold,
        widened=widened,
        ci_method=ci_method,
        confidence=confidence,
        region=region,
        estimable=not widened and n >= min_random_visits,
        bound_low=top_hits / top_size,
        bound_high=(top_size - (top_n - top_hits)) / top_size,
        n_in_top_k=top_n,
    )


def naive_precision_at_k(
    scores_visited: ArrayLike,
    y_visited: ArrayLike,
    k: int,
    *,
    confidence: float = 0.95,
) -> NaiveEstimate:
    """Precision@k ranking only the visited addresses (all visit reasons).

    This is what a model looks like when evaluated on the labels at hand. It is
    biased whenever visits were chosen by earlier policy: visited addresses are
    richer in violations than the population, and the top k of the visits is a
    different set from the top k of the population. Report it beside
    :func:`honest_precision_at_k`, never instead of it.

    Parameters
    ----------
    scores_visited : array-like of shape (m,)
        Model scores of the visited addresses.
    y_visited : array-like of shape (m,)
        Their 0/1 outcomes.
    k : int
        Cut-off; when it exceeds the number of visits, all visits are ranked.
    confidence : float, default 0.95
        Coverage of the (sampling-noise-only) Wilson interval.

    Returns
    -------
    NaiveEstimate
    """
    y = _as_binary(y_visited, "y_visited")
    s = _as_scores(scores_visited, "scores_visited")
    _check_same_length(scores_visited=s, y_visited=y)
    k = _check_k(k, None)
    if y.size == 0:
        raise ValueError("no visits to rank")
    n = min(k, y.size)
    estimate = _precision_at_k(y, s, n)
    ci_low, ci_high = wilson_interval(estimate * n, n, confidence)
    return NaiveEstimate(
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        n=n,
        k=k,
        n_visited=y.size,
        confidence=confidence,
        region=f"top {n} of {y.size} visited addresses (all visit reasons; biased by the "
        "visit policy)",
    )
