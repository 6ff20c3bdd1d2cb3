"""Place names and area boundaries of the synthetic town: what lists and maps show.

Nothing here draws from the random streams of the other columns: names come from
their own stream (:func:`names_rng`), keyed on the seed alone, and the boundaries
are computed from the addresses' coordinates, so a seed's other columns stay the
same with or without them.

* **City**: one Dutch-sounding name per seed, composed of two parts ("Ravensdijk").
* **Streets**: every postcode (PC6, about 20 addresses) is one street. A
  neighbourhood has a theme (trees, flowers, painters, ...) and its streets
  combine the theme's words with a street kind: "Lindenstraat", "Van Goghlaan",
  "Korte Merelweg". Names are unique in the town until a theme's combinations run out.
* **Neighbourhoods** are named after their theme ("Bomenbuurt", "Bomenbuurt-Noord"),
  **districts** after their place in the town ("Centrum", "Noord", ... "Wijk 12").
* **Boundaries** (:func:`area_geometries`, :class:`AreaPoints`): the Voronoi cells of
  the addresses, merged per neighbourhood, within the town's bounding box, so the
  neighbourhoods tile the town and every address lies inside its own
  neighbourhood; a district is the union of its neighbourhoods. The cells are drawn
  one square tile of the town at a time (with the addresses just around it), so
  memory is bounded by a tile, not by the town. Coordinates are RD New
  (EPSG:28992), rounded to the centimetre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import Voronoi

__all__ = [
    "AREA_CRS",
    "AreaPoints",
    "STREET_KINDS",
    "THEMES",
    "StreetNamer",
    "area_geometries",
    "city_name",
    "district_name",
    "names_rng",
]

#: the CRS the generator writes area geometries in (RD New)
AREA_CRS = "EPSG:28992"
#: metres of town around the outermost addresses
_MARGIN_M = 150.0
_GRID_M = 0.01
#: side of the square tiles the boundaries are drawn in, one at a time (metres)
_TILE_M = 1_000.0
#: how far beyond its tile a tile's Voronoi diagram sees addresses (metres)
_HALO_M = 100.0

#: neighbourhood themes: (neighbourhood name, words that streets are named after)
THEMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Bomenbuurt", ("Linden", "Eiken", "Beuken", "Berken", "Essen", "Iepen", "Populieren", "Kastanje", "Wilgen", "Platanen", "Esdoorn", "Acacia")),  # noqa: E501
    ("Bloemenbuurt", ("Rozen", "Tulpen", "Lelie", "Anjer", "Narcissen", "Seringen", "Irissen", "Krokus", "Dahlia", "Jasmijn", "Violieren", "Hyacinten")),  # noqa: E501
    ("Schildersbuurt", ("Van Gogh", "Rembrandt", "Vermeer", "Frans Hals", "Jan Steen", "Mondriaan", "Van Ruisdael", "Breitner", "Mesdag", "Israëls", "Van Ostade", "Ter Borch")),  # noqa: E501
    ("Vogelbuurt", ("Merel", "Lijster", "Spreeuwen", "Kievit", "Zwaluw", "Reiger", "Meeuwen", "Vinken", "Specht", "Koekoek", "Wielewaal", "Leeuwerik")),  # noqa: E501
    ("Componistenbuurt", ("Sweelinck", "Mozart", "Beethoven", "Bach", "Chopin", "Schubert", "Haydn", "Händel", "Vivaldi", "Verdi", "Grieg", "Brahms")),  # noqa: E501
    ("Rivierenbuurt", ("Maas", "Rijn", "Waal", "IJssel", "Vecht", "Amstel", "Lek", "Dommel", "Dinkel", "Berkel", "Schelde", "Linge")),  # noqa: E501
    ("Eilandenbuurt", ("Texel", "Vlieland", "Terschelling", "Ameland", "Schiermonnikoog", "Marken", "Urk", "Schokland", "Goeree", "Tholen", "Walcheren", "Pampus")),  # noqa: E501
    ("Sterrenbuurt", ("Orion", "Pegasus", "Andromeda", "Cassiopeia", "Sirius", "Vega", "Polaris", "Capella", "Lyra", "Draco", "Perseus", "Castor")),  # noqa: E501
    ("Vruchtenbuurt", ("Appel", "Peren", "Kersen", "Pruimen", "Druiven", "Bessen", "Frambozen", "Aardbeien", "Perziken", "Kweeperen", "Mispel", "Hazelnoot")),  # noqa: E501
    ("Zeeheldenbuurt", ("De Ruyter", "Tromp", "Piet Hein", "Van Speijk", "Evertsen", "Van Galen", "Van Heemskerck", "De Witt", "Banckert", "Van Kinsbergen", "Karel Doorman", "Van Ghent")),  # noqa: E501
)  # fmt: skip
#: the kinds of street a name ends in
STREET_KINDS = ("straat", "laan", "weg", "plein", "hof", "dreef", "kade", "singel", "pad", "gracht", "plantsoen", "park")  # fmt: skip  # noqa: E501
_STREET_PREFIXES = ("", "Korte ", "Lange ", "Nieuwe ", "Oude ", "Kleine ")
_NEIGHBOURHOOD_SUFFIXES = ("", "-Noord", "-Zuid", "-Oost", "-West", "-Midden")
_DISTRICTS = ("Centrum", "Noord", "Oost", "Zuid", "West", "Noordoost", "Zuidoost", "Zuidwest", "Noordwest", "Buitenwijken")  # fmt: skip  # noqa: E501
_CITY_FIRST = ("Ravens", "Linde", "Molen", "Berg", "Zand", "Ooster", "Wester", "Hooge", "Brede", "Kalver", "Roze", "Eike")  # fmt: skip  # noqa: E501
_CITY_LAST = ("dijk", "veen", "dam", "hoven", "wijk", "broek", "horst", "loo", "meer", "burg", "rode", "zande")  # fmt: skip  # noqa: E501


def names_rng(seed: int, stream: int) -> np.random.Generator:
    """A random stream of names: keyed on the seed alone, apart from every other stream.

    ``stream`` 0 names the city, 1 the neighbourhoods and streets.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, 0x57EE7, stream]))


def city_name(seed: int) -> str:
    """The town's name for ``seed``, e.g. ``"Molenveen"``."""
    rng = names_rng(seed, 0)
    return str(rng.choice(_CITY_FIRST)) + str(rng.choice(_CITY_LAST))


def district_name(number: int) -> str:
    """The name of the ``number``-th district (0-based): "Centrum", "Noord", ... "Wijk 11"."""
    return _DISTRICTS[number] if number < len(_DISTRICTS) else f"Wijk {number + 1}"


def _street(prefix: str, word: str, kind: str) -> str:
    return f"{prefix}{word}{kind}"


@dataclass
class StreetNamer:
    """Names neighbourhoods and their streets, chunk after chunk, in one town.

    Themes and combinations are shuffled once per seed; each theme hands out its
    combinations in that order, so names repeat only once a theme's 864
    combinations are used up (about 17,000 addresses per theme).

    Parameters
    ----------
    seed
        The generator's seed.
    """

    seed: int
    _themes: np.ndarray = field(init=False, repr=False)
    _combos: list[np.ndarray] = field(init=False, repr=False)
    _used_streets: dict[int, int] = field(init=False, default_factory=dict, repr=False)
    _used_names: dict[int, int] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = names_rng(self.seed, 1)
        self._themes = rng.permutation(len(THEMES))
        n = len(_STREET_PREFIXES) * len(THEMES[0][1]) * len(STREET_KINDS)
        # the plain names ("Lindenstraat") before the prefixed ones ("Korte Lindenstraat")
        plain = len(THEMES[0][1]) * len(STREET_KINDS)
        self._combos = [
            np.concatenate([rng.permutation(plain), plain + rng.permutation(n - plain)])
            for _ in THEMES
        ]

    def neighbourhood(self, number: int) -> tuple[int, str]:
        """The theme and the name of the town's ``number``-th neighbourhood (0-based)."""
        theme = int(self._themes[number % len(THEMES)])
        k = self._used_names.get(theme, 0)
        self._used_names[theme] = k + 1
        base = THEMES[theme][0]
        suffix = _NEIGHBOURHOOD_SUFFIXES[k] if k < len(_NEIGHBOURHOOD_SUFFIXES) else f" {k + 1}"
        return theme, base + suffix

    def streets(self, theme: int, n: int) -> list[str]:
        """``n`` street names of ``theme``, the next ones not yet handed out."""
        words = THEMES[theme][1]
        combos = self._combos[theme]
        start = self._used_streets.get(theme, 0)
        self._used_streets[theme] = start + n
        out = []
        for i in range(start, start + n):
            c = int(combos[i % len(combos)])
            prefix, rest = divmod(c, len(words) * len(STREET_KINDS))
            word, kind = divmod(rest, len(STREET_KINDS))
            out.append(_street(_STREET_PREFIXES[prefix], words[word], STREET_KINDS[kind]))
        return out


def _voronoi_cells(points: np.ndarray, box: shapely.Polygon) -> np.ndarray:
    """The Voronoi cell of every point, clipped to ``box`` (shapely polygons; empty outside)."""
    bounds = np.asarray(box.bounds)
    x0, y0 = np.minimum(bounds[:2], points.min(axis=0))
    x1, y1 = np.maximum(bounds[2:], points.max(axis=0))
    span = 10.0 * max(x1 - x0, y1 - y0, 1.0)  # far points around the box and every point
    far = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + span * np.array(
        [[-1, -1], [1, -1], [1, 1], [-1, 1]]
    )
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])  # the diagram in local coordinates
    vor = Voronoi(np.vstack([points, far]) - centre)
    # every region of a real point is bounded: the far points enclose them all
    regions = [vor.regions[r] for r in vor.point_region[: len(points)]]
    lengths = np.fromiter((len(r) for r in regions), dtype=np.int64, count=len(regions))
    vertices = np.fromiter(
        (v for r in regions for v in r), dtype=np.int64, count=int(lengths.sum())
    )
    rings = shapely.linearrings(
        vor.vertices[vertices] + centre, indices=np.repeat(np.arange(len(regions)), lengths)
    )
    cells = shapely.polygons(rings)
    # a point Qhull found too near another shares its region: the region is the first's
    cells[pd.Series(vor.point_region[: len(points)]).duplicated().to_numpy()] = shapely.Polygon()
    crossing = ~shapely.contains_properly(box, cells)
    cells[crossing] = shapely.intersection(cells[crossing], box)
    return _polygonal(cells)


def _polygonal(shapes: np.ndarray) -> np.ndarray:
    """The polygonal part of each shape (a clipped sliver of a cell can be a line or a mix)."""
    kinds = shapely.get_type_id(shapes)
    out = shapes.copy()
    out[(kinds != 3) & (kinds != 6) & (kinds != 7)] = shapely.Polygon()
    for i in np.flatnonzero(kinds == 7):  # a collection: its polygons
        parts = shapely.get_parts(shapes[i])
        polygons = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        out[i] = shapely.union_all(polygons) if len(polygons) else shapely.Polygon()
    return out


class AreaPoints:
    """The places of a town's addresses, gathered chunk by chunk, and the boundaries they give.

    Holds three numbers per address (x, y and the index of its neighbourhood: 20 bytes)
    and the codes; :meth:`geometries` draws the boundaries one tile of the town at a time
    (see :func:`area_geometries`), so memory beyond these arrays is bounded by a tile
    and by the boundaries themselves, not by the number of addresses.

    Parameters
    ----------
    n
        How many addresses will be added in all.
    """

    def __init__(self, n: int) -> None:
        self._x = np.full(n, np.nan)
        self._y = np.full(n, np.nan)
        self._nbh = np.zeros(n, dtype=np.int32)
        self._n = 0
        self._codes: dict[str, int] = {}
        self._district: list[str] = []  # of each neighbourhood (its first address's)

    def add(
        self, x: np.ndarray, y: np.ndarray, neighbourhood: np.ndarray, district: np.ndarray
    ) -> None:
        """Add addresses: RD coordinates (NaN where unknown) and their area codes."""
        k = len(x)
        if self._n + k > len(self._x):
            raise ValueError(f"more than the {len(self._x):,} addresses announced")
        local, uniques = pd.factorize(pd.Series(neighbourhood, dtype=object), sort=False)
        first = pd.Series(np.arange(k)).groupby(local).first().to_numpy()
        index = np.empty(len(uniques), dtype=np.int32)
        for j, code in enumerate(uniques):
            if str(code) not in self._codes:
                self._codes[str(code)] = len(self._codes)
                self._district.append(str(district[first[j]]))
            index[j] = self._codes[str(code)]
        s = slice(self._n, self._n + k)
        self._x[s], self._y[s], self._nbh[s] = x, y, index[local]
        self._n += k

    def geometries(self) -> tuple[dict[str, shapely.Geometry], dict[str, shapely.Geometry]]:
        """Neighbourhood and district boundaries (see :func:`area_geometries`)."""
        s = slice(0, self._n)
        known = np.isfinite(self._x[s]) & np.isfinite(self._y[s])
        x, y, nbh = self._x[s][known], self._y[s][known], self._nbh[s][known]
        codes = list(self._codes)
        pieces = _tile_pieces(x, y, nbh)
        neighbourhoods = {
            codes[c]: shapely.set_precision(
                parts[0] if len(parts) == 1 else shapely.union_all(parts, grid_size=_GRID_M),
                _GRID_M,
            )
            for c, parts in sorted(pieces.items())
        }
        members: dict[str, list[shapely.Geometry]] = {}
        for c in sorted(pieces):
            members.setdefault(self._district[c], []).append(neighbourhoods[codes[c]])
        districts = {
            code: shapely.set_precision(_union(shapes), _GRID_M) for code, shapes in members.items()
        }
        return neighbourhoods, districts


def _tile_pieces(x: np.ndarray, y: np.ndarray, nbh: np.ndarray) -> dict[int, list[Any]]:
    """Each neighbourhood's parts, tile by tile: Voronoi cells of a tile's addresses.

    The town's box (the addresses' extent and a margin) is cut into square tiles of
    ``_TILE_M`` metres. A tile is shared out by the Voronoi diagram of the addresses
    in it and within ``_HALO_M`` of it (for a tile with no address in or near it,
    the addresses within ``_HALO_M`` of the nearest one), clipped to the tile; a cell
    goes to its address's neighbourhood. The tiles tile the box, and each address lies
    inside its own cell (an address on a tile's edge in the cells of both tiles), so
    the parts of all neighbourhoods tile the box and every address lies in its own
    neighbourhood (but for addresses less than a centimetre apart: the first one's).
    Where the halo holds every Voronoi neighbour of an address (nearly everywhere),
    its cell is the cell of the town-wide diagram.
    """
    x0, y0 = x.min() - _MARGIN_M, y.min() - _MARGIN_M
    x1, y1 = x.max() + _MARGIN_M, y.max() + _MARGIN_M
    # tile edges on whole metres (on the grid the boundaries are rounded to)
    ox, oy = np.floor(x0), np.floor(y0)
    nx, ny = int(np.ceil((x1 - ox) / _TILE_M)), int(np.ceil((y1 - oy) / _TILE_M))
    tx = np.minimum(((x - ox) // _TILE_M).astype(np.int64), nx - 1)
    ty = np.minimum(((y - oy) // _TILE_M).astype(np.int64), ny - 1)
    tile = ty * nx + tx
    order = np.argsort(tile, kind="stable")
    bounds = np.searchsorted(tile[order], np.arange(nx * ny + 1))
    del tx, ty, tile

    def ring(ix: int, iy: int, r: int) -> np.ndarray:
        rows = range(max(iy - r, 0), min(iy + r, ny - 1) + 1)
        cols = range(max(ix - r, 0), min(ix + r, nx - 1) + 1)
        parts = [order[bounds[j * nx + i] : bounds[j * nx + i + 1]] for j in rows for i in cols]
        return np.sort(np.concatenate(parts))

    pieces: dict[int, list[Any]] = {}
    for iy in range(ny):
        for ix in range(nx):
            bx0, by0 = max(ox + ix * _TILE_M, x0), max(oy + iy * _TILE_M, y0)
            bx1, by1 = min(ox + (ix + 1) * _TILE_M, x1), min(oy + (iy + 1) * _TILE_M, y1)
            near, r = ring(ix, iy, 1), 1
            while len(near) == 0:  # no address in the tiles around: the nearest ring with any
                r += 1
                near = ring(ix, iy, r)
            # the addresses within the halo of the tile (beyond the nearest, where none is)
            gap = np.hypot(
                np.maximum(np.maximum(bx0 - x[near], x[near] - bx1), 0.0),
                np.maximum(np.maximum(by0 - y[near], y[near] - by1), 0.0),
            )
            near = near[gap <= gap.min() + _HALO_M]
            points = np.column_stack([x[near], y[near]])
            # places that round to one point of the centimetre grid: the first address's
            _, first = np.unique(np.round(points / _GRID_M), axis=0, return_index=True)
            first.sort()
            cells = _voronoi_cells(points[first], shapely.box(bx0, by0, bx1, by1))
            codes = nbh[near[first]]
            keep = ~shapely.is_empty(cells)
            cells, codes = cells[keep], codes[keep]
            by_code = np.argsort(codes, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(codes[by_code]) != 0])
            for part in np.split(by_code, starts[1:]):
                pieces.setdefault(int(codes[part[0]]), []).append(_union(cells[part]))
    return pieces


def area_geometries(
    x: np.ndarray, y: np.ndarray, neighbourhood: np.ndarray, district: np.ndarray
) -> tuple[dict[str, shapely.Geometry], dict[str, shapely.Geometry]]:
    """Neighbourhood and district boundaries that tile the town (RD New).

    Each neighbourhood is the union of its addresses' Voronoi cells, drawn one tile of
    the town at a time (see :class:`AreaPoints`); a district is the union of its
    neighbourhoods. The town is the addresses' extent and a margin of ``_MARGIN_M``.

    Parameters
    ----------
    x, y
        RD coordinates of the addresses (NaN where unknown: such an address shapes nothing).
    neighbourhood, district
        The codes of each address's neighbourhood and district.

    Returns
    -------
    (dict, dict)
        Neighbourhood code to (multi)polygon, and district code to (multi)polygon.
        A neighbourhood none of whose addresses has coordinates is left out.

    Examples
    --------
    >>> nbh, _ = area_geometries(
    ...     np.array([0.0, 10.0, 0.0, 10.0]), np.array([0.0, 0.0, 10.0, 10.0]),
    ...     np.array(["BU1", "BU2", "BU1", "BU2"]), np.array(["WK1"] * 4),
    ... )
    >>> sorted(nbh), round(nbh["BU1"].area + nbh["BU2"].area)  # (10 + 2 * 150) ** 2
    (['BU1', 'BU2'], 96100)
    """
    points = AreaPoints(len(x))
    points.add(
        np.asarray(x, dtype=np.float64),
        np.asarray(y, dtype=np.float64),
        np.asarray(neighbourhood),
        np.asarray(district),
    )
    return points.geometries()


def _union(cells: Any) -> shapely.Geometry:
    """The union of cells that share edges exactly (a coverage).

    The fast coverage union can fail on nearly degenerate Voronoi cells (a town of a
    million addresses has some); the cells are then made valid and united by the
    general overlay on the grid the boundaries are rounded to anyway.
    """
    try:
        return shapely.coverage_union_all(cells)
    except shapely.errors.GEOSException:
        return shapely.union_all(shapely.make_valid(np.asarray(cells)), grid_size=_GRID_M)
