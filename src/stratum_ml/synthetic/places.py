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
* **Boundaries** (:func:`area_geometries`): the Voronoi cells of all addresses,
  merged per neighbourhood and clipped to the town's bounding box, so the
  neighbourhoods tile the town and every address lies inside its own
  neighbourhood; a district is the union of its neighbourhoods. Coordinates are
  RD New (EPSG:28992), rounded to the centimetre.
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
    """The Voronoi cell of every point, clipped to ``box`` (shapely polygons)."""
    x0, y0, x1, y1 = box.bounds
    span = 10.0 * max(x1 - x0, y1 - y0, 1.0)
    far = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + span * np.array(
        [[-1, -1], [1, -1], [1, 1], [-1, 1]]
    )
    vor = Voronoi(np.vstack([points, far]))
    # every region of a real point is bounded: the far points enclose them all
    regions = [vor.regions[r] for r in vor.point_region[: len(points)]]
    lengths = np.fromiter((len(r) for r in regions), dtype=np.int64, count=len(regions))
    vertices = np.fromiter(
        (v for r in regions for v in r), dtype=np.int64, count=int(lengths.sum())
    )
    rings = shapely.linearrings(
        vor.vertices[vertices], indices=np.repeat(np.arange(len(regions)), lengths)
    )
    cells = shapely.polygons(rings)
    inside = shapely.contains_properly(box, cells)
    clipped: np.ndarray = np.where(inside, cells, shapely.intersection(cells, box))
    return clipped


def area_geometries(
    x: np.ndarray, y: np.ndarray, neighbourhood: np.ndarray, district: np.ndarray
) -> tuple[dict[str, shapely.Geometry], dict[str, shapely.Geometry]]:
    """Neighbourhood and district boundaries that tile the town (RD New).

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
    known = np.isfinite(x) & np.isfinite(y)
    frame = pd.DataFrame(
        {"x": x[known], "y": y[known], "nbh": neighbourhood[known], "district": district[known]}
    ).drop_duplicates(["x", "y"])
    points = frame[["x", "y"]].to_numpy(dtype=np.float64)
    x0, y0 = points.min(axis=0) - _MARGIN_M
    x1, y1 = points.max(axis=0) + _MARGIN_M
    cells = _voronoi_cells(points, shapely.box(x0, y0, x1, y1))
    codes = frame["nbh"].to_numpy()
    neighbourhoods: dict[str, shapely.Geometry] = {}
    for code in pd.unique(codes):
        merged = _union(cells[codes == code])
        neighbourhoods[str(code)] = shapely.set_precision(merged, _GRID_M)
    parent = frame.drop_duplicates("nbh").set_index("nbh")["district"]
    districts: dict[str, shapely.Geometry] = {}
    for code in pd.unique(parent.to_numpy()):
        members = [neighbourhoods[str(n)] for n in parent.index[parent == code]]
        districts[str(code)] = shapely.set_precision(_union(members), _GRID_M)
    return neighbourhoods, districts


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
