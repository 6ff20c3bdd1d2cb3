"""Area summary suppression and the decisions store, without a server (fast)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stratum_ml.serving.api_models import DecisionRequest, SummaryRequest
from stratum_ml.serving.decisions import (
    STORE_COLUMNS,
    DecisionError,
    DecisionStore,
    RecordedDecision,
    read_decisions,
)
from stratum_ml.serving.summary import AreaSummary, summarise
from stratum_ml.store import Store


def _table(seed: int, n: int, n_districts: int, per_district: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    district = rng.integers(0, n_districts, n)
    neighbourhood = district * 10 + rng.integers(0, per_district, n)
    probability = rng.beta(1, 6, n)
    table = pd.DataFrame(
        {
            "probability": probability,
            "district": [f"WK0479{d:02d}" for d in district],
            "neighbourhood": [f"BU0479{b:04d}" for b in neighbourhood],
        },
        index=[f"0479{i:012d}" for i in range(n)],
    )
    table["rank"] = (-table["probability"]).rank(method="first").astype(int)
    return table


def _true_counts(table: pd.DataFrame, k: int, level: str) -> tuple[pd.Series, pd.Series]:
    top = table.loc[table["rank"] <= k, level].value_counts()
    scored = table[level].value_counts()
    return top.reindex(scored.index, fill_value=0), scored


def _hidden(rows: list[AreaSummary], level: str, field: str) -> set[str | None]:
    return {r.code for r in rows if r.level == level and getattr(r, field) is None}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 1500),
    n_districts=st.integers(1, 6),
    per_district=st.integers(1, 6),
    k=st.integers(1, 400),
    min_count=st.integers(2, 15),
)
def test_no_small_count_is_shown_or_recoverable(
    seed: int, n: int, n_districts: int, per_district: int, k: int, min_count: int
) -> None:
    table = _table(seed, n, n_districts, per_district)
    rows = summarise(table, k, min_count=min_count)
    levels = ("district", "neighbourhood")
    assert [r.level for r in rows] == sorted((r.level for r in rows), key=levels.index)
    for level in levels:
        top, scored = _true_counts(table, k, level)
        mine = [r for r in rows if r.level == level]
        assert [r.code for r in mine] == sorted(scored.index)
        for row in mine:
            assert row.suppressed == (row.n_scored is None or row.n_in_top_k is None)
            assert (row.mean_probability is None) == (row.n_scored is None)
            if row.n_in_top_k is not None:
                assert row.n_in_top_k == top[row.code] >= min_count
                assert scored[row.code] - row.n_in_top_k >= min_count  # not "all of them"
            if row.n_scored is not None:
                assert row.n_scored == scored[row.code] >= min_count
                in_area = table.loc[table[level] == row.code, "probability"]
                assert row.mean_probability == pytest.approx(in_area.mean())
        # a level adds up to a published total: never exactly one count withheld
        for field, counts in (("n_in_top_k", top), ("n_scored", scored)):
            hidden = _hidden(rows, level, field)
            assert len(hidden) != 1 or len(mine) == 1
            if hidden and len(hidden) < len(mine):
                assert sum(counts[c] for c in hidden) >= min_count
    # a district is the sum of its neighbourhoods: never exactly one of them withheld
    pairs = table[["district", "neighbourhood"]].drop_duplicates()
    for field in ("n_in_top_k", "n_scored"):
        hidden_d, hidden_n = _hidden(rows, "district", field), _hidden(rows, "neighbourhood", field)
        for district, members in pairs.groupby("district"):
            group = {("d", district)} | {("n", b) for b in members["neighbourhood"]}
            withheld = {("d", district)} & {("d", c) for c in hidden_d}
            withheld |= {("n", b) for b in members["neighbourhood"] if b in hidden_n}
            assert len(withheld) != 1 or len(group) == 1, (field, district)


def test_one_level_and_totals() -> None:
    table = _table(1, 2000, 4, 3)
    rows = summarise(table, 250, levels=("district",), min_count=10)
    assert {r.level for r in rows} == {"district"}
    top, _ = _true_counts(table, 250, "district")
    assert int(top.sum()) == 250
    assert sum(r.n_in_top_k or 0 for r in rows) <= 250
    if not any(r.suppressed for r in rows):
        assert sum(r.n_in_top_k or 0 for r in rows) == 250


def test_summary_request_bounds_k_like_the_priority_list() -> None:
    assert SummaryRequest().k == 250
    context = {"max_batch_size": 100}
    with pytest.raises(ValidationError, match="at most 100"):
        SummaryRequest.model_validate({"k": 101}, context=context)
    with pytest.raises(ValidationError, match="level"):
        SummaryRequest.model_validate({"level": "street"})


# --------------------------------------------------------------------------- decisions

ADDRESS = "0479010000000001"


def _record(store: DecisionStore, **changes: object) -> RecordedDecision:
    fields: dict[str, object] = {
        "address_id": ADDRESS,
        "decision": "pass_on_for_visit",
        "reason": "signals_several_sources",
        "note": "water use four times the usual, two reports this year",
        "decided_by": "0123456789abcdef",
        "model_version": "3",
        "scoring_date": dt.date(2026, 11, 1),
        "rank": 7,
        "probability": 0.4321,
    }
    fields.update(changes)
    return store.record(**fields)  # type: ignore[arg-type]


def test_decisions_round_trip_append_only(store: Store) -> None:
    assert read_decisions(store).empty
    decisions = DecisionStore(store)
    first = _record(decisions)
    _record(
        decisions,
        decision="decline",
        reason="other",
        note='second look, "quoted",\nand a new line',
        supersedes=first.decision_id,
    )
    stored = read_decisions(store)
    assert list(stored.columns) == list(STORE_COLUMNS)
    assert stored["decision"].tolist() == ["pass_on_for_visit", "decline"]
    assert stored["reason"].tolist() == ["signals_several_sources", "other"]
    assert stored["note"].iloc[1] == 'second look, "quoted",\nand a new line'
    assert stored["decided_at"].dt.tz is not None
    assert stored["scoring_date"].iloc[0] == pd.Timestamp("2026-11-01")
    assert stored["rank_at_decision"].tolist() == [7, 7]
    assert stored["probability_at_decision"].iloc[0] == 0.4321
    assert stored["decision_id"].str.startswith("dec-").all()
    assert stored["supersedes"].tolist()[1] == first.decision_id
    # the file's mode (0600) is tested in tests/store/test_engine.py


def test_a_decision_taken_while_paused_stores_no_probability(store: Store) -> None:
    # the kill switch shows nothing of the model: the analyst saw the fallback rank only
    decisions = DecisionStore(store)
    recorded = _record(decisions, rank=3, probability=None)
    assert recorded.probability_at_decision is None
    (again,) = decisions.history(ADDRESS)
    assert (again.rank_at_decision, again.probability_at_decision) == (3, None)
    stored = read_decisions(store)
    assert stored["probability_at_decision"].isna().tolist() == [True]


def test_decision_store_refuses_bad_rows(store: Store) -> None:
    decisions = DecisionStore(store)
    with pytest.raises(DecisionError, match="decision: must be one of"):
        _record(decisions, decision="visit")
    with pytest.raises(DecisionError, match="BSN"):
        _record(decisions, note="tenant 123456789 works here")
    with pytest.raises(DecisionError, match="reason: must be one of"):
        _record(decisions, reason="the tenant works here")
    with pytest.raises(DecisionError, match="note: required with the reason 'other'"):
        _record(decisions, reason="other", note=None)
    assert read_decisions(store).empty
    # damaged files of the old CSV store: tests/store/test_legacy_csv.py


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        ("", "at least 1 character"),
        ("   ", "blank"),
        ("x" * 501, "at most 500"),
        ("BSN 123456789", "BSN"),
        ("mail j.jansen@example.nl", "e-mail"),
        ("bel 06-12345678", "phone"),
        ("=HYPERLINK(1)", "formula"),
    ],
)
def test_decision_note_is_checked(reason: str, fragment: str) -> None:
    body = {"address_id": ADDRESS, "decision": "decline", "reason": "other", "note": reason}
    with pytest.raises(ValidationError, match=fragment):
        DecisionRequest.model_validate(body)


def test_decision_request_accepts_the_three_decisions() -> None:
    for decision in ("pass_on_for_visit", "decline", "needs_more_information"):
        body = {
            "address_id": ADDRESS,
            "decision": decision,
            "reason": "recent_reports",
            "language": "nl",
        }
        assert DecisionRequest.model_validate(body).audit_ids() == [ADDRESS]
    with pytest.raises(ValidationError, match="decision"):
        DecisionRequest.model_validate(
            {"address_id": ADDRESS, "decision": "yes", "reason": "recent_reports"}
        )


def test_a_recorded_fairness_risk_acceptance_is_shown_in_one_sentence() -> None:
    from stratum_ml.serving.endpoints import _risk_acceptance

    assert _risk_acceptance({"fairness_passed": "false"}) is None
    text = _risk_acceptance(
        {
            "fairness_risk_accepted": "true",
            "fairness_risk_accepted_by": "j.jansen",
            "fairness_risk_accepted_at": "2026-11-28T10:00:00+00:00",
            "fairness_risk_reason": "pilot with a second reviewer on every visit",
        }
    )
    assert text == (
        "accepted by j.jansen at 2026-11-28T10:00:00+00:00: "
        "pilot with a second reviewer on every visit"
    )
