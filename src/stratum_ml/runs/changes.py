"""What changed in the top K between two runs: entered, left, moved more than a few places."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratum_ml.store.tables import CHANGES

#: the columns of a changes frame, in order
CHANGE_COLUMNS = ("address_id", "change", "rank", "previous_rank", "district")


def compare_top(
    current: pd.DataFrame,
    top_k: int,
    previous: pd.DataFrame,
    previous_top_k: int,
    *,
    min_move: int,
) -> pd.DataFrame:
    """The addresses whose place in the top K changed between two runs.

    Parameters
    ----------
    current : pandas.DataFrame
        This run: ``rank`` and ``district`` indexed by ``address_id``, every dwelling.
    top_k : int
        The size of this run's work list.
    previous : pandas.DataFrame
        The previous run's top K: ``rank`` (and ``district``) indexed by ``address_id``.
    previous_top_k : int
        The size of the previous run's work list.
    min_move : int
        An address on both lists counts as moved when its rank changed by more
        than this many places.

    Returns
    -------
    pandas.DataFrame
        One row per change (:data:`CHANGE_COLUMNS`): ``entered`` (on this list, not
        on the previous one), ``left`` (the other way round; ``rank`` is its rank
        now, or missing when it is no longer scored), ``moved_up`` / ``moved_down``;
        ordered by change, then rank.

    Examples
    --------
    >>> now = pd.DataFrame({"rank": [1, 2, 3], "district": ["A", "B", "A"]},
    ...                    index=pd.Index(["x", "y", "z"], name="address_id"))
    >>> before = pd.DataFrame({"rank": [1, 2], "district": ["B", "A"]},
    ...                       index=pd.Index(["y", "z"], name="address_id"))
    >>> compare_top(now, 2, before, 2, min_move=0)[["address_id", "change"]].values.tolist()
    [['x', 'entered'], ['z', 'left'], ['y', 'moved_down']]
    """
    prev_top = previous.loc[previous["rank"] <= previous_top_k, "rank"]
    now_top = current.loc[current["rank"] <= top_k]
    entered_ids = now_top.index.difference(prev_top.index, sort=False)
    left_ids = prev_top.index.difference(now_top.index, sort=False)
    both = now_top.index.intersection(prev_top.index, sort=False)

    def frame(ids: pd.Index, change: str | np.ndarray) -> pd.DataFrame:
        district = current["district"].reindex(ids)
        if "district" in previous.columns:
            district = district.fillna(previous["district"].reindex(ids))
        return pd.DataFrame(
            {
                "address_id": ids.to_numpy(dtype=object),
                "change": change,
                "rank": current["rank"].reindex(ids).astype("Int64").to_numpy(),
                "previous_rank": previous["rank"].reindex(ids).astype("Int64").to_numpy(),
                "district": district.to_numpy(dtype=object),
            }
        )

    move = now_top.loc[both, "rank"] - prev_top.loc[both]
    moved = move.loc[move.abs() > min_move]
    parts = [
        frame(entered_ids, "entered"),
        frame(left_ids, "left"),
        frame(moved.index, np.where(moved.to_numpy() < 0, "moved_up", "moved_down")),
    ]
    found = [p for p in parts if len(p)]
    out = pd.concat(found, ignore_index=True) if found else parts[0]
    return ordered_changes(out)


def ordered_changes(changes: pd.DataFrame) -> pd.DataFrame:
    """By change (``entered``, ``left``, ``moved_up``, ``moved_down``), then rank."""
    kind = pd.Categorical(changes["change"], categories=list(CHANGES)).codes
    rank = pd.to_numeric(changes["rank"]).fillna(pd.to_numeric(changes["previous_rank"]))
    order = np.lexsort((rank.fillna(0).to_numpy(dtype=np.float64), kind))
    return changes.iloc[order].reset_index(drop=True)[list(CHANGE_COLUMNS)]
