"""Visit plans: the top of a run's list, plus an exploration share drawn by a known design.

A run ranks every dwelling. With a capacity of ``N`` visits and an exploration
share ``F`` (default :data:`DEFAULT_EXPLORATION`, the run config's
``exploration_share``), the plan holds

* the top ``N - round(N * F)`` of the list, each with inclusion probability 1
  (the *certainty* stratum, ``pick = "top"``), and
* ``round(N * F)`` *exploration* picks drawn at random without replacement,
  stratified by rank band beyond the top picks: the bands end at ranks 100, 250,
  500 and 1,000, at the capacity and at twice the capacity (those beyond the top
  picks), up to rank ``max(2N, 1000)``; a share :data:`POPULATION_SHARE` of the
  exploration picks is drawn from the rest of the population (a population-wide
  share, so that prevalence and recall are estimable).

With a *challenger* shadow-scored on the run (``stratum run`` scores the registered
``challenger`` beside the champion) and a challenger share ``C`` (the run config's
``challenger_share``, default :data:`DEFAULT_CHALLENGER_SHARE`; 0 without a
challenger), ``round(N * C)`` more picks come out of the top picks and are drawn from
the *challenger stratum*: the dwellings in the challenger's top ``N`` that are not
top picks of the champion (``pick = "challenger"``). Those dwellings leave the rank
bands and the population stratum they would otherwise belong to, so the strata
still partition the population and every dwelling has exactly one inclusion
probability under the whole design: 1 in the top picks, ``n_h / N_h`` of its
stratum elsewhere. The challenger's precision@k (``k <= N``) then rests on the top
picks (counted) and the challenger stratum (drawn), not on a few band visits; see
:func:`plan_strata`.

Within a band of ``N_h`` dwellings from which ``n_h`` are drawn, every dwelling has
inclusion probability ``n_h / N_h``: known, stored with each pick, and the basis
of the design-based estimates (:mod:`stratum_ml.evaluation.design`). The
exploration picks are split over the bands as evenly as the band sizes allow
(equal allocation: the issue's measurement found about equal numbers per band
give about equal precision per k).

The draw is reproducible: ``numpy.random.default_rng(seed)``, bands in rank
order, positions sorted; the seed is stored with the plan (default: derived from
the run id).

Whoever visits cannot tell an exploration pick from a top pick: the visitors'
export (:func:`plan_export` with ``audience="visitor"``) holds no rank, pick or
probability and is in a random order. An analyst may decline a pick only with a
reason from :data:`~stratum_ml.store.tables.DECLINE_REASONS` (and checked free
text); declined and unvisited picks are non-response, which widens the
estimates into bounds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratum_ml.runs.read import RunNotFound
from stratum_ml.store import Store
from stratum_ml.store.free_text import reason_problems
from stratum_ml.store.tables import (
    DECLINE_REASONS,
    PlanDeclineRow,
    RunItemRow,
    RunShadowItemRow,
    ScoringRunRow,
    VisitOutcomeRow,
    VisitPlanItemRow,
    VisitPlanRow,
)

__all__ = [
    "DEFAULT_CHALLENGER_SHARE",
    "DEFAULT_EXPLORATION",
    "POPULATION_SHARE",
    "Explanation",
    "PlanError",
    "PlanNotFound",
    "Stratum",
    "VisitPlan",
    "challenger_of",
    "challenger_ranks_of",
    "create_plan",
    "decline_pick",
    "draw_plan",
    "explain_share",
    "get_plan",
    "plan_export",
    "plan_inclusion_probabilities",
    "plan_strata",
    "planned_run_of",
    "stratum_of_rank",
]

#: z_{0.975}
Z95 = 1.959963984540054
#: the default exploration share of the capacity (the run config's ``exploration_share``)
DEFAULT_EXPLORATION = 0.10
#: the default share of the capacity drawn from the challenger stratum, when a challenger
#: is shadow-scored on the run (the run config's ``challenger_share``)
DEFAULT_CHALLENGER_SHARE = 0.05
#: the share of the exploration picks drawn from the population beyond the bands
POPULATION_SHARE = 0.2
#: rank band ends (besides the capacity and twice it) beyond the top picks
BAND_ENDS = (100, 250, 500, 1000)
#: the plan's bands reach at least this rank
MIN_REACH = 1000
#: the pick kind of a stratum's picks
PICK_OF_KIND = {
    "top": "top",
    "band": "exploration",
    "population": "exploration",
    "challenger": "challenger",
}
#: the columns of the visitors' export (no rank, pick or probability)
VISITOR_COLUMNS = ("run_id", "visit_order", "address_id", "district", "neighbourhood")
#: the columns of the analysts' export
ANALYST_COLUMNS = (
    "run_id",
    "address_id",
    "rank",
    "pick",
    "inclusion_probability",
    "stratum",
    "band",
    "district",
    "neighbourhood",
    "declined",
    "decline_reason",
)


BoolArray = NDArray[np.bool_]


class PlanError(ValueError):
    """A plan or a decline that breaks a rule; nothing was stored."""


class PlanNotFound(LookupError):
    """The run has no visit plan."""


@dataclass(frozen=True)
class Stratum:
    """One stratum of a plan: ranks ``rank_from..rank_to`` (inclusive), ``drawn`` of ``size``.

    Attributes
    ----------
    index : int
        0 for the top picks, then the bands in rank order, then the population
        beyond the bands, then the challenger stratum.
    kind : {"top", "band", "population", "challenger"}
    rank_from, rank_to : int
        The champion's ranks; for the challenger stratum the challenger's
        (``1..capacity``). A band or the population stratum of a plan with a
        challenger stratum holds its ranks less the challenger stratum's dwellings.
    size : int
        Dwellings in the stratum (``N_h``).
    drawn : int
        Dwellings drawn from it (``n_h``); ``size`` for the top picks.
    """

    index: int
    kind: str
    rank_from: int
    rank_to: int
    size: int
    drawn: int

    @property
    def inclusion_probability(self) -> float:
        """``drawn / size``."""
        return self.drawn / self.size

    @property
    def band(self) -> str:
        """The ranks as text, e.g. ``451-500`` (``challenger 1-500`` for the challenger's)."""
        ranks = f"{self.rank_from}-{self.rank_to}"
        return f"challenger {ranks}" if self.kind == "challenger" else ranks

    def to_dict(self) -> dict[str, Any]:
        """Plain fields, with the inclusion probability."""
        return {**asdict(self), "inclusion_probability": self.inclusion_probability}


def _check(population: int, capacity: int, exploration: float, challenger_share: float) -> None:
    if capacity < 1:
        raise PlanError(f"capacity must be at least 1, not {capacity}")
    if capacity > population:
        raise PlanError(f"capacity {capacity} exceeds the {population} scored dwellings")
    if not 0.0 <= exploration <= 1.0 or math.isnan(exploration):
        raise PlanError(f"exploration share must lie in [0, 1], not {exploration}")
    if not 0.0 <= challenger_share <= 1.0 or math.isnan(challenger_share):
        raise PlanError(f"challenger share must lie in [0, 1], not {challenger_share}")
    if int(round(capacity * exploration)) + int(round(capacity * challenger_share)) > capacity:
        raise PlanError(
            f"exploration share {exploration:g} and challenger share {challenger_share:g} "
            "together take more than the capacity"
        )


def _challenger_members(
    population: int, capacity: int, n_top: int, challenger_ranks: ArrayLike | None
) -> BoolArray:
    """By champion rank: True where the dwelling is in the challenger stratum.

    ``challenger_ranks[r - 1]`` is the challenger's rank of the dwelling at the
    champion's rank ``r``; the stratum is the challenger's top ``capacity`` less the
    champion's top ``n_top``.
    """
    if challenger_ranks is None:
        raise PlanError("a challenger share needs the challenger's ranks (a shadow-scored run)")
    c = np.asarray(challenger_ranks, dtype=np.int64)
    if c.shape != (population,) or not np.array_equal(np.sort(c), np.arange(1, population + 1)):
        raise PlanError(
            f"the challenger's ranks must rank the run's {population} dwellings 1..{population}"
        )
    return np.asarray((c <= capacity) & (np.arange(1, population + 1) > n_top), dtype=bool)


def plan_strata(
    population: int,
    capacity: int,
    exploration: float = DEFAULT_EXPLORATION,
    *,
    population_share: float = POPULATION_SHARE,
    challenger_share: float = 0.0,
    challenger_ranks: ArrayLike | None = None,
) -> tuple[Stratum, ...]:
    """The strata of a plan and how many are drawn from each.

    Parameters
    ----------
    population : int
        Dwellings the run ranked.
    capacity : int
        Visits the plan proposes (``N``).
    exploration : float, default DEFAULT_EXPLORATION
        Share of the capacity drawn at random (``F``).
    population_share : float, default POPULATION_SHARE
        Share of the exploration picks drawn beyond the bands.
    challenger_share : float, default 0
        Share of the capacity drawn from the challenger stratum (``C``): the
        challenger's top ``N`` less the champion's top picks.
    challenger_ranks : array-like of int, shape (population,), optional
        Needed when ``round(N * C) > 0``: the challenger's rank of the dwelling at
        each champion rank (``challenger_ranks[r - 1]`` for rank ``r``).

    Returns
    -------
    tuple of Stratum
        The top picks first (omitted when ``N * (1 - F - C)`` rounds to 0), then the
        bands and the population stratum that hold at least one dwelling, then the
        challenger stratum (when ``N * C`` rounds to at least 1); the ``drawn`` add
        up to ``capacity`` and the ``size`` to ``population``.

    Notes
    -----
    The challenger stratum always holds enough dwellings: the challenger's top ``N``
    has ``N`` dwellings, at most ``N - round(N * (F + C))`` of which are top picks, so
    at least ``round(N * C)`` are left to draw from.

    Examples
    --------
    >>> [(s.band, s.drawn) for s in plan_strata(5000, 500, 0.1)]
    [('1-450', 450), ('451-500', 20), ('501-1000', 20), ('1001-5000', 10)]
    >>> challenger = np.r_[np.arange(401, 901), np.arange(1, 401), np.arange(901, 5001)]
    >>> [(s.band, s.size, s.drawn) for s in plan_strata(
    ...     5000, 500, 0.1, challenger_share=0.1, challenger_ranks=challenger)]
    [('1-400', 400, 400), ('401-500', 100, 20), ('501-1000', 100, 20), ('1001-5000', 4000, 10), \
('challenger 1-500', 400, 50)]
    """
    _check(population, capacity, exploration, challenger_share)
    n_explore = int(round(capacity * exploration))
    n_challenger = int(round(capacity * challenger_share))
    n_top = capacity - n_explore - n_challenger
    member = (
        _challenger_members(population, capacity, n_top, challenger_ranks)
        if n_challenger
        else np.zeros(population, dtype=bool)
    )
    # dwellings outside the challenger stratum up to each rank
    outside = np.concatenate([[0], np.cumsum(~member)])

    def size_of(a: int, b: int) -> int:
        return int(outside[b] - outside[a - 1])

    reach = min(population, max(2 * capacity, MIN_REACH))
    ends = sorted({e for e in (*BAND_ENDS, capacity, 2 * capacity) if n_top < e < reach})
    bounds = [n_top, *ends, reach]
    bands = [
        (a + 1, b)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b > a and size_of(a + 1, b) > 0
    ]
    rest = (reach + 1, population) if population > reach else None
    rest_size = size_of(*rest) if rest is not None else 0
    if rest_size == 0:
        rest = None
    n_pop = 0
    if rest is not None and n_explore:
        n_pop = min(rest_size, max(1, int(round(n_explore * population_share))))
        if not bands:
            n_pop = min(rest_size, n_explore)
    drawn = _allocate(n_explore - n_pop, [size_of(a, b) for a, b in bands])
    left = n_explore - n_pop - sum(drawn)
    if left and rest is not None:
        n_pop = min(rest_size, n_pop + left)
    strata: list[Stratum] = []
    if n_top:
        strata.append(Stratum(0, "top", 1, n_top, n_top, n_top))
    # a band nothing is drawn from is still a stratum: the estimates must see it
    for index, ((a, b), n) in enumerate(zip(bands, drawn, strict=True), 1):
        strata.append(Stratum(index, "band", a, b, size_of(a, b), n))
    if rest is not None:
        strata.append(Stratum(len(bands) + 1, "population", *rest, rest_size, n_pop))
    if n_challenger:
        index = len(bands) + (2 if rest is not None else 1)
        size = int(member.sum())
        strata.append(Stratum(index, "challenger", 1, capacity, size, n_challenger))
    return tuple(strata)


def _allocate(n: int, sizes: list[int]) -> list[int]:
    """``n`` draws spread as evenly as possible over strata, none above its size."""
    out = [0] * len(sizes)
    while n > 0:
        open_ = [i for i, size in enumerate(sizes) if out[i] < size]
        if not open_:
            break
        share, extra = divmod(n, len(open_))
        for position, i in enumerate(open_):
            give = min(sizes[i] - out[i], share + (1 if position < extra else 0))
            out[i] += give
            n -= give
    return out


def stratum_of_rank(
    ranks: ArrayLike, strata: tuple[Stratum, ...], challenger_ranks: ArrayLike | None = None
) -> NDArray[np.int64]:
    """The stratum index of every dwelling, from its rank (ranks start at 1).

    Parameters
    ----------
    ranks : array-like of int
        The champion's rank of each dwelling (the run's list).
    strata : tuple of Stratum
        The plan's strata.
    challenger_ranks : array-like of int, optional
        The challenger's rank of the same dwellings; needed when the plan has a
        challenger stratum (a dwelling in the challenger's top ``N`` that is not a
        top pick belongs to it, whatever its champion rank).
    """
    r = np.asarray(ranks)
    out = np.full(len(r), -1, dtype=np.int64)
    member = np.zeros(len(r), dtype=bool)
    challenger = [s for s in strata if s.kind == "challenger"]
    if challenger:
        if challenger_ranks is None:
            raise PlanError(
                "the plan has a challenger stratum: the challenger's ranks (the run's shadow) "
                "are needed to place every dwelling"
            )
        n_top = max((s.rank_to for s in strata if s.kind == "top"), default=0)
        member = (np.asarray(challenger_ranks) <= challenger[0].rank_to) & (r > n_top)
        out[member] = challenger[0].index
    for s in strata:
        if s.kind != "challenger":
            out[(r >= s.rank_from) & (r <= s.rank_to) & ~member] = s.index
    if (out < 0).any():
        raise PlanError("a rank lies outside every stratum of the plan")
    return out


def draw_plan(
    population: int,
    capacity: int,
    exploration: float = DEFAULT_EXPLORATION,
    *,
    seed: int,
    population_share: float = POPULATION_SHARE,
    challenger_share: float = 0.0,
    challenger_ranks: ArrayLike | None = None,
) -> pd.DataFrame:
    """Draw a plan over ranks ``1..population`` (numpy only, reproducible).

    ``challenger_share`` and ``challenger_ranks`` as in :func:`plan_strata`. The
    strata are drawn in index order from one generator, so a plan without a
    challenger stratum is drawn as before there was one.

    Returns
    -------
    pandas.DataFrame
        One row per pick, by rank: ``rank``, ``stratum``, ``pick`` (``top``,
        ``exploration`` or ``challenger``) and ``inclusion_probability``.

    Examples
    --------
    >>> plan = draw_plan(2000, 100, 0.1, seed=1)
    >>> len(plan), plan["pick"].value_counts().to_dict()
    (100, {'top': 90, 'exploration': 10})
    >>> plan.equals(draw_plan(2000, 100, 0.1, seed=1))
    True
    """
    strata = plan_strata(
        population,
        capacity,
        exploration,
        population_share=population_share,
        challenger_share=challenger_share,
        challenger_ranks=challenger_ranks,
    )
    every = np.arange(1, population + 1)
    with_challenger = strata[-1].kind == "challenger"
    where = stratum_of_rank(every, strata, challenger_ranks if with_challenger else None)
    rng = np.random.default_rng(seed)
    parts = []
    for s in strata:
        if s.kind == "top":
            ranks = np.arange(1, s.size + 1)
        else:
            members = every[where == s.index]
            ranks = members[np.sort(rng.choice(s.size, size=s.drawn, replace=False))]
        parts.append(
            pd.DataFrame(
                {
                    "rank": ranks.astype(np.int64),
                    "stratum": s.index,
                    "pick": PICK_OF_KIND[s.kind],
                    "inclusion_probability": s.inclusion_probability,
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values("rank", ignore_index=True)


def seed_of(run_id: str) -> int:
    """The default seed of a run's plan: 31 bits of a sha256 of the run id."""
    return int(hashlib.sha256(f"plan\x1f{run_id}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


@dataclass(frozen=True)
class VisitPlan:
    """A stored plan.

    Attributes
    ----------
    run_id : str
    as_of : datetime.date
        The run's scoring date.
    capacity, n_top, n_exploration, seed : int
    exploration_share, population_share : float
    strata : tuple of Stratum
    challenger_share : float
        Share of the capacity drawn from the challenger stratum (0: none).
    n_challenger : int
        Picks of the challenger stratum.
    challenger : str or None
        ``model_name vN`` of the shadow-scored challenger whose top picks the
        challenger stratum holds; None without one.
    items : pandas.DataFrame
        One row per pick: ``address_id, rank, stratum, pick, inclusion_probability,
        district, neighbourhood, declined, decline_reason``, by rank.
    created_at : datetime.datetime
    created_by : str
    stored_now : bool
        False when the plan was stored before and returned as it is.
    """

    run_id: str
    as_of: dt.date
    capacity: int
    exploration_share: float
    population_share: float
    n_top: int
    n_exploration: int
    seed: int
    strata: tuple[Stratum, ...]
    items: pd.DataFrame
    created_at: dt.datetime
    created_by: str
    challenger_share: float = 0.0
    n_challenger: int = 0
    challenger: str | None = None
    stored_now: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The plan without its items, JSON-serialisable."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "capacity": self.capacity,
            "exploration_share": self.exploration_share,
            "population_share": self.population_share,
            "n_top": self.n_top,
            "n_exploration": self.n_exploration,
            "challenger_share": self.challenger_share,
            "n_challenger": self.n_challenger,
            "challenger": self.challenger,
            "seed": self.seed,
            "strata": [s.to_dict() for s in self.strata],
            "n_declined": int(self.items["declined"].sum()),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "stored_now": self.stored_now,
        }


def create_plan(
    store: Store,
    run_id: str,
    capacity: int,
    exploration: float = DEFAULT_EXPLORATION,
    *,
    created_by: str,
    seed: int | None = None,
    population_share: float = POPULATION_SHARE,
    challenger_share: float = 0.0,
) -> VisitPlan:
    """Draw a run's visit plan and store it, in one transaction.

    A run has at most one plan: asked again with the same capacity and shares (and
    seed, if given), the stored plan is returned; with others, it is refused.

    Parameters
    ----------
    store : Store
    run_id : str
        A stored run.
    capacity : int
        Visits to propose, at most the run's scored dwellings.
    exploration : float, default DEFAULT_EXPLORATION
        Share of the capacity drawn at random.
    created_by : str
        Who asked (a user name or key id).
    seed : int, optional
        The draw's seed; default :func:`seed_of` the run id.
    population_share : float, default POPULATION_SHARE
    challenger_share : float, default 0
        Share of the capacity drawn from the challenger stratum (the challenger's top
        ``capacity`` less the champion's top picks); needs a run with a shadow
        (``run_shadow_items``), whose ranks are read from the store.

    Returns
    -------
    VisitPlan

    Raises
    ------
    RunNotFound
        When no run has this id.
    PlanError
        When the capacity or a share is out of range, a challenger share is asked of a
        run without a shadow, or the run already has another plan.
    """
    seed = seed_of(run_id) if seed is None else int(seed)
    try:
        existing = get_plan(store, run_id)
    except PlanNotFound:
        existing = None
    if existing is not None:
        stored = (
            existing.capacity,
            existing.exploration_share,
            existing.challenger_share,
            existing.seed,
        )
        if stored != (capacity, exploration, challenger_share, seed):
            raise PlanError(
                f"run {run_id} already has a visit plan (capacity {existing.capacity}, "
                f"exploration {existing.exploration_share:g}, challenger "
                f"{existing.challenger_share:g}, seed {existing.seed}); a plan is never redrawn"
            )
        return existing
    with store.transaction() as session:
        run = session.scalar(select(ScoringRunRow).where(ScoringRunRow.run_id == run_id))
        if run is None:
            raise RunNotFound(f"no scoring run {run_id}")
        items = pd.DataFrame(
            session.execute(
                select(RunItemRow.address_id, RunItemRow.rank).where(RunItemRow.run_id == run_id)
            ).all(),
            columns=["address_id", "rank"],
        )
        items = items.sort_values("rank", ignore_index=True)
        challenger_ranks = None
        if int(round(capacity * challenger_share)) > 0:
            challenger_ranks = _shadow_ranks(session, run_id, items["address_id"])
        options: dict[str, Any] = {
            "population_share": population_share,
            "challenger_share": challenger_share,
            "challenger_ranks": challenger_ranks,
        }
        strata = plan_strata(len(items), capacity, exploration, **options)
        drawn = draw_plan(len(items), capacity, exploration, seed=seed, **options)
        picks = drawn.merge(items, on="rank", how="left", validate="one_to_one")
        if picks["address_id"].isna().any():  # pragma: no cover - ranks are 1..n
            raise PlanError(f"run {run_id} has gaps in its ranks")
        session.add(
            VisitPlanRow(
                run_id=run_id,
                capacity=capacity,
                exploration_share=float(exploration),
                population_share=float(population_share),
                n_top=int((picks["pick"] == "top").sum()),
                n_exploration=int((picks["pick"] == "exploration").sum()),
                challenger_share=float(challenger_share),
                n_challenger=int((picks["pick"] == "challenger").sum()),
                seed=seed,
                strata=json.dumps([asdict(s) for s in strata]),
                created_at=dt.datetime.now(dt.UTC),
                created_by=created_by,
            )
        )
        session.flush()
        session.add_all(
            VisitPlanItemRow(
                run_id=run_id,
                address_id=str(address),
                rank=int(rank),
                stratum=int(stratum),
                pick=str(pick),
                inclusion_probability=float(probability),
            )
            for address, rank, stratum, pick, probability in zip(
                picks["address_id"].tolist(),
                picks["rank"].tolist(),
                picks["stratum"].tolist(),
                picks["pick"].tolist(),
                picks["inclusion_probability"].tolist(),
                strict=True,
            )
        )
    plan = get_plan(store, run_id)
    return VisitPlan(**{**plan.__dict__, "stored_now": True})


def _shadow_ranks(session: Session, run_id: str, addresses: pd.Series) -> NDArray[np.int64]:
    """The shadow's rank of each of ``addresses`` (the run's, in the run's rank order)."""
    rows = session.execute(
        select(RunShadowItemRow.address_id, RunShadowItemRow.rank).where(
            RunShadowItemRow.run_id == run_id
        )
    ).all()
    if not rows:
        raise PlanError(
            f"run {run_id} has no shadow-scored challenger: a challenger share needs one "
            "(register a challenger, then `stratum run`; or leave the challenger share at 0)"
        )
    shadow = pd.Series([r[1] for r in rows], index=[str(r[0]) for r in rows], dtype="int64")
    ranks = shadow.reindex(addresses.astype(str).to_numpy())
    if ranks.isna().any():
        raise PlanError(f"the shadow of run {run_id} did not rank every dwelling of the run")
    return np.asarray(ranks.to_numpy(dtype=np.int64), dtype=np.int64)


def challenger_ranks_of(store: Store, run_id: str) -> NDArray[np.int64] | None:
    """The shadow's rank of the dwelling at each of the run's ranks; None without a shadow."""
    with store.transaction() as session:
        items = pd.DataFrame(
            session.execute(
                select(RunItemRow.address_id, RunItemRow.rank)
                .where(RunItemRow.run_id == run_id)
                .order_by(RunItemRow.rank)
            ).all(),
            columns=["address_id", "rank"],
        )
        try:
            return _shadow_ranks(session, run_id, items["address_id"])
        except PlanError:
            return None


def challenger_of(store: Store, run_id: str) -> tuple[str, pd.Series] | None:
    """The shadow (challenger) of a run: ``model_name vN`` and its rank by address id.

    None when the run has no shadow.
    """
    with store.transaction() as session:
        rows = session.execute(
            select(
                RunShadowItemRow.address_id,
                RunShadowItemRow.rank,
                RunShadowItemRow.model_name,
                RunShadowItemRow.model_version,
            ).where(RunShadowItemRow.run_id == run_id)
        ).all()
    if not rows:
        return None
    label = f"{rows[0][2]} v{rows[0][3]}"
    return label, pd.Series([r[1] for r in rows], index=[r[0] for r in rows], dtype="int64")


def get_plan(store: Store, run_id: str) -> VisitPlan:
    """The stored plan of a run.

    Raises
    ------
    PlanNotFound
        When the run has no plan (or does not exist).
    """
    with store.transaction() as session:
        row = session.scalar(select(VisitPlanRow).where(VisitPlanRow.run_id == run_id))
        if row is None:
            raise PlanNotFound(
                f"run {run_id} has no visit plan: `stratum run ... --capacity N` draws one"
            )
        as_of = session.scalar(select(ScoringRunRow.as_of).where(ScoringRunRow.run_id == run_id))
        picks = session.execute(
            select(
                VisitPlanItemRow.address_id,
                VisitPlanItemRow.rank,
                VisitPlanItemRow.stratum,
                VisitPlanItemRow.pick,
                VisitPlanItemRow.inclusion_probability,
                RunItemRow.district,
                RunItemRow.neighbourhood,
            )
            .join(
                RunItemRow,
                (RunItemRow.run_id == VisitPlanItemRow.run_id)
                & (RunItemRow.address_id == VisitPlanItemRow.address_id),
            )
            .where(VisitPlanItemRow.run_id == run_id)
            .order_by(VisitPlanItemRow.rank)
        ).all()
        shadow = session.execute(
            select(RunShadowItemRow.model_name, RunShadowItemRow.model_version)
            .where(RunShadowItemRow.run_id == run_id)
            .limit(1)
        ).first()
        shadow_label = None if shadow is None else f"{shadow[0]} v{shadow[1]}"
        declines = dict(
            session.execute(
                select(PlanDeclineRow.address_id, PlanDeclineRow.reason).where(
                    PlanDeclineRow.run_id == run_id
                )
            ).all()
        )
    items = pd.DataFrame(
        picks,
        columns=[
            "address_id",
            "rank",
            "stratum",
            "pick",
            "inclusion_probability",
            "district",
            "neighbourhood",
        ],
    )
    strata = tuple(Stratum(**s) for s in json.loads(row.strata))
    items["declined"] = items["address_id"].isin(list(declines))
    items["decline_reason"] = items["address_id"].map(declines)
    assert as_of is not None
    return VisitPlan(
        run_id=row.run_id,
        as_of=as_of,
        capacity=row.capacity,
        exploration_share=row.exploration_share,
        population_share=row.population_share,
        n_top=row.n_top,
        n_exploration=row.n_exploration,
        seed=row.seed,
        strata=strata,
        items=items,
        created_at=row.created_at,
        created_by=row.created_by,
        challenger_share=row.challenger_share,
        n_challenger=row.n_challenger,
        challenger=shadow_label if any(s.kind == "challenger" for s in strata) else None,
    )


def plan_inclusion_probabilities(store: Store) -> pd.Series:
    """The inclusion probability of every stored visit outcome that answers a plan's pick.

    Returns
    -------
    pandas.Series
        By ``inspection_id``: the probability with which the plan of the outcome's
        ``run_id`` drew its address (float); outcomes outside a plan are absent.
    """
    with store.transaction() as session:
        rows = session.execute(
            select(VisitOutcomeRow.inspection_id, VisitPlanItemRow.inclusion_probability).join(
                VisitPlanItemRow,
                (VisitPlanItemRow.run_id == VisitOutcomeRow.run_id)
                & (VisitPlanItemRow.address_id == VisitOutcomeRow.address_id),
            )
        ).all()
    return pd.Series(
        [float(r[1]) for r in rows],
        index=pd.Index([str(r[0]) for r in rows], name="inspection_id"),
        dtype="float64",
        name="inclusion_probability",
    )


def planned_run_of(store: Store, address_id: str, visited_on: dt.date) -> str | None:
    """The run whose visit plan a visit of ``address_id`` on ``visited_on`` answers, if any.

    The latest run dated on or before the visit whose plan holds the address (a pick
    that was not declined); None when no plan holds it, so the visit is stored as
    one outside the design. The web app's outcome form uses this: the case handler
    came from the list, and the visit belongs to the plan that put the address there.
    """
    with store.transaction() as session:
        found = session.execute(
            select(VisitPlanItemRow.run_id)
            .join(ScoringRunRow, ScoringRunRow.run_id == VisitPlanItemRow.run_id)
            .where(VisitPlanItemRow.address_id == address_id, ScoringRunRow.as_of <= visited_on)
            .order_by(ScoringRunRow.as_of.desc(), ScoringRunRow.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        if found is None:
            return None
        declined = session.execute(
            select(PlanDeclineRow.seq).where(
                PlanDeclineRow.run_id == found, PlanDeclineRow.address_id == address_id
            )
        ).first()
    return None if declined is not None else str(found)


def plan_export(
    plan: VisitPlan, audience: Literal["visitor", "analyst"] = "visitor"
) -> pd.DataFrame:
    """The plan as a table for those who visit, or for the analyst.

    Parameters
    ----------
    plan : VisitPlan
    audience : {"visitor", "analyst"}, default "visitor"
        ``visitor``: ``run_id, visit_order, address_id, district, neighbourhood``, in
        a random order (seeded by the plan's seed): nothing tells an exploration
        pick from a top pick, and declined picks are left out. ``analyst``: every
        pick by rank with ``rank, pick, inclusion_probability, stratum, band`` and
        whether it was declined.

    Returns
    -------
    pandas.DataFrame
    """
    items = plan.items.copy()
    items.insert(0, "run_id", plan.run_id)
    if audience == "analyst":
        bands = {s.index: s.band for s in plan.strata}
        items["band"] = items["stratum"].map(bands)
        return items[list(ANALYST_COLUMNS)].reset_index(drop=True)
    if audience != "visitor":
        raise ValueError(f"audience must be 'visitor' or 'analyst', not {audience!r}")
    visits = items.loc[~items["declined"]]
    order = np.random.default_rng(plan.seed + 1).permutation(len(visits))
    shuffled = visits.iloc[order].reset_index(drop=True)
    shuffled["visit_order"] = np.arange(1, len(shuffled) + 1)
    return shuffled[list(VISITOR_COLUMNS)]


def decline_pick(
    store: Store,
    run_id: str,
    address_id: str,
    reason: str,
    note: str | None,
    *,
    declined_by: str,
) -> None:
    """Record that an analyst declined a pick of a plan; it then counts as non-response.

    Parameters
    ----------
    store : Store
    run_id, address_id : str
        The pick.
    reason : str
        One of :data:`~stratum_ml.store.tables.DECLINE_REASONS`.
    note : str or None
        Free text, required for ``other``; checked like every free text of the store
        (:func:`~stratum_ml.store.free_text.reason_problems`: no person data).
    declined_by : str

    Raises
    ------
    PlanError
        When the reason or note is refused, the address is not a pick of the plan, or
        the pick was declined before; nothing is stored.
    PlanNotFound
        When the run has no plan.
    """
    problems = []
    if reason not in DECLINE_REASONS:
        problems.append(f"reason must be one of {', '.join(DECLINE_REASONS)}, not {reason!r}")
    text = None if note is None or not note.strip() else note.strip()
    if reason == "other" and text is None:
        problems.append("reason 'other' needs a note saying why")
    if text is not None:
        problems.extend(f"note: {p}" for p in reason_problems(text))
    if problems:
        raise PlanError("the decline was not stored: " + "; ".join(problems))
    plan = get_plan(store, run_id)
    if address_id not in set(plan.items["address_id"]):
        raise PlanError(f"address {address_id} is not a pick of the plan of run {run_id}")
    try:
        with store.transaction() as session:
            session.add(
                PlanDeclineRow(
                    run_id=run_id,
                    address_id=address_id,
                    reason=reason,
                    note=text,
                    declined_at=dt.datetime.now(dt.UTC),
                    declined_by=declined_by,
                )
            )
    except IntegrityError:
        raise PlanError(
            f"address {address_id} was declined before in the plan of run {run_id}"
        ) from None


@dataclass(frozen=True)
class Explanation:
    """What an exploration share (and a challenger share) buys, per year of plans.

    Attributes
    ----------
    strata : tuple of Stratum
        One plan's strata.
    runs_per_year : int
    bands : pandas.DataFrame
        Per stratum: ``band, kind, size, per_run, per_year, inclusion_probability``.
    precision : pandas.DataFrame
        Per k: ``visits_per_run`` and ``visits_per_year`` (expected exploration visits
        in the top k), ``half_width_run`` (the worst-case 95% +/- on precision@k from
        one plan) and ``half_width_year`` (from a year of plans, averaged).
    challenger : pandas.DataFrame
        The same columns for the challenger's precision@k (``k <= capacity``), in the
        scenario of :func:`explain_share`; empty without a challenger share.
    challenger_scenario : str
        Which challenger ranking ``challenger`` assumes ("" without one).
    """

    strata: tuple[Stratum, ...]
    runs_per_year: int
    bands: pd.DataFrame
    precision: pd.DataFrame
    challenger: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    challenger_scenario: str = ""


#: the columns of :attr:`Explanation.precision` and :attr:`Explanation.challenger`
EXPLAIN_COLUMNS = ["k", "visits_per_run", "visits_per_year", "half_width_run", "half_width_year"]


def _disjoint_challenger(population: int, capacity: int) -> NDArray[np.int64]:
    """A challenger ranking whose top ``capacity`` are the champion's last ranks."""
    last = max(population - capacity, 0)
    c = np.empty(population, dtype=np.int64)
    c[last:] = np.arange(1, population - last + 1)
    c[:last] = np.arange(population - last + 1, population + 1)
    return c


def _half_widths(
    strata: tuple[Stratum, ...],
    where: NDArray[np.int64],
    in_k: BoolArray,
    k: int,
    runs_per_year: int,
) -> dict[str, float]:
    """Worst-case +/- on the precision of the selection ``in_k`` (``k`` dwellings)."""
    var = 0.0
    visits = 0.0
    feasible = True
    for s in strata:
        if s.kind == "top":
            continue
        inside = int((in_k & (where == s.index)).sum())
        if inside == 0:
            continue
        if s.drawn == 0:
            feasible = False
            continue
        share = inside / s.size
        visits += s.drawn * share
        # z = y * [in the selection] in the stratum, y a violation with probability 0.5
        s2 = 0.5 * share * (1.0 - 0.5 * share)
        var += s.size**2 * (1.0 - s.drawn / s.size) * s2 / s.drawn
    half = Z95 * math.sqrt(var) / k if feasible else math.nan
    return {
        "k": k,
        "visits_per_run": visits,
        "visits_per_year": visits * runs_per_year,
        "half_width_run": half,
        "half_width_year": half / math.sqrt(runs_per_year),
    }


def explain_share(
    population: int,
    capacity: int,
    exploration: float = DEFAULT_EXPLORATION,
    *,
    runs_per_year: int = 12,
    ks: tuple[int, ...] = (100, 250, 500),
    population_share: float = POPULATION_SHARE,
    challenger_share: float = 0.0,
    challenger_ranks: ArrayLike | None = None,
) -> Explanation:
    """Expected exploration visits per rank band per year and the +/- they give.

    The +/- on precision@k is ``1.96 * SE / k`` with the stratified variance of the
    unknown part of the top k (the strata beyond the top picks, without
    replacement), at the worst case: every dwelling of a stratum a violation with
    probability 0.5. Inside the top picks precision@k is counted, not estimated:
    +/- 0. The yearly figure averages ``runs_per_year`` independent monthly
    estimates of a precision that is assumed stable over the year
    (``half_width_run / sqrt(runs_per_year)``).

    With a challenger share, the same is given for the challenger's precision@k
    (``k`` in ``ks`` up to the capacity, and the capacity): from the challenger's
    ranks if given (``challenger_ranks`` as in :func:`plan_strata`), else in the
    scenario where the two models disagree entirely (the challenger's top ``N`` are
    the champion's last ranks): the challenger stratum then is the whole of the
    challenger's top ``N``, the widest it can be. The more the two lists agree, the
    more of the challenger's top k is counted among the top picks.

    Examples
    --------
    >>> e = explain_share(60_000, 500, 0.1)
    >>> e.precision.set_index("k")["half_width_run"].round(3).to_dict()
    {100: 0.0, 250: 0.0, 500: 0.017}
    >>> e = explain_share(60_000, 500, 0.1, challenger_share=0.1)
    >>> e.challenger.set_index("k")["visits_per_run"].round(1).to_dict()
    {100: 10.0, 250: 25.0, 500: 50.0}
    """
    scenario = ""
    if int(round(capacity * challenger_share)) > 0 and challenger_ranks is None:
        challenger_ranks = _disjoint_challenger(population, capacity)
        scenario = f"the challenger's top {capacity} share nothing with the champion's list"
    elif challenger_ranks is not None:
        scenario = "the challenger's ranks of the run"
    strata = plan_strata(
        population,
        capacity,
        exploration,
        population_share=population_share,
        challenger_share=challenger_share,
        challenger_ranks=challenger_ranks,
    )
    with_challenger = strata[-1].kind == "challenger"
    every = np.arange(1, population + 1)
    where = stratum_of_rank(every, strata, challenger_ranks if with_challenger else None)
    bands = pd.DataFrame(
        [
            {
                "band": s.band,
                "kind": s.kind,
                "size": s.size,
                "per_run": s.drawn,
                "per_year": s.drawn * runs_per_year,
                "inclusion_probability": s.inclusion_probability,
            }
            for s in strata
        ]
    )
    rows = [
        _half_widths(strata, where, every <= k, k, runs_per_year) for k in ks if k <= population
    ]
    challenger_rows = []
    if with_challenger:
        c = np.asarray(challenger_ranks)
        for k in sorted({*(k for k in ks if k <= capacity), capacity}):
            challenger_rows.append(_half_widths(strata, where, c <= k, k, runs_per_year))
    return Explanation(
        strata=strata,
        runs_per_year=runs_per_year,
        bands=bands,
        precision=pd.DataFrame(rows, columns=EXPLAIN_COLUMNS),
        challenger=pd.DataFrame(challenger_rows, columns=EXPLAIN_COLUMNS),
        challenger_scenario=scenario,
    )
