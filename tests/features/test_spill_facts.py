"""The town-wide facts of a split folder: one link table at a time, ids as integer codes."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from stratum_ml.features import network, spill
from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_feature_table
from stratum_ml.features.partitioned import ENTITY_COLUMNS, address_partition
from stratum_ml.features.registry import FeatureParams
from stratum_ml.features.spill import (
    LINK_COLUMNS,
    _coded_table,
    _id_codes,
    features_from_folder,
    split_sources,
    town_wide,
)
from stratum_ml.sources import SourceStream, load_sources
from stratum_ml.sources.tables import SourceTables
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
from tests.features.test_partitioned import assert_same_features

AS_OF = dt.date(2026, 6, 1)
#: the features the town-wide facts give, and some that read rows copied across partitions
FACT_FEATURES = [
    "network_component_size",
    "owner_dwellings",
    "owner_acquisitions_24m",
    "owner_sales_24m",
    "units_in_building",
    "linked_violations",
    "linked_by_residents",
    "linked_by_owner",
    "businesses_in_building",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("facts")
    generate_municipality(
        GeneratorConfig(n_addresses=1200, seed=7), base / "sources", base / "truth.parquet"
    )
    return base / "sources"


@pytest.fixture(scope="module")
def loaded(folder: Path) -> SourceTables:
    return load_sources(folder)


def test_a_link_table_is_read_from_the_split_folder_as_codes(
    folder: Path, loaded: SourceTables, tmp_path: Path
) -> None:
    """Source row order; the address as its row in ``addresses``; the same groups of ids."""
    town = split_sources(SourceStream.open(folder, batch_rows=1500), tmp_path, 3)
    ids = loaded.addresses["address_id"].to_numpy()
    for name, entity in ENTITY_COLUMNS.items():
        source = loaded.get(name)
        assert source is not None
        frame, part = _coded_table(town, name)
        assert len(frame) == len(source)
        for column in ("address_id", entity):
            assert frame[column].dtype == np.int32, (name, column)
        np.testing.assert_array_equal(ids[frame["address_id"].to_numpy()], source["address_id"])
        np.testing.assert_array_equal(
            pd.factorize(frame[entity])[0], pd.factorize(source[entity])[0]
        )
        for column in LINK_COLUMNS[name]:
            pd.testing.assert_series_equal(frame[column], source[column], check_index=False)
        np.testing.assert_array_equal(part, address_partition(source["address_id"], 3))


def test_the_facts_read_no_link_table_whole(
    folder: Path, loaded: SourceTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the buildings are read again from the sources; the features do not change."""
    asked: list[str] = []
    read_columns = SourceStream.read_columns

    def recorded(self: SourceStream, name: str, columns: list[str]) -> pd.DataFrame:
        asked.append(name)
        return read_columns(self, name, columns)

    monkeypatch.setattr(SourceStream, "read_columns", recorded)
    got = features_from_folder(folder, AS_OF, features=FACT_FEATURES, n_partitions=3)
    assert asked == ["addresses"]
    expected = build_feature_table(loaded, AS_OF)[FACT_FEATURES]
    assert_same_features(expected, got)
    assert (expected["network_component_size"] > 2).any()
    assert (expected["owner_dwellings"] > 1).any()


def test_the_edges_of_codes_are_the_edges_of_the_strings(loaded: SourceTables) -> None:
    """Ids coded by their rank give the same chain, edge for edge."""
    params = FeatureParams()
    compared = 0
    for _, table, entity, _ in network.LINK_SOURCES:
        frame = loaded.get(table)
        assert frame is not None
        by_strings = network.link_edges(table, frame, params)
        entities, _ = pd.factorize(frame[entity], sort=True)
        addresses, uniques = pd.factorize(frame["address_id"], sort=True)
        coded = frame.assign(**{entity: entities, "address_id": addresses})
        by_codes = network.link_edges(table, coded, params)
        assert (by_strings is None) == (by_codes is None), table
        if by_strings is None or by_codes is None:
            continue
        assert by_codes["a"].dtype == np.int64
        decoded = by_codes.assign(
            a=pd.Series(uniques.take(by_codes["a"]), dtype="str"),
            b=pd.Series(uniques.take(by_codes["b"]), dtype="str"),
        )
        pd.testing.assert_frame_equal(decoded, by_strings)
        compared += len(by_strings)
    assert compared > 1000


@pytest.mark.parametrize("n_dates", [1, 40], ids=["sweeps", "union-find"])
def test_component_sizes_do_not_depend_on_the_order_of_the_edges(n_dates: int) -> None:
    rng = np.random.default_rng(3)
    n_nodes, n_edges = 500, 450
    a = rng.integers(0, n_nodes, n_edges)
    b = rng.integers(0, n_nodes, n_edges)
    days = np.datetime64("2020-01-01") + rng.integers(0, 900, n_edges).astype("timedelta64[D]")
    days = days.astype("datetime64[ns]")
    days[::17] = np.datetime64("NaT")
    nodes = rng.integers(0, n_nodes, 300)
    nodes[::50] = -1  # no node: NaN
    refs = np.datetime64("2020-06-01") + rng.integers(0, n_dates, 300).astype("timedelta64[D]")
    refs = refs.astype("datetime64[ns]")
    order = np.argsort(days, kind="stable")  # missing dates last, as dated_links sorts
    expected = network._sizes_by_union_find(n_nodes, a[order], b[order], days[order], nodes, refs)
    shuffled = rng.permutation(n_edges)
    got = network.component_sizes(n_nodes, a[shuffled], b[shuffled], days[shuffled], nodes, refs)
    np.testing.assert_array_equal(got, expected)
    assert np.nanmax(got) > 2 and np.isnan(got).any()


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()], ids=str)
def test_ids_are_coded_as_factorize_groups_them(kind: pa.DataType) -> None:
    """Equal ids equal codes across chunks (sliced ones too); missing -1; empty is an id."""
    rng = np.random.default_rng(1)
    ids: list[str | None] = [f"P{x:x}" for x in rng.integers(0, 3000, 9000)]
    ids[::97] = [None] * len(ids[::97])
    ids[5::101] = [""] * len(ids[5::101])
    whole = pa.array(ids, kind)
    chunks = [whole.slice(0, 4000), whole.slice(4000, 0), whole.slice(4000)]
    codes = _id_codes(chunks)
    expected, _ = pd.factorize(pd.Series(ids, dtype=object))
    np.testing.assert_array_equal(codes < 0, expected < 0)
    np.testing.assert_array_equal(pd.factorize(codes)[0], pd.factorize(expected)[0])
    assert codes.max() == expected.max()


def _extra_files(root: Path) -> dict[str, pa.Table]:
    """Every copy to another partition in a split folder, by its path in the folder."""
    found = {}
    for path in sorted(root.glob("*/extra-*.arrow")):
        with pa.memory_map(str(path)) as source:
            found[str(path.relative_to(root))] = pa.ipc.open_file(source).read_all()
    return found


def test_the_link_tables_facts_in_worker_processes_are_those_computed_here(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every fact and per-query value to the bit, the same copies; done in other processes."""
    params = FeatureParams()
    names = FACT_FEATURES
    towns = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        root.mkdir()
        town = split_sources(SourceStream.open(folder), root, 3)
        queries = make_queries(town.addresses, AS_OF)
        with caplog.at_level(logging.INFO, logger=spill.__name__):
            caplog.clear()
            town_wide(SourceStream.open(folder), town, queries, names, params, workers)
        logged = [r.message for r in caplog.records if "town-wide facts of" in r.message]
        assert len(logged) == 3, logged
        pids = {int(message.rsplit(" ", 1)[1]) for message in logged}
        assert pids == {os.getpid()} if workers == 1 else os.getpid() not in pids, pids
        towns[workers] = town
    here, there = towns[1], towns[2]
    assert list(there.per_query) == list(here.per_query)
    for name, values in here.per_query.items():
        np.testing.assert_array_equal(there.per_query[name], values, err_msg=name)
        assert there.per_query[name].dtype == values.dtype, name
    assert sorted(there.facts) == sorted(here.facts) and here.facts
    for name, fact in here.facts.items():
        if isinstance(fact, pd.DataFrame):
            pd.testing.assert_frame_equal(there.facts[name], fact, check_exact=True)
        else:
            pd.testing.assert_series_equal(there.facts[name], fact, check_exact=True)
    copies = _extra_files(here.root)
    assert {"registrations", "ownership", "businesses", "addresses"} <= {
        key.split("/")[0] for key in copies
    }
    assert _extra_files(there.root).keys() == copies.keys()
    for key, table in _extra_files(there.root).items():
        assert table.equals(copies[key]), key
