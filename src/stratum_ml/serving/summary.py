"""Counts of the priority list per area, with small counts suppressed.

An analyst sees how the top ``k`` of the ranking spreads over districts and
neighbourhoods: per area the number of dwellings in the top ``k``, the number
of dwellings scored and their mean probability. No count may single out a
household, so :func:`summarise` withholds counts in two steps:

1. *Primary suppression*: a count below the minimum (``STRATUM_MIN_CELL_COUNT``,
   default 10) is withheld, zero included. The top-``k`` count is also
   withheld when fewer than the minimum of the area's dwellings are *not* in
   the top ``k`` (otherwise "12 of 12 dwellings" would name every household as
   high risk). The mean probability is withheld with the number scored.
2. *Secondary suppression*: counts add up (the areas of a level add up to
   the published total; when both levels are shown, a district's count is the
   sum of its neighbourhoods'), so one withheld count could be recovered by
   subtraction. In every such sum where counts are withheld, further counts
   (the smallest published ones) are withheld until at least two are and
   together they reach the minimum, or none is left to withhold.

Withheld values are ``None``; a row with any withheld value has
``suppressed=True``. Only areas with at least one scored dwelling are listed.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import pandas as pd

Level = Literal["district", "neighbourhood"]
#: the area levels, coarse to fine (columns of :attr:`Scorer.table`)
LEVELS: tuple[Level, ...] = ("district", "neighbourhood")
#: the default smallest count that is shown
DEFAULT_MIN_CELL_COUNT = 10

Cell = tuple[Level, str | None]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class AreaSummary:
    """One area's row of the summary; ``None`` where a value is withheld."""

    level: Level
    code: str | None
    n_scored: int | None
    n_in_top_k: int | None
    mean_probability: float | None
    suppressed: bool


def _code(value: object) -> str | None:
    return None if pd.isna(value) else str(value)  # type: ignore[call-overload]


def secondary_suppression(
    values: Mapping[K, int],
    withheld: Iterable[K],
    sums: Sequence[Sequence[K]],
    min_count: int,
) -> set[K]:
    """Withheld cells, grown until no withheld cell follows from a published sum.

    Parameters
    ----------
    values
        The true count of every cell.
    withheld
        The cells withheld to begin with (primary suppression).
    sums
        Groups of cells tied by one linear relation whose other terms are
        published (the cells of a level and their published total; a district
        and its neighbourhoods).
    min_count
        The smallest count that may be shown.

    Returns
    -------
    set
        The cells to withhold: in every group, none or at least two, together at
        least ``min_count`` unless the whole group is withheld.

    Examples
    --------
    >>> sorted(secondary_suppression({"a": 3, "b": 40, "c": 12}, {"a"}, [["a", "b", "c"]], 10))
    ['a', 'c']
    """
    hidden = set(withheld)
    changed = True
    while changed:
        changed = False
        for group in sums:
            inside = [c for c in group if c in hidden]
            if not inside:
                continue
            if len(inside) >= 2 and sum(values[c] for c in inside) >= min_count:
                continue
            shown = [c for c in group if c not in hidden]
            if not shown:
                continue
            hidden.add(min(shown, key=lambda c: (values[c], str(c))))
            changed = True
    return hidden


def summarise(
    table: pd.DataFrame, k: int, *, levels: Sequence[Level] = LEVELS, min_count: int
) -> list[AreaSummary]:
    """Top-``k`` counts, dwellings scored and mean probability per area, suppressed.

    Parameters
    ----------
    table
        One row per scored dwelling with ``rank`` (1 = highest risk),
        ``probability`` and one column per level (:attr:`Scorer.table`).
    k
        The length of the priority list counted.
    levels
        The area levels to summarise, each a column of ``table``.
    min_count
        The smallest count shown (see the module docstring).

    Returns
    -------
    list of AreaSummary
        Per level (in the order given) one row per area, ordered by code.
    """
    top = table["rank"] <= k
    scored: dict[Cell, int] = {}
    in_top: dict[Cell, int] = {}
    mean: dict[Cell, float] = {}
    cells: list[Cell] = []
    for level in levels:
        frame = pd.DataFrame(
            {"code": table[level].to_numpy(), "top": top.to_numpy(), "p": table["probability"]}
        )
        grouped = frame.groupby("code", dropna=False, sort=True)
        stats = grouped.agg(n=("p", "size"), top=("top", "sum"), mean=("p", "mean"))
        for code, row in stats.iterrows():
            cell = (level, _code(code))
            scored[cell] = int(row["n"])
            in_top[cell] = int(row["top"])
            mean[cell] = float(row["mean"])
            cells.append(cell)

    sums: list[list[Cell]] = [[c for c in cells if c[0] == level] for level in levels]
    if "district" in levels and "neighbourhood" in levels:
        pairs = table[["district", "neighbourhood"]].drop_duplicates()
        for district, members in pairs.groupby("district", dropna=False, sort=True):
            parent: Cell = ("district", _code(district))
            children: list[Cell] = [("neighbourhood", _code(n)) for n in members["neighbourhood"]]
            sums.append([parent, *children])

    hidden_scored = secondary_suppression(
        scored, [c for c in scored if scored[c] < min_count], sums, min_count
    )
    primary_top = [c for c in in_top if in_top[c] < min_count or scored[c] - in_top[c] < min_count]
    hidden_top = secondary_suppression(in_top, primary_top, sums, min_count)

    out: list[AreaSummary] = []
    for cell in cells:
        no_scored, no_top = cell in hidden_scored, cell in hidden_top
        out.append(
            AreaSummary(
                level=cell[0],
                code=cell[1],
                n_scored=None if no_scored else scored[cell],
                n_in_top_k=None if no_top else in_top[cell],
                mean_probability=None if no_scored else mean[cell],
                suppressed=no_scored or no_top,
            )
        )
    return out
