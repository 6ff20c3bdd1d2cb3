"""A work list that remembers: each item's state against the previous run, decisions, visits.

The priority list the service answers is the served run's ranking, and each item
carries what happened to the address:

- its place on the previous run's work list (``previous_rank``; ``state`` ``new``,
  ``rank change`` or ``unchanged``: :func:`stratum_ml.runs.read.state_of`, the rule
  :func:`stratum_ml.runs.work_list` uses too);
- the latest decision stored about it (decision, role, key name, time, open or not);
- its latest visit (visit outcomes recorded through the service, and inspections in
  the sources) and whether that visit came after the previous run's date.

Addresses visited within the cool-off (``STRATUM_COOL_OFF_DAYS``, default 180 days
before the run's date, or any time after it) leave the list: the answer shows them
apart, in ``recently_visited``, with the visit's date and outcome.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select

from stratum_ml.runs import RunSummary
from stratum_ml.sources import SourceTables
from stratum_ml.store import Store
from stratum_ml.store.tables import DecisionRow, RunItemRow, ScoringRunRow, VisitOutcomeRow


@dataclass(frozen=True)
class Visit:
    """The latest visit of an address: when, what it found, where it is recorded."""

    inspected_at: dt.date
    outcome: str
    source: str


@dataclass(frozen=True)
class LatestDecision:
    """The latest stored decision on an address."""

    decision_id: str
    decision: str
    role: str | None
    key_name: str | None
    decided_at: dt.datetime
    run_id: str | None
    open: bool


#: the sources' latest visit per address, per loaded inspections table (the newest two)
_SOURCE_VISITS: OrderedDict[int, tuple[pd.DataFrame, dict[str, Visit]]] = OrderedDict()


def _source_visits(inspections: pd.DataFrame) -> dict[str, Visit]:
    """The latest visit of each address in the sources' inspections (computed once per table).

    A loaded source folder does not change: only the visits recorded through the
    service do, and :func:`latest_visits` reads those on every call.
    """
    cached = _SOURCE_VISITS.get(id(inspections))
    if cached is not None and cached[0] is inspections:
        return cached[1]
    part = inspections.loc[:, ["address_id", "inspected_at", "outcome"]].copy()
    part["inspected_at"] = pd.to_datetime(part["inspected_at"]).dt.date
    part = part.dropna(subset=["address_id", "inspected_at"])
    latest = part.sort_values("inspected_at", kind="stable").drop_duplicates(
        "address_id", keep="last"
    )
    visits = {
        str(a): Visit(inspected_at=d, outcome=str(o), source="sources")
        for a, d, o in zip(
            latest["address_id"], latest["inspected_at"], latest["outcome"], strict=True
        )
    }
    _SOURCE_VISITS[id(inspections)] = (inspections, visits)
    while len(_SOURCE_VISITS) > 2:
        _SOURCE_VISITS.popitem(last=False)
    return visits


def latest_visits(store: Store, tables: SourceTables) -> dict[str, Visit]:
    """The latest visit of every visited address, from the service's store and the sources.

    On one day, a visit recorded through the service wins over one in the sources (and
    of two recorded through the service, the later recorded).
    """
    visits = dict(_source_visits(tables.inspections))
    with store.transaction() as session:
        recorded = session.execute(
            select(
                VisitOutcomeRow.address_id, VisitOutcomeRow.inspected_at, VisitOutcomeRow.outcome
            ).order_by(VisitOutcomeRow.seq)
        ).all()
    for address, day, outcome in recorded:
        before = visits.get(str(address))
        if before is None or day >= before.inspected_at:
            visits[str(address)] = Visit(inspected_at=day, outcome=str(outcome), source="service")
    return visits


def in_cool_off(visit: Visit, as_of: dt.date, cool_off_days: int) -> bool:
    """Whether a visit keeps its address off the list of a run as of ``as_of``."""
    return visit.inspected_at >= as_of - dt.timedelta(days=cool_off_days)


def previous_ranks(store: Store, run: RunSummary, address_ids: Sequence[str]) -> dict[str, int]:
    """The ranks of these addresses on the previous run's work list (absent: not on it)."""
    if run.previous_run_id is None or not address_ids:
        return {}
    with store.transaction() as session:
        top_k = session.scalars(
            select(ScoringRunRow.top_k).where(ScoringRunRow.run_id == run.previous_run_id)
        ).one()
        rows = session.execute(
            select(RunItemRow.address_id, RunItemRow.rank).where(
                RunItemRow.run_id == run.previous_run_id,
                RunItemRow.address_id.in_(list(address_ids)),
                RunItemRow.rank <= top_k,
            )
        ).all()
    return {str(a): int(r) for a, r in rows}


def previous_as_of(store: Store, run: RunSummary) -> dt.date | None:
    """The date of the run's previous run, or None for a model's first run."""
    if run.previous_run_id is None:
        return None
    with store.transaction() as session:
        return session.scalars(
            select(ScoringRunRow.as_of).where(ScoringRunRow.run_id == run.previous_run_id)
        ).one()


def latest_decisions(store: Store, address_ids: Sequence[str]) -> dict[str, LatestDecision]:
    """The latest stored decision on each of these addresses that has one."""
    if not address_ids:
        return {}
    with store.transaction() as session:
        rows = list(
            session.scalars(
                select(DecisionRow)
                .where(DecisionRow.address_id.in_(list(address_ids)))
                .order_by(DecisionRow.seq)
            )
        )
        superseded = {r.supersedes for r in rows if r.supersedes is not None}
    out: dict[str, LatestDecision] = {}
    for row in rows:  # oldest first: the last one per address stays
        out[row.address_id] = LatestDecision(
            decision_id=row.decision_id,
            decision=row.decision,
            role=row.role,
            key_name=row.key_name,
            decided_at=row.decided_at,
            run_id=row.run_id,
            open=row.decision_id not in superseded,
        )
    return out
