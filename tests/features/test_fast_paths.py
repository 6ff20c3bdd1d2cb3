"""The feature code on integer codes gives what the string joins and group-bys it replaced gave.

Each reference below is the implementation as first written (pandas ``merge``,
``sort_values``, ``groupby``, a union-find over every edge), kept here only to compare
against: on a generated town, for scoring queries (one date per address) and for visit
queries (many dates, addresses asked more than once), the rewritten functions return the
same frames, in the same order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features import network
from stratum_ml.features.asof import (
    REF,
    DatedKeys,
    Q,
    asof_join,
    count_before,
    make_queries,
    match_rows,
    newest_first,
    query_keys,
)
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import FeatureParams
from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables

AS_OF = pd.Timestamp("2026-06-01")


@pytest.fixture(scope="module")
def town() -> Municipality:
    return generate_tables(GeneratorConfig(n_addresses=2500, seed=7))


@pytest.fixture(scope="module", params=["scoring", "visits"])
def keys(request: pytest.FixtureRequest, town: Municipality) -> pd.DataFrame:
    src = town.sources
    if request.param == "scoring":
        return query_keys(make_queries(src.addresses["address_id"], AS_OF))
    visits = src.inspections
    queries = make_queries(
        pd.concat([visits["address_id"], visits["address_id"].iloc[::3]]),
        pd.concat([visits["inspected_at"], visits["inspected_at"].iloc[::3]]),
        index=pd.RangeIndex(len(visits) + len(visits.iloc[::3])),
    )
    return query_keys(queries)


def _asof_join_by_merge(
    table: pd.DataFrame, keys: pd.DataFrame, date_col: str, end_col: str | None, on: str
) -> pd.DataFrame:
    latest = keys[REF].max()
    candidates = table.loc[table[date_col] < latest]
    joined = candidates.merge(keys[[on, Q, REF]], on=on, how="inner", sort=False)
    joined = joined.loc[joined[date_col] < joined[REF]]
    if end_col is not None:
        end = joined[end_col]
        joined = joined.assign(**{end_col: end.where(end < joined[REF])})
    out: pd.DataFrame = joined.reset_index(drop=True)
    return out


JOINS = [
    ("registrations", "registered_from", "registered_until"),
    ("water_usage", "period_end", None),
    ("ownership", "owned_from", "owned_until"),
    ("businesses", "registered_from", "registered_until"),
    ("reports", "reported_at", None),
    ("inspections", "inspected_at", None),
]


@pytest.mark.parametrize(("name", "date_col", "end_col"), JOINS)
def test_asof_join_returns_the_rows_of_the_merge_in_its_order(
    town: Municipality, keys: pd.DataFrame, name: str, date_col: str, end_col: str | None
) -> None:
    table = town.sources.get(name)
    assert table is not None
    got = asof_join(table, keys, date_col=date_col, end_col=end_col)
    expected = _asof_join_by_merge(table, keys, date_col, end_col, "address_id")
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, expected)
    dated = [date_col] if end_col is None else [date_col, end_col]
    some = asof_join(table, keys, date_col=date_col, end_col=end_col, columns=dated)
    pd.testing.assert_frame_equal(some, expected[[*dated, Q, REF]])


def test_match_rows_pairs_rows_as_merge_does_missing_values_and_repeats_included() -> None:
    rng = np.random.default_rng(3)
    values = np.array(["a", "b", "c", "d", None], dtype=object)
    for trial in range(200):
        left = pd.DataFrame({"k": pd.array(values[rng.integers(0, 5, 30)], dtype="str")})
        right = pd.DataFrame({"k": pd.array(values[rng.integers(0, 5, 12)], dtype="str")})
        if trial % 2:  # sorted keys: pandas joins monotonic keys another way
            left = left.sort_values("k", ignore_index=True)
            right = right.sort_values("k", ignore_index=True)
        if trial % 3 == 0:
            right = right.drop_duplicates(ignore_index=True)
        merged = left.assign(left=np.arange(len(left))).merge(
            right.assign(right=np.arange(len(right))), on="k", how="inner", sort=False
        )
        rows, matched = match_rows(left["k"], right["k"])
        assert rows.tolist() == merged["left"].tolist()
        assert matched.tolist() == merged["right"].tolist()


def test_newest_first_equals_the_stable_sort_and_cumcount(
    town: Municipality, keys: pd.DataFrame
) -> None:
    water = town.sources.water_usage
    assert water is not None
    rows = asof_join(water, keys, date_col="period_end")
    expected = rows.sort_values([Q, "period_end"], ascending=[True, False], kind="stable")
    expected = expected.assign(recency=expected.groupby(Q, sort=False).cumcount())
    pd.testing.assert_frame_equal(newest_first(rows, "period_end"), expected)


def _one_hop_by_merge(
    kind: str, keys: pd.DataFrame, frame: pd.DataFrame, params: FeatureParams
) -> pd.DataFrame:
    _, table, entity, start = next(spec for spec in network.LINK_SOURCES if spec[0] == kind)
    linking = network._link_table(table, frame, params)
    assert linking is not None
    cols = ["address_id", entity, start]
    own = _asof_join_by_merge(linking[cols], keys, start, None, "address_id")
    entity_keys = own[[entity, Q, REF]].drop_duplicates()
    other = _asof_join_by_merge(linking[cols], entity_keys, start, None, entity)
    query_address = keys.set_index(Q)["address_id"]
    other = other.loc[other["address_id"].to_numpy() != query_address.reindex(other[Q]).to_numpy()]
    pairs = other[[Q, "address_id"]].drop_duplicates().rename(columns={"address_id": "linked_id"})
    out: pd.DataFrame = pairs.reset_index(drop=True)
    return out


@pytest.mark.parametrize("kind", ["resident", "owner", "business"])
def test_one_hop_links_equal_the_string_joins(
    town: Municipality, keys: pd.DataFrame, kind: str
) -> None:
    table = {"resident": "registrations", "owner": "ownership", "business": "businesses"}[kind]
    frame = town.sources.get(table)
    assert frame is not None
    got = network._one_hop(kind, keys, frame, FeatureParams())
    expected = _one_hop_by_merge(kind, keys, frame, FeatureParams())
    assert len(got) > 0 or kind == "business"  # few establishments move in a small town
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["linked_id"].dtype == frame["address_id"].dtype


def test_count_per_query_equals_groupby_size_and_nunique(town: Municipality) -> None:
    keys = query_keys(make_queries(town.sources.addresses["address_id"], AS_OF))
    rows = asof_join(town.sources.registrations, keys, date_col="registered_from")
    rows.loc[rows.index[::5], "surname_key"] = np.nan  # a missing value is not a value
    n = len(keys)
    for column in (None, "person_id", "surname_key"):
        grouped = rows.groupby(Q, sort=False)
        counts = grouped.size() if column is None else grouped[column].nunique()
        expected = counts.astype("float64").reindex(pd.RangeIndex(n)).fillna(0.0)
        pd.testing.assert_series_equal(count_per_query(rows, n, column), expected)


def _count_before_by_strings(
    table: pd.DataFrame, key_col: str, date_col: str, keys: np.ndarray, dates: pd.Series
) -> np.ndarray:
    rows = table.loc[table[date_col].notna(), [key_col, date_col]]
    codes, uniques = pd.factorize(rows[key_col], sort=False)
    row_days = rows[date_col].to_numpy("datetime64[D]").astype(np.int64)
    query_codes = pd.Index(uniques).get_indexer(np.asarray(keys))
    query_days = pd.to_datetime(np.asarray(dates)).to_numpy("datetime64[D]").astype(np.int64)
    offset, shift = np.int64(1 << 31), np.int64(1 << 32)
    row_keys = np.sort(codes.astype(np.int64) * shift + row_days + offset)
    q = query_codes.astype(np.int64) * shift
    below = np.searchsorted(row_keys, q + query_days + offset, side="left")
    block = np.searchsorted(row_keys, q, side="left")
    return np.where(query_codes >= 0, below - block, 0).astype(np.int64)


def test_count_before_equals_the_lookup_of_every_key(town: Municipality) -> None:
    ownership = town.sources.ownership
    assert ownership is not None
    owners = ownership["owner_id"].iloc[::3].reset_index(drop=True)
    owners.iloc[::11] = np.nan
    dates = pd.Series(AS_OF - pd.to_timedelta(np.arange(len(owners)) % 2000, unit="D"))
    for column in ("owned_from", "owned_until"):
        expected = _count_before_by_strings(
            ownership, "owner_id", column, owners.to_numpy(dtype=object), dates
        )
        got = count_before(ownership, "owner_id", column, owners, dates)
        assert got.sum() > 0
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(
            count_before(ownership, "owner_id", column, owners.to_numpy(dtype=object), dates),
            expected,
        )


def test_dated_keys_built_once_answer_as_count_before(town: Municipality) -> None:
    """The owner counts ask one index of the portfolios several questions (two date columns,
    two dates each): each answer is that of a count_before built for it alone."""
    ownership = town.sources.ownership
    assert ownership is not None
    owners = ownership["owner_id"].iloc[::3].reset_index(drop=True)
    owners.iloc[::11] = np.nan
    dates = pd.Series(AS_OF - pd.to_timedelta(np.arange(len(owners)) % 2000, unit="D"))
    index = DatedKeys(ownership, "owner_id", ["owned_from", "owned_until"])
    codes = index.codes_of(owners)
    for column in ("owned_from", "owned_until"):
        for asked in (dates, dates - pd.Timedelta(days=730)):
            expected = count_before(ownership, "owner_id", column, owners, asked)
            assert expected.sum() > 0
            np.testing.assert_array_equal(index.count(column, codes, asked), expected)


def test_component_sizes_by_sweeps_equal_the_union_find(
    town: Municipality, keys: pd.DataFrame
) -> None:
    src = town.sources
    links = network.dated_links(src.registrations, FeatureParams(), src.ownership, src.businesses)
    ids = pd.Index(src.addresses["address_id"])
    a, b = network._positions_in(ids, links["a"]), network._positions_in(ids, links["b"])
    days = links["date"].to_numpy()
    nodes = network._positions_in(ids, keys["address_id"])
    refs = keys[REF].to_numpy()
    swept = network._sizes_by_sweeps(len(ids), a, b, days, nodes, refs)
    found = network._sizes_by_union_find(len(ids), a, b, days, nodes, refs)
    np.testing.assert_array_equal(swept, found)
    assert np.nanmax(swept) > 1
