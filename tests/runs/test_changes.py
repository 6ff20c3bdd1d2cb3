"""Changes between two work lists: entered, left, moved beyond the threshold."""

from __future__ import annotations

import pandas as pd

from stratum_ml.runs.changes import CHANGE_COLUMNS, compare_top


def _ranks(ids: str, districts: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {"rank": range(1, len(ids) + 1), "district": list(districts or "D" * len(ids))},
        index=pd.Index(list(ids), name="address_id"),
    )


def test_entered_left_and_moved_with_their_ranks() -> None:
    before = _ranks("abcdefgh")
    now = _ranks("hbcdexfg" + "a")  # a fell to 9, x is new, h jumped from 8 to 1
    out = compare_top(now, 8, before, 8, min_move=3)
    assert list(out.columns) == list(CHANGE_COLUMNS)
    rows = {r.address_id: (r.change, r.rank, r.previous_rank) for r in out.itertuples()}
    assert set(rows) == {"x", "a", "h"}
    assert rows["a"] == ("left", 9, 1) and rows["h"] == ("moved_up", 1, 8)
    assert rows["x"][:2] == ("entered", 6) and pd.isna(rows["x"][2])
    assert out["change"].tolist() == ["entered", "left", "moved_up"]


def test_moves_up_to_the_threshold_are_not_changes() -> None:
    before = _ranks("abcd")
    now = _ranks("bcda")  # a moved 3 down, the others 1 up
    assert compare_top(now, 4, before, 4, min_move=3).empty
    moved = compare_top(now, 4, before, 4, min_move=2)
    assert moved[["address_id", "change"]].values.tolist() == [["a", "moved_down"]]


def test_an_address_no_longer_scored_leaves_with_no_rank_and_its_old_district() -> None:
    before = _ranks("abc", "XYZ")
    now = _ranks("ab", "XY")
    out = compare_top(now, 3, before, 3, min_move=0)
    (row,) = out.itertuples()
    assert (row.address_id, row.change, row.district) == ("c", "left", "Z") and pd.isna(row.rank)


def test_a_longer_list_counts_only_what_is_beyond_the_previous_list() -> None:
    before = _ranks("abc")
    now = _ranks("abcde")
    out = compare_top(now, 5, before, 3, min_move=0)
    assert out[["address_id", "change"]].values.tolist() == [["d", "entered"], ["e", "entered"]]
