"""Area geometries: GeoJSON (multi)polygons in RD New or WGS84, parsed and checked.

The ``areas`` table carries each CBS district's and neighbourhood's boundary as a
GeoJSON geometry in the CRS its ``crs`` column names (see
:data:`~stratum_ml.sources.contract.CRS_EXTENTS`). Validation parses every
geometry once with shapely and reports, per row, what is wrong with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from stratum_ml.sources.contract import CRS_EXTENTS

__all__ = ["GEOMETRY_PROBLEMS", "geometry_problems", "parse_geometries"]

#: the problems :func:`geometry_problems` reports, as (rule name, description)
GEOMETRY_PROBLEMS: dict[str, str] = {
    "GeoJSON": "not a GeoJSON geometry",
    "polygon": "not a Polygon or MultiPolygon",
    "valid polygon": "not a valid polygon (self-intersecting, or an empty or broken ring)",
    "within CRS extent": "outside the Netherlands in the stated crs (wrong crs or swapped axes?)",
}


def parse_geometries(text: pd.Series) -> np.ndarray:
    """GeoJSON text as shapely geometries; ``None`` where a value is missing or does not parse.

    Parameters
    ----------
    text : pandas.Series
        GeoJSON geometry objects as text.

    Returns
    -------
    numpy.ndarray
        Object array of shapely geometries (or ``None``), aligned with ``text``.

    Examples
    --------
    >>> square = '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'
    >>> [g is None for g in parse_geometries(pd.Series([square, "{", None]))]
    [False, True, True]
    """
    values = text.astype(object).where(text.notna(), None).to_numpy()
    out = np.full(len(values), None, dtype=object)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            continue
        try:
            out[i] = shapely.from_geojson(value)
        except (shapely.errors.GEOSException, ValueError, TypeError):
            out[i] = None
    return out


def geometry_problems(text: pd.Series, crs: pd.Series) -> dict[str, np.ndarray]:
    """Where each geometry breaks a rule, by rule name (see :data:`GEOMETRY_PROBLEMS`).

    A missing geometry or CRS is not judged here (the not-null rule reports it), and a
    row is reported under its first broken rule only.

    Parameters
    ----------
    text : pandas.Series
        GeoJSON geometry objects as text.
    crs : pandas.Series
        The CRS code of each row (``EPSG:28992`` or ``EPSG:4326``); an unknown code
        skips the extent rule (the domain rule reports it).

    Returns
    -------
    dict of str to numpy.ndarray
        Boolean masks aligned with ``text``, one per rule of :data:`GEOMETRY_PROBLEMS`.
    """
    present = text.notna().to_numpy(dtype=bool)
    geoms = parse_geometries(text)
    parsed = np.array([g is not None for g in geoms], dtype=bool)
    bad_json = present & ~parsed
    kinds = np.array(
        [shapely.get_type_id(g) if g is not None else -1 for g in geoms], dtype=np.int64
    )
    polygonal = np.isin(kinds, (3, 6))  # Polygon, MultiPolygon
    not_polygon = parsed & ~polygonal
    valid = np.array(
        [bool(g is not None and not g.is_empty and shapely.is_valid(g)) for g in geoms], dtype=bool
    )
    invalid = parsed & polygonal & ~valid
    outside = np.zeros(len(text), dtype=bool)
    codes = crs.astype(object).to_numpy()
    for i in np.flatnonzero(parsed & polygonal & valid):
        extent = CRS_EXTENTS.get(str(codes[i]))
        if extent is None:
            continue
        x0, y0, x1, y1 = shapely.bounds(geoms[i])
        outside[i] = not (
            x0 >= extent[0] and y0 >= extent[1] and x1 <= extent[2] and y1 <= extent[3]
        )
    return {
        "GeoJSON": bad_json,
        "polygon": not_polygon,
        "valid polygon": invalid,
        "within CRS extent": outside,
    }
