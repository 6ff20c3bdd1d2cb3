"""Street names, the city and the neighbourhood boundaries the generator writes."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import shapely

from stratum_ml.sources import validate_tables
from stratum_ml.synthetic import GeneratorConfig, Municipality, generate_tables
from stratum_ml.synthetic.places import STREET_KINDS, THEMES, StreetNamer, city_name

TOWN = GeneratorConfig(n_addresses=3_000, seed=2, chunk_size=1_000)
#: sha256 over every source table but the new name columns and ``areas``, for ``TOWN``,
#: computed with the generator before it wrote names and boundaries (commit 2a3dfaf)
OTHER_COLUMNS_SHA256 = "57cb6c7f20fbcaefa171b12af953a1ff8de4a69d75ec2fa6ecd02c6e41642142"


@pytest.fixture(scope="module")
def town() -> Municipality:
    return generate_tables(TOWN)


def test_names_and_boundaries_leave_every_other_column_as_it_was(town: Municipality) -> None:
    digest = hashlib.sha256()
    for name, df in town.sources.items():
        if name == "areas":
            continue
        digest.update(name.encode())
        frame = df.drop(columns=["street_name", "city"], errors="ignore")
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    assert digest.hexdigest() == OTHER_COLUMNS_SHA256


def test_every_address_has_a_dutch_sounding_street_and_the_city(town: Municipality) -> None:
    a = town.sources.addresses
    assert a["street_name"].notna().all() and a["city"].notna().all()
    assert a["city"].nunique() == 1 and a["city"].iloc[0] == city_name(TOWN.seed)
    kinds = tuple(STREET_KINDS)
    assert a["street_name"].map(lambda s: s.endswith(kinds)).all()
    words = {w for _, theme in THEMES for w in theme}
    assert a["street_name"].map(lambda s: any(w in s for w in words)).all()
    # one street per postcode, and names unique in the town while combinations last
    per_postcode = a.groupby("postcode")["street_name"].nunique()
    assert (per_postcode == 1).all()
    assert a["street_name"].nunique() == a["postcode"].nunique()


def test_street_names_compose_a_word_and_a_kind() -> None:
    namer = StreetNamer(0)
    theme = [name for name, _ in THEMES].index("Schildersbuurt")
    names = namer.streets(theme, 144)
    assert len(set(names)) == 144  # every plain combination once before any prefix
    assert "Van Goghstraat" in names and "Rembrandtlaan" in names
    assert not any(n.startswith(("Korte ", "Lange ")) for n in names)


def test_areas_name_every_district_and_neighbourhood(town: Municipality) -> None:
    areas, a = town.sources.areas, town.sources.addresses
    assert areas is not None
    assert set(areas["code"]) == set(a["neighbourhood_code"]) | set(a["district_code"])
    levels = areas.set_index("code")["level"].astype(str)
    assert (levels[levels.index.str.startswith("BU")] == "neighbourhood").all()
    assert (levels[levels.index.str.startswith("WK")] == "district").all()
    assert areas["name"].notna().all() and areas["name"].is_unique
    assert (areas["crs"].astype(str) == "EPSG:28992").all()
    report = validate_tables(dict(town.sources.items()))
    assert report.ok, report.summary()


def _shapes(areas: pd.DataFrame, level: str) -> dict[str, shapely.Geometry]:
    rows = areas.loc[areas["level"] == level]
    return dict(zip(rows["code"], shapely.from_geojson(rows["geometry"].to_numpy()), strict=True))


def test_every_address_lies_inside_its_neighbourhood_polygon(town: Municipality) -> None:
    areas, a = town.sources.areas, town.sources.addresses
    assert areas is not None
    shapes = _shapes(areas, "neighbourhood")
    located = a.loc[a["x_rd"].notna()]
    assert len(located) > 0.99 * len(a)
    for code, group in located.groupby("neighbourhood_code"):
        inside = shapely.contains_xy(shapes[str(code)], group["x_rd"], group["y_rd"])
        assert inside.all(), f"{code}: {int((~inside).sum())} addresses outside"
        for other, shape in shapes.items():  # and inside no other neighbourhood
            if other != code:
                assert not shapely.contains_xy(shape, group["x_rd"], group["y_rd"]).any()


def test_neighbourhoods_tile_the_town_and_districts_are_their_union(town: Municipality) -> None:
    areas = town.sources.areas
    assert areas is not None
    nbh, dist = _shapes(areas, "neighbourhood"), _shapes(areas, "district")
    union = shapely.union_all(list(nbh.values()))
    total = sum(s.area for s in nbh.values())
    assert total == pytest.approx(union.area, rel=1e-6)  # no overlaps
    assert union.area == pytest.approx(shapely.envelope(union).area, rel=1e-6)  # no gaps
    a = town.sources.addresses.drop_duplicates("neighbourhood_code")
    for code, shape in dist.items():
        members = a.loc[a["district_code"] == code, "neighbourhood_code"]
        merged = shapely.union_all([nbh[m] for m in members])
        assert shapely.symmetric_difference(merged, shape).area < 1e-3 * shape.area
    assert all(shapely.is_valid(s) for s in [*nbh.values(), *dist.values()])


def test_same_seed_same_names_and_shapes(town: Municipality) -> None:
    again = generate_tables(TOWN)
    assert again.sources.areas is not None and town.sources.areas is not None
    pd.testing.assert_frame_equal(again.sources.areas, town.sources.areas)
    assert np.array_equal(
        again.sources.addresses["street_name"], town.sources.addresses["street_name"]
    )


def test_cells_the_coverage_union_refuses_are_still_united() -> None:
    from stratum_ml.synthetic.places import _union

    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting
    cells = np.array([bowtie, shapely.box(2, 0, 3, 2)])
    with pytest.raises(shapely.errors.GEOSException):
        shapely.coverage_union_all(cells)
    united = _union(cells)
    assert united.is_valid and united.area == pytest.approx(4.0)
    two = _union(np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]))
    assert two.equals(shapely.box(0, 0, 2, 1))


def _check_tiling(
    x: np.ndarray, y: np.ndarray, nbh: np.ndarray, shapes: dict[str, shapely.Geometry]
) -> None:
    """The shapes tile the addresses' box and margin; each address lies in its own only."""
    assert all(shapely.is_valid(s) and not s.is_empty for s in shapes.values())
    union = shapely.union_all(list(shapes.values()))
    assert sum(s.area for s in shapes.values()) == pytest.approx(union.area, rel=1e-9)
    margin = 150.0
    box = shapely.box(x.min() - margin, y.min() - margin, x.max() + margin, y.max() + margin)
    assert shapely.symmetric_difference(union, box).area < 1e-6 * box.area
    for code, shape in shapes.items():
        own = nbh == code
        assert shapely.contains_xy(shape, x[own], y[own]).all(), code
        assert not shapely.contains_xy(shape, x[~own], y[~own]).any(), code


def test_boundaries_are_drawn_one_tile_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from stratum_ml.synthetic import places

    rng = np.random.default_rng(0)
    centres = np.array([[x, y] for x in range(0, 6000, 1500) for y in range(0, 4000, 1300)])
    which = rng.integers(0, len(centres), 12_000)
    xy = np.round(centres[which] + rng.normal(0, 400, (len(which), 2)), 3)
    nbh = np.array([f"BU{i:08d}" for i in range(len(centres))])[which]
    sizes: list[int] = []
    real = places._voronoi_cells

    def counted(points: np.ndarray, box: shapely.Polygon) -> np.ndarray:
        sizes.append(len(points))
        return real(points, box)

    monkeypatch.setattr(places, "_voronoi_cells", counted)
    shapes, districts = places.area_geometries(xy[:, 0], xy[:, 1], nbh, np.full(len(nbh), "WK1"))
    assert len(sizes) > 20 and max(sizes) < len(xy) / 10  # many small diagrams, never the town
    assert sorted(shapes) == sorted(set(nbh))
    _check_tiling(xy[:, 0], xy[:, 1], nbh, shapes)
    assert (
        shapely.symmetric_difference(
            districts["WK1"], shapely.union_all(list(shapes.values()))
        ).area
        < 1e-6 * districts["WK1"].area
    )


def test_tiles_far_from_any_address_and_addresses_on_a_tile_edge() -> None:
    from stratum_ml.synthetic.places import _MARGIN_M, _TILE_M, area_geometries

    # two villages 6 km apart: the tiles between them hold no address, nor one near
    x = np.array([0.0, 20.0, 40.0, 6000.0, 6020.0, 6040.0])
    y = np.array([0.0, 30.0, 0.0, 3000.0, 3030.0, 3000.0])
    # and addresses of three neighbourhoods right on and beside a tile's edge
    edge = np.floor(x.min() - _MARGIN_M) + _TILE_M
    x = np.r_[x, edge, edge - 0.5, edge + 0.5, edge, np.nan]
    y = np.r_[y, 10.0, 10.0, 10.0, 10.5, 5.0]
    nbh = np.array(["BU1", "BU1", "BU2", "BU3", "BU3", "BU3", "BU4", "BU5", "BU6", "BU7", "BU8"])
    shapes, _ = area_geometries(x, y, nbh, np.full(len(x), "WK1"))
    assert "BU8" not in shapes  # an address without a place shapes nothing
    known = np.isfinite(x)
    _check_tiling(x[known], y[known], nbh[known], shapes)


def test_area_points_take_no_more_addresses_than_announced() -> None:
    from stratum_ml.synthetic.places import AreaPoints

    points = AreaPoints(2)
    points.add(np.zeros(2), np.zeros(2), np.array(["BU1", "BU1"]), np.array(["WK1", "WK1"]))
    with pytest.raises(ValueError, match="more than the 2 addresses announced"):
        points.add(np.ones(1), np.ones(1), np.array(["BU2"]), np.array(["WK1"]))


def test_places_closer_than_a_centimetre_never_overlap() -> None:
    from stratum_ml.synthetic.places import area_geometries

    # Qhull lets a point a millimetre from another share its region; each region has one owner
    x = np.array([0.0, 20.0, 40.0, 850.0, 850.001, 849.999, 850.0])
    y = np.array([0.0, 30.0, 0.0, 10.0, 10.0, 10.0, 10.002])
    nbh = np.array(["BU1", "BU1", "BU2", "BU3", "BU4", "BU5", "BU6"])
    shapes, _ = area_geometries(x, y, nbh, np.full(len(x), "WK1"))
    union = shapely.union_all(list(shapes.values()))
    assert sum(s.area for s in shapes.values()) == pytest.approx(union.area, rel=1e-9)
    assert union.area == pytest.approx((850 + 300) * (30 + 300), rel=1e-9)
    assert all(shapely.is_valid(s) for s in shapes.values())
    assert shapely.contains_xy(shapes["BU3"], 850.0, 10.0)  # the first address at a place
