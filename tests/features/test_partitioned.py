"""The partitioned and Dask paths give the in-memory features, and the same ranking."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_feature_table, build_features
from stratum_ml.features.partitioned import (
    PartitionPlan,
    address_partition,
    build_features_partitioned,
    build_features_with,
)
from stratum_ml.features.population import population_queries
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables
from stratum_ml.synthetic.truth import truth_at
from tests.builders import A, tiny_tables
from tests.features.test_point_in_time import _queries

AS_OF = dt.date(2026, 6, 1)


def assert_same_features(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Same columns, index and dtypes; integer values to the bit, floats to 1e-9 relative."""
    assert list(got.columns) == list(expected.columns)
    assert got.index.equals(expected.index)
    assert got.attrs["absent_features"] == expected.attrs["absent_features"]
    for name in expected.columns:
        e, g = expected[name], got[name]
        assert g.dtype == e.dtype, name
        if isinstance(e.dtype, pd.CategoricalDtype):
            assert g.equals(e), name
            continue
        ev, gv = e.to_numpy(), g.to_numpy()
        assert np.array_equal(np.isnan(ev), np.isnan(gv)), name
        whole = ~np.isnan(ev) & (ev == np.round(ev))
        assert np.array_equal(ev[whole].view(np.int64), gv[whole].view(np.int64)), name
        np.testing.assert_allclose(gv, ev, rtol=1e-9, atol=0, equal_nan=True, err_msg=name)


@pytest.fixture(scope="module")
def town() -> Municipality:
    return generate_tables(GeneratorConfig(n_addresses=3000, seed=11))


def test_the_partition_of_an_address_is_stable_and_spread() -> None:
    ids = np.array([f"0479{i:012d}" for i in range(4000)])
    part = address_partition(ids, 8)
    assert part.tolist() == address_partition(ids.astype(object), 8).tolist()
    assert set(part.tolist()) == set(range(8))
    assert np.bincount(part).min() > 400  # no partition far below 4000 / 8
    with pytest.raises(ValueError, match="at least 1"):
        address_partition(ids, 0)


@pytest.mark.parametrize("n_partitions", [1, 2, 3, 6])
def test_tiny_town_partitioned_equals_in_memory(n_partitions: int) -> None:
    tables = tiny_tables()
    queries = _queries(pd.Timestamp("2024-08-01"))  # several reference dates
    expected = build_features(tables, queries)
    got = build_features_partitioned(tables, queries, n_partitions=n_partitions)
    assert_same_features(expected, got)


def test_generated_town_partitioned_equals_in_memory(town: Municipality) -> None:
    queries = population_queries(town.sources.addresses, pd.Timestamp(AS_OF))
    expected = build_features(town.sources, queries)
    got = build_features_partitioned(town.sources, queries, n_partitions=5)
    assert_same_features(expected, got)
    # the network, owner and building features cross partitions: they are not all empty
    for name in ("linked_by_residents", "linked_by_owner", "owner_dwellings", "units_in_building"):
        assert (expected[name] > 0).any(), name


def test_visit_queries_partitioned_equal_in_memory(town: Municipality) -> None:
    visits = town.sources.inspections
    queries = make_queries(
        visits["address_id"],
        visits["inspected_at"],
        index=pd.Index(visits["inspection_id"].to_numpy(), name="inspection_id"),
    )
    expected = build_features(town.sources, queries)
    assert (expected["linked_violations"] > 0).any()
    assert_same_features(
        expected, build_features_partitioned(town.sources, queries, n_partitions=4)
    )


def test_a_partition_holds_its_addresses_and_what_they_reach(town: Municipality) -> None:
    tables = town.sources
    queries = population_queries(tables.addresses, pd.Timestamp(AS_OF))
    plan = PartitionPlan.from_tables(tables, queries, n_partitions=4)
    part = plan.partitions[0]
    sub = plan.tables_for(part)
    own = set(queries["address_id"].to_numpy()[plan.query_part == part])
    assert own <= set(sub.addresses["address_id"])
    assert len(sub.addresses) < len(tables.addresses)
    # every registration of a person ever registered at one of its addresses
    persons = set(sub.registrations.loc[sub.registrations["address_id"].isin(own), "person_id"])
    regs = tables.registrations
    assert (
        len(sub.registrations)
        == regs["person_id"].isin(persons).sum()
        + (regs["address_id"].isin(own) & ~regs["person_id"].isin(persons)).sum()
    )
    # the source tables stay in their order (ties are broken by it)
    assert sub.registrations["registered_from"].equals(
        regs.loc[regs["person_id"].isin(persons), "registered_from"].reset_index(drop=True)
    )


def test_a_partition_gets_only_linkable_owners_rows_from_the_others(town: Municipality) -> None:
    """An owner's counts are town-wide facts: the portfolio of a housing association or a
    municipality is not copied into every partition, the rows of owners it may link are."""
    tables = town.sources
    queries = population_queries(tables.addresses, pd.Timestamp(AS_OF))
    plan = PartitionPlan.from_tables(tables, queries, n_partitions=4)
    assert {"owner_dwellings", "owner_sales_24m"} <= set(plan.per_query)
    part = plan.partitions[0]
    ownership = plan.tables_for(part).ownership
    assert ownership is not None
    own = address_partition(ownership["address_id"], plan.n_partitions) == part
    unlinked = ownership["owner_type"].isin(plan.params.unlinked_owner_types)
    assert (unlinked & own).any() and (~unlinked & ~own).any()
    assert not (unlinked & ~own).any()


def test_features_of_a_subset_and_without_optional_tables(town: Municipality) -> None:
    tables = town.sources
    queries = population_queries(tables.addresses, pd.Timestamp(AS_OF)).iloc[:500]
    names = ["units_in_building", "owner_dwellings", "linked_violations", "registered_persons"]
    expected = build_features(tables, queries, features=names)
    assert_same_features(
        expected, build_features_partitioned(tables, queries, features=names, n_partitions=3)
    )
    bare = type(tables)(tables.addresses, tables.registrations, tables.inspections)
    expected = build_features(bare, queries)
    assert expected.attrs["absent_features"]
    assert_same_features(expected, build_features_partitioned(bare, queries, n_partitions=3))


def test_feature_table_engines_and_bad_engine(town: Municipality) -> None:
    expected = build_feature_table(town.sources, AS_OF)
    got = build_feature_table(town.sources, AS_OF, engine="partitioned", partitions=3)
    assert_same_features(expected, got)
    queries = population_queries(town.sources.addresses, pd.Timestamp(AS_OF))
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        build_features_with("spark", town.sources, queries)
    with pytest.raises(ValueError, match="needs --engine dask"):
        build_features_with("partitioned", town.sources, queries, scheduler="tcp://x:1")


def test_partitioned_scoring_ranks_the_same(town: Municipality) -> None:
    queries = population_queries(town.sources.addresses, pd.Timestamp("2025-06-01"))
    X = build_features(town.sources, queries)
    y = truth_at(town.truth, X.index, "2025-06-01").astype(int)
    params = LightGBMParams(n_estimators=40, early_stopping_rounds=10)
    model = RiskModel(params, "sigmoid", seed=0).fit(X, y, X_tune=X, y_tune=y)
    local = Scorer.from_sources(model, town.sources, AS_OF)
    parted = Scorer.from_sources(model, town.sources, AS_OF, engine="partitioned", partitions=4)
    assert parted.table.index.tolist() == local.table.index.tolist()
    assert parted.table["rank"].tolist() == local.table["rank"].tolist()
    np.testing.assert_allclose(parted.table["raw_score"], local.table["raw_score"], rtol=1e-9)


def test_dask_on_the_tiny_town_equals_in_memory() -> None:
    """A local cluster of two worker processes (a few seconds to start)."""
    tables = tiny_tables()
    queries = _queries(pd.Timestamp("2025-01-01"))
    expected = build_features(tables, queries)
    assert_same_features(expected, build_features_with("dask", tables, queries, n_partitions=3))
    assert A[0] in set(queries["address_id"])


@pytest.mark.slow
def test_60k_town_partitioned_and_dask_equal_in_memory() -> None:
    """The issue's proof: 60k addresses, every feature, partitioned and on 2 Dask workers."""
    town = generate_tables(GeneratorConfig(n_addresses=60_000, seed=1))
    queries = population_queries(town.sources.addresses, pd.Timestamp(AS_OF))
    expected = build_features(town.sources, queries)
    assert_same_features(
        expected, build_features_partitioned(town.sources, queries, n_partitions=4)
    )
    assert_same_features(
        expected, build_features_with("dask", town.sources, queries, n_partitions=4)
    )


def test_the_partition_of_an_id_is_its_own_hash_whatever_the_column() -> None:
    """Hashing each distinct id once gives every row the partition of its own hash."""
    ids = pd.Series([f"{i % 700:016d}" for i in range(5000)] + [None, "x"], dtype="str")
    for n in (1, 3, 20):
        expected = (pd.util.hash_array(ids.to_numpy(dtype=object)) % np.uint64(n)).astype(np.int32)
        np.testing.assert_array_equal(address_partition(ids, n), expected)
        np.testing.assert_array_equal(address_partition(ids.to_numpy(), n), expected)
