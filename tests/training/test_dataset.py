"""The training set's inputs: visit outcomes recorded through the service join the export."""

from __future__ import annotations

import pandas as pd

from stratum_ml.training.dataset import with_recorded_visits
from tests.builders import tiny_tables


def test_recorded_visits_are_added_once() -> None:
    tables = tiny_tables()
    known = tables.inspections.iloc[[0]]
    new = known.assign(inspection_id="recorded-1")
    recorded = pd.concat([known, new], ignore_index=True)

    merged, added = with_recorded_visits(tables, recorded)

    assert added == 1
    assert len(merged.inspections) == len(tables.inspections) + 1
    assert merged.inspections["inspection_id"].iloc[-1] == "recorded-1"
    assert merged.addresses is tables.addresses
    assert len(tables.inspections) == len(merged.inspections) - 1  # input unchanged


def test_nothing_new_leaves_the_tables_as_they_are() -> None:
    tables = tiny_tables()
    same, added = with_recorded_visits(tables, tables.inspections.head(2))
    assert added == 0 and same is tables
