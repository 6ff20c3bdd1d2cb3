"""The web app's areas page: a neighbourhood map, trends per district, the score distribution.

Everything here is aggregated over a stored run's work list (its top K, as stored):

- :func:`neighbourhood_map`: one shape per neighbourhood of the optional ``areas``
  table, with the number of listed addresses in it. A count between 1 and
  :data:`SUPPRESS_BELOW` - 1 is suppressed (shown as "fewer than 5", and drawn in the
  colour of that band, not of its number), so the map tells no more than a band
  about a handful of addresses. Geometries in RD New (EPSG:28992) are drawn as they
  are (Vega's ``identity`` projection with ``reflectY``: no reprojection); in WGS84
  (EPSG:4326) with the Mercator projection; a table that mixes the two is not drawn.
- :func:`district_trends`: the number of listed addresses per district per run.
- :func:`score_distribution`: per run, the number of scored dwellings per chance band.

Without an ``areas`` table (or a usable one), :class:`AreaMap` says why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import shapely
from sqlalchemy import Integer, cast, func, select

from stratum_ml.runs import RunSummary
from stratum_ml.store import Store
from stratum_ml.store.tables import RunItemRow, ScoringRunRow

#: counts from 1 up to this (exclusive) are suppressed on the map and its table
SUPPRESS_BELOW = 5
#: the chance bands of the score distribution, in percent
SCORE_BAND_PCT = 5
#: drawing tolerance per CRS (metres in RD New, degrees in WGS84): about 5 m
SIMPLIFY = {"EPSG:28992": 5.0, "EPSG:4326": 0.00005}
#: the Vega projection per CRS
PROJECTIONS: dict[str, dict[str, Any]] = {
    "EPSG:28992": {"type": "identity", "reflectY": True},
    "EPSG:4326": {"type": "mercator"},
}


@dataclass(frozen=True)
class Neighbourhood:
    """One neighbourhood on the map."""

    code: str
    name: str
    district: str | None
    district_name: str | None
    count: int
    shown: str
    band: str
    geometry: dict[str, Any]


@dataclass(frozen=True)
class AreaMap:
    """The map of one run, or why there is none (``reason`` is a text key)."""

    neighbourhoods: list[Neighbourhood]
    projection: dict[str, Any] | None
    reason: str | None = None
    unmapped: int = 0


def suppressed(count: int, fewer: str) -> str:
    """The count as shown: ``fewer`` (e.g. "fewer than 5") for 1..SUPPRESS_BELOW - 1."""
    return fewer if 0 < count < SUPPRESS_BELOW else str(count)


def bands(fewer: str) -> list[str]:
    """The map's colour bands, in order: 0, the suppressed band, then doubling ranges."""
    s = SUPPRESS_BELOW
    return [
        "0",
        fewer,
        f"{s}–{2 * s - 1}",
        f"{2 * s}–{4 * s - 1}",
        f"{4 * s}–{8 * s - 1}",
        f"{8 * s}+",
    ]


def band_of(count: int, fewer: str) -> str:
    """The colour band of a count (a suppressed count gets the band, never its number)."""
    names = bands(fewer)
    if count == 0:
        return names[0]
    if count < SUPPRESS_BELOW:
        return names[1]
    upper = 2 * SUPPRESS_BELOW
    for name in names[2:-1]:
        if count < upper:
            return name
        upper *= 2
    return names[-1]


def area_names(areas: pd.DataFrame | None) -> dict[str, str]:
    """Area code -> name (empty without an ``areas`` table)."""
    if not isinstance(areas, pd.DataFrame) or not {"code", "name"} <= set(areas.columns):
        return {}
    return dict(zip(areas["code"].astype(str), areas["name"].astype(str), strict=True))


def listed_counts(store: Store, run: RunSummary, level: str = "neighbourhood") -> dict[str, int]:
    """Listed addresses (the run's top K) per neighbourhood (or ``level="district"``)."""
    column = RunItemRow.neighbourhood if level == "neighbourhood" else RunItemRow.district
    with store.transaction() as session:
        found = session.execute(
            select(column, func.count())
            .where(RunItemRow.run_id == run.run_id, RunItemRow.rank <= run.top_k)
            .group_by(column)
        ).all()
    return {str(code): int(n) for code, n in found if code is not None}


def _geometry(text: object, crs: str) -> dict[str, Any]:
    shape = shapely.from_geojson(text if isinstance(text, str) else json.dumps(text))
    simple = shapely.simplify(shape, SIMPLIFY[crs], preserve_topology=True)
    # whole metres in RD New, about 10 cm in WGS84: enough to draw, a smaller page
    rounded = shapely.set_precision(simple, 1.0 if crs == "EPSG:28992" else 0.000001)
    out: dict[str, Any] = json.loads(shapely.to_geojson(rounded))
    return out


def neighbourhood_map(
    areas: pd.DataFrame | None, counts: dict[str, int], fewer: str, addresses: pd.DataFrame
) -> AreaMap:
    """The neighbourhoods of ``areas`` with their (suppressed) counts of listed addresses.

    Parameters
    ----------
    areas
        The optional ``areas`` source table (None when the sources have none).
    counts
        Listed addresses per neighbourhood code (:func:`listed_counts`).
    fewer
        The words of the suppressed band ("fewer than 5").
    addresses
        The ``addresses`` table, for each neighbourhood's district.
    """
    if not isinstance(areas, pd.DataFrame) or areas.empty:
        return AreaMap([], None, reason="areas_missing")
    needed = {"code", "level", "name", "crs", "geometry"}
    if not needed <= set(areas.columns):
        return AreaMap([], None, reason="areas_missing")
    rows = areas.loc[areas["level"].astype(str) == "neighbourhood"]
    if rows.empty:
        return AreaMap([], None, reason="areas_no_neighbourhoods")
    crs = set(rows["crs"].astype(str))
    if len(crs) != 1 or next(iter(crs)) not in PROJECTIONS:
        return AreaMap([], None, reason="areas_mixed_crs")
    system = next(iter(crs))
    names = dict(zip(areas["code"].astype(str), areas["name"].astype(str), strict=True))
    district_of = (
        addresses.drop_duplicates("neighbourhood_code")
        .set_index("neighbourhood_code")["district_code"]
        .astype(str)
        .to_dict()
    )
    out = []
    for code, name, geometry in zip(
        rows["code"].astype(str), rows["name"].astype(str), rows["geometry"], strict=True
    ):
        n = counts.get(code, 0)
        district = district_of.get(code)
        out.append(
            Neighbourhood(
                code=code,
                name=name,
                district=district,
                district_name=None if district is None else names.get(district),
                count=n,
                shown=suppressed(n, fewer),
                band=band_of(n, fewer),
                geometry=_geometry(geometry, system),
            )
        )
    out.sort(key=lambda a: (a.district_name or "", a.name))
    unmapped = sum(n for code, n in counts.items() if code not in set(rows["code"].astype(str)))
    return AreaMap(out, PROJECTIONS[system], unmapped=unmapped)


def district_trends(store: Store, runs: Sequence[RunSummary]) -> list[tuple[str, str, str, int]]:
    """(as-of date, run id, district, listed addresses) per run and district, oldest first."""
    out: list[tuple[str, str, str, int]] = []
    for run in sorted(runs, key=lambda r: (r.as_of, r.created_at)):
        for district, n in sorted(listed_counts(store, run, "district").items()):
            out.append((run.as_of.isoformat(), run.run_id, district, n))
    return out


def score_distribution(store: Store, runs: Sequence[RunSummary]) -> list[tuple[str, str, int, int]]:
    """(as-of date, run id, band start in %, dwellings) per run and chance band, oldest first.

    Every scored dwelling of the run counts (not only the work list); the bands are
    :data:`SCORE_BAND_PCT` percentage points wide (the last one includes 100 %).
    """
    if not runs:
        return []
    per_band = 100 // SCORE_BAND_PCT
    scaled = RunItemRow.probability * per_band
    # PostgreSQL's CAST rounds; SQLite's truncates (chances are not negative)
    band = (
        func.floor(scaled) if store.engine.dialect.name == "postgresql" else cast(scaled, Integer)
    )
    ids = [r.run_id for r in runs]
    with store.transaction() as session:
        found = session.execute(
            select(RunItemRow.run_id, band, func.count())
            .where(RunItemRow.run_id.in_(ids))
            .group_by(RunItemRow.run_id, band)
        ).all()
        dates = dict(
            session.execute(
                select(ScoringRunRow.run_id, ScoringRunRow.as_of).where(
                    ScoringRunRow.run_id.in_(ids)
                )
            ).all()
        )
    counts: dict[tuple[str, int], int] = {}
    for run_id, b, n in found:
        key = (str(run_id), min(int(b), per_band - 1))
        counts[key] = counts.get(key, 0) + int(n)
    return sorted((dates[r].isoformat(), r, b * SCORE_BAND_PCT, n) for (r, b), n in counts.items())
