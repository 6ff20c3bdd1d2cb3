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
