"""The link network's edge list: built on integer codes, the same as sorting the strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features.network import LINK_SOURCES, _link_table, dated_links
from stratum_ml.features.registry import FeatureParams
from stratum_ml.synthetic.generate import GeneratorConfig, generate_tables


def _dated_links_by_strings(tables: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """The edge list as first written: a stable sort of the string columns."""
    edges = []
    for _, table, entity, start in LINK_SOURCES:
        frame = _link_table(table, tables[table], FeatureParams())
        if frame is None or len(frame) == 0:
            continue
        rows = frame[[entity, "address_id", start]].sort_values(
            [entity, start, "address_id"], kind="stable"
        )
        same = rows[entity].to_numpy()[1:] == rows[entity].to_numpy()[:-1]
        a = rows["address_id"].to_numpy()
        d = rows[start].to_numpy()
        edges.append(pd.DataFrame({"a": a[:-1][same], "b": a[1:][same], "date": d[1:][same]}))
    out = pd.concat(edges, ignore_index=True)
    out = out.loc[out["a"].notna() & out["b"].notna() & (out["a"] != out["b"])]
    return out.sort_values("date", kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("holes", [False, True])
def test_the_edge_list_equals_the_one_sorted_by_strings(holes: bool) -> None:
    town = generate_tables(GeneratorConfig(n_addresses=2500, seed=5)).sources
    tables: dict[str, pd.DataFrame | None] = {
        "registrations": town.registrations,
        "ownership": town.ownership,
        "businesses": town.businesses,
    }
    if holes:  # missing entities, addresses and dates, and ties on every key
        rng = np.random.default_rng(0)
        regs = town.registrations.copy()
        n = len(regs)
        regs.loc[rng.random(n) < 0.02, "person_id"] = np.nan
        regs.loc[rng.random(n) < 0.02, "address_id"] = np.nan
        regs.loc[rng.random(n) < 0.02, "registered_from"] = pd.NaT
        tables["registrations"] = pd.concat([regs, regs.iloc[::7]], ignore_index=True)
    got = dated_links(
        tables["registrations"], FeatureParams(), tables["ownership"], tables["businesses"]
    )
    expected = _dated_links_by_strings(tables)
    assert len(got) > 1000
    pd.testing.assert_frame_equal(
        got.astype({"a": "str", "b": "str"}), expected.astype({"a": "str", "b": "str"})
    )
