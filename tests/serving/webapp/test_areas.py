"""The areas page's figures: map counts with suppression, trends per district, distribution.

Two runs of a real small model on a generated town (with its ``areas`` table), stored
in the real operational store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from stratum_ml.config import Settings
from stratum_ml.runs import RunModel, create_run
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.serving.webapp import areas, charts
from stratum_ml.store import Store
from stratum_ml.synthetic.generate import Municipality
from tests.runs.conftest import FIRST, SECOND, mlflow_settings, run_model, runs_town

__all__ = ["mlflow_settings", "run_model", "runs_town"]  # fixtures shared with tests/runs

TOP = 120
FEWER = "fewer than 5"


def test_suppression_and_bands() -> None:
    assert [areas.suppressed(n, FEWER) for n in (0, 1, 4, 5, 12)] == ["0", FEWER, FEWER, "5", "12"]
    counts = (0, 1, 4, 5, 9, 10, 19, 20, 39, 40, 400)
    assert [areas.band_of(n, FEWER) for n in counts] == [
        "0",
        FEWER,
        FEWER,
        "5–9",
        "5–9",
        "10–19",
        "10–19",
        "20–39",
        "20–39",
        "40+",
        "40+",
    ]
    assert len(areas.bands(FEWER)) == len(charts.MAP_COLOURS)


def test_the_map_has_every_neighbourhood_with_its_listed_count(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    run = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    table = runs_town.sources.areas
    assert table is not None
    counts = areas.listed_counts(store, run)
    assert sum(counts.values()) == TOP
    made = areas.neighbourhood_map(table, counts, FEWER, runs_town.sources.addresses)
    assert made.reason is None and made.projection == {"type": "identity", "reflectY": True}
    codes = table.loc[table["level"] == "neighbourhood", "code"].tolist()
    assert sorted(a.code for a in made.neighbourhoods) == sorted(codes)
    assert made.unmapped == 0
    by_code = {a.code: a for a in made.neighbourhoods}
    addresses = runs_town.sources.addresses.set_index("neighbourhood_code")
    for code, n in counts.items():
        shown = by_code[code]
        assert shown.count == n
        assert shown.shown == (FEWER if 0 < n < 5 else str(n))
        assert shown.district == str(addresses.loc[[code], "district_code"].iloc[0])
        assert shown.district_name is not None and shown.district_name != shown.district
    small = [a for a in made.neighbourhoods if 0 < a.count < 5]
    for a in small:  # the band is all the page tells about a handful of addresses
        assert a.band == FEWER and str(a.count) not in (a.shown, a.band)
    for a in made.neighbourhoods:
        assert a.geometry["type"] in ("Polygon", "MultiPolygon")
        ring = a.geometry["coordinates"][0]
        ring = ring[0] if a.geometry["type"] == "MultiPolygon" else ring
        x, y = ring[0]
        assert 0 < x < 300_000 and 300_000 < y < 625_000  # RD New, not reprojected
    spec = charts.area_map(
        [
            {"type": "Feature", "geometry": a.geometry, "properties": {"band": a.band}}
            for a in made.neighbourhoods
        ],
        made.projection,
        areas.bands(FEWER),
        "listed",
    )
    assert len(spec["data"]["values"]["features"]) == len(codes)
    json.dumps(spec)  # the page embeds it as JSON


def test_without_usable_areas_the_map_says_why(runs_town: Municipality) -> None:
    addresses = runs_town.sources.addresses
    assert areas.neighbourhood_map(None, {}, FEWER, addresses).reason == "areas_missing"
    table = runs_town.sources.areas
    assert table is not None
    districts = table.loc[table["level"] == "district"]
    assert (
        areas.neighbourhood_map(districts, {}, FEWER, addresses).reason == "areas_no_neighbourhoods"
    )
    mixed = table.copy()
    mixed["crs"] = mixed["crs"].astype(str)
    mixed.loc[mixed.index[-1], "crs"] = "EPSG:4326"
    assert areas.neighbourhood_map(mixed, {}, FEWER, addresses).reason == "areas_mixed_crs"


def test_trends_per_district_and_the_score_distribution_over_runs(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    first = create_run(
        runs_town.sources, FIRST, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    second = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    trends = pd.DataFrame(
        areas.district_trends(store, [second, first]), columns=["as_of", "run", "district", "n"]
    )
    assert trends["as_of"].tolist() == sorted(trends["as_of"])  # oldest first
    assert trends.groupby("run")["n"].sum().to_dict() == {first.run_id: TOP, second.run_id: TOP}
    assert set(trends["district"]) <= set(runs_town.sources.addresses["district_code"])

    spread = pd.DataFrame(
        areas.score_distribution(store, [first, second]), columns=["as_of", "run", "band", "n"]
    )
    assert spread.groupby("run")["n"].sum().to_dict() == {
        first.run_id: first.n_items,
        second.run_id: second.n_items,
    }
    assert spread["band"].between(0, 95).all() and (spread["band"] % 5 == 0).all()
    chances = Scorer.from_sources(run_model.model, runs_town.sources, SECOND).table["probability"]
    expected = pd.Series(np.minimum(np.floor(chances.to_numpy() * 20), 19) * 5).value_counts()
    got = spread.loc[spread["run"] == second.run_id].set_index("band")["n"]
    assert got.sort_index().to_dict() == {int(k): int(v) for k, v in expected.sort_index().items()}
    assert spread["n"].gt(0).all()
    assert areas.score_distribution(store, []) == []
