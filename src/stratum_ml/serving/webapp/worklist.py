"""The web app's work list: a stored run's list, with addresses, names, state and filters.

:func:`build_work_list` takes a stored run's work list (:func:`stratum_ml.runs.work_list`;
the fallback ranking while the model is paused) and adds what a person reads:
the address (street and house number when the sources have street names, the
postcode always), district and neighbourhood names (from the optional ``areas``
table; the CBS codes otherwise), the likely violation type with its share (as
the run stored it; runs stored before it was kept have none), the latest decision
and the latest visit. For the served run, addresses visited within the cool-off
are left off, as in the API's ``priority_list`` (not while paused: the fallback
list, as the API's, is whole). :func:`filter_rows` and :func:`sort_rows` apply
the page's filters and order; :func:`csv_text` writes what is selected, with no
person data
and with text a spreadsheet would run as a formula neutralised.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from stratum_ml.runs import RunSummary
from stratum_ml.runs.read import fallback_list, work_list
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.webapp.i18n import Language
from stratum_ml.serving.work_list import (
    LatestDecision,
    Visit,
    in_cool_off,
    latest_decisions,
    latest_visits,
)
from stratum_ml.store.switch import PauseState, current_pause

SortKey = Literal["rank", "chance", "postcode", "district"]
SORT_KEYS: tuple[SortKey, ...] = ("rank", "chance", "postcode", "district")
PAGE_SIZES = (25, 50, 100, 250)
#: the first characters a spreadsheet treats as the start of a formula
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Row:
    """One line of the work list."""

    rank: int
    address_id: str
    postcode: str
    house_number: str
    street: str | None
    city: str | None
    district: str
    district_name: str | None
    neighbourhood: str
    neighbourhood_name: str | None
    probability: float | None
    violation_type: str | None
    violation_share: float | None
    reasons: list[str]
    state: str | None
    previous_rank: int | None
    decision: LatestDecision | None
    visit: Visit | None
    #: reports in the past year: what the fallback ranking ranks by (served run, paused)
    reports_past_year: int | None = None

    @property
    def address(self) -> str:
        """Street and number with the postcode, or postcode and number without streets."""
        return address_words(self.street, self.house_number, self.postcode)


def address_words(street: str | None, house_number: str, postcode: str) -> str:
    """An address as people read it: "Street 12a, 1234AB", or "1234AB 12a" without streets."""
    if street:
        return f"{street} {house_number}, {postcode}"
    return f"{postcode} {house_number}"


@dataclass
class WorkList:
    """A run's work list as the page shows it, before filters."""

    run: RunSummary
    pause: PauseState | None
    rows: list[Row]
    left_off_visited: int
    has_streets: bool
    has_area_names: bool
    has_violation_type: bool
    districts: list[tuple[str, str]] = field(default_factory=list)
    neighbourhoods: list[tuple[str, str]] = field(default_factory=list)
    violation_types: list[str] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        """Whether the model is paused: the list is then the fallback ranking."""
        return self.pause is not None


def area_names(state: ServiceState) -> dict[str, str]:
    """Area code -> name from the optional ``areas`` source table (empty when absent)."""
    areas = getattr(state.tables, "areas", None)
    if not isinstance(areas, pd.DataFrame) or areas.empty:
        return {}
    if not {"code", "name"} <= set(areas.columns):
        return {}
    return {str(c): str(n) for c, n in zip(areas["code"], areas["name"], strict=True)}


def _violation_types(table: pd.DataFrame) -> dict[str, tuple[str, float | None]]:
    """Address -> (likely violation type, its share), as the run stored them.

    Runs stored before the type was kept, and runs of a model without a violation
    type model, have none: the list shows "—" and offers no filter on it.
    """
    if "violation_type" not in table.columns:
        return {}
    shares = (
        table["violation_type_share"]
        if "violation_type_share" in table.columns
        else pd.Series(math.nan, index=table.index)
    )
    return {
        str(a): (str(v), None if s is None or pd.isna(s) else float(s))
        for a, v, s in zip(table["address_id"], table["violation_type"], shares, strict=True)
        if isinstance(v, str) and v
    }


def _address_facts(state: ServiceState, ids: Sequence[str]) -> pd.DataFrame:
    addresses = state.tables.addresses.set_index("address_id")
    wanted = ["postcode", "house_number", "house_number_suffix"]
    wanted += [c for c in ("street_name", "city") if c in addresses.columns]
    return addresses.loc[list(ids), wanted]


def address_labels(state: ServiceState, ids: Sequence[str]) -> dict[str, str]:
    """:func:`address_words` of these addresses (those in the address register)."""
    known = state.tables.addresses["address_id"].isin(list(ids))
    facts = _address_facts(state, state.tables.addresses.loc[known, "address_id"].tolist())
    streets = "street_name" in facts.columns
    return {
        str(a): address_words(
            _text(f["street_name"]) if streets else None,
            _house_number(f),
            str(f["postcode"]),
        )
        for a, f in facts.to_dict("index").items()
    }


def _house_number(fact: dict[Any, Any]) -> str:
    return f"{int(fact['house_number'])}{_text(fact['house_number_suffix']) or ''}"


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def build_work_list(state: ServiceState, run: RunSummary, language: Language) -> WorkList:
    """The work list of a stored run, ready to filter and show."""
    pause = current_pause(state.store)
    paused_state = pause is not None
    table = (
        fallback_list(state.store, run.run_id)
        if paused_state
        else work_list(state.store, run.run_id, language=language)
    )
    visits = latest_visits(state.store, state.tables)
    left_off = 0
    # the served run's model list: the cool-off applies, as in the API (whose fallback
    # list, while paused, leaves nobody off)
    if run.run_id == state.run.run_id and not paused_state:
        recent = {
            a for a, v in visits.items() if in_cool_off(v, state.as_of, state.serving.cool_off_days)
        }
        keep = ~table["address_id"].isin(recent)
        left_off = int((~keep).sum())
        table = table.loc[keep]
    ids = table["address_id"].astype(str).tolist()
    facts = _address_facts(state, ids)
    facts_of: dict[str, dict[str, Any]] = {
        str(k): {str(c): x for c, x in v.items()} for k, v in facts.to_dict("index").items()
    }
    names = area_names(state)
    kinds = {} if paused_state else _violation_types(table)
    decided = latest_decisions(state.store, ids)
    has_streets = "street_name" in facts.columns
    reports = _reports(state, run, ids) if paused_state else {}
    rows: list[Row] = []
    for record in table.to_dict("records"):
        address = str(record["address_id"])
        fact = facts_of[address]
        kind = kinds.get(address)
        previous = record.get("previous_rank")
        rows.append(
            Row(
                rank=int(record["rank"]),
                address_id=address,
                postcode=str(fact["postcode"]),
                house_number=_house_number(fact),
                street=_text(fact["street_name"]) if has_streets else None,
                city=_text(fact["city"]) if "city" in facts.columns else None,
                district=str(record["district"]),
                district_name=names.get(str(record["district"])),
                neighbourhood=str(record["neighbourhood"]),
                neighbourhood_name=names.get(str(record["neighbourhood"])),
                probability=None if paused_state else float(record["probability"]),
                violation_type=None if kind is None else kind[0],
                violation_share=None if kind is None else kind[1],
                reasons=[
                    str(record[c])
                    for c in ("reason_1", "reason_2", "reason_3")
                    if c in record and isinstance(record[c], str)
                ],
                state=None if paused_state else str(record["state"]),
                previous_rank=None if previous is None or pd.isna(previous) else int(previous),
                decision=decided.get(address),
                visit=visits.get(address),
                reports_past_year=reports.get(address),
            )
        )

    def options(codes: set[str]) -> list[tuple[str, str]]:
        return sorted(((c, names.get(c, c)) for c in codes), key=lambda p: p[1])

    return WorkList(
        run=run,
        pause=pause,
        rows=rows,
        left_off_visited=left_off,
        has_streets=has_streets,
        has_area_names=bool(names),
        has_violation_type=bool(kinds),
        districts=options({r.district for r in rows}),
        neighbourhoods=options({r.neighbourhood for r in rows}),
        violation_types=sorted({r.violation_type for r in rows if r.violation_type}),
    )


def _reports(state: ServiceState, run: RunSummary, ids: list[str]) -> dict[str, int]:
    """Reports in the past year of these addresses, as the fallback ranks them.

    Known for the served run only (other runs stored their fallback rank, not the count).
    """
    if run.run_id != state.run.run_id:
        return {}
    counts = state.fallback["reports_past_year"].reindex(ids).dropna()
    return {str(a): int(n) for a, n in counts.items()}


@dataclass(frozen=True)
class Filters:
    """The work list's filters and order, as read from the page's query string."""

    district: str | None = None
    neighbourhood: str | None = None
    violation_type: str | None = None
    min_chance: float | None = None
    only_new: bool = False
    sort: SortKey = "rank"
    page: int = 1
    per_page: int = PAGE_SIZES[0]

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        """Read filters from query parameters; what cannot be read is ignored (no filter)."""

        def opt(name: str) -> str | None:
            value = query.get(name, "").strip()
            return value[:64] or None

        def number(name: str, low: float, high: float) -> float | None:
            try:
                value = float(query.get(name, "").replace(",", "."))
            except ValueError:
                return None
            return value if low <= value <= high else None

        sort = query.get("sort", "rank")
        per_page = int(number("per_page", 1, 1000) or PAGE_SIZES[0])
        return cls(
            district=opt("district"),
            neighbourhood=opt("neighbourhood"),
            violation_type=opt("violation_type"),
            min_chance=number("min_chance", 0, 100),
            only_new=query.get("only_new") in ("1", "on", "true"),
            sort=sort if sort in SORT_KEYS else "rank",
            page=max(1, int(number("page", 1, 1e6) or 1)),
            per_page=per_page if per_page in PAGE_SIZES else PAGE_SIZES[0],
        )

    def without_model(self) -> tuple[Filters, list[str]]:
        """These filters for the fallback ranking, and the names of those it leaves out.

        While the model is paused the list has no chance, no likely violation type and
        no state against the previous run, so the filters on them are left out (as the
        API's ``priority_list`` leaves out ``min_score`` and ``theme``), and sorting by
        chance sorts by rank.
        """
        left_out = [
            name
            for name, on in (
                ("violation_type", self.violation_type is not None),
                ("min_chance", self.min_chance is not None),
                ("only_new", self.only_new),
            )
            if on
        ]
        kept = replace(
            self,
            violation_type=None,
            min_chance=None,
            only_new=False,
            sort="rank" if self.sort == "chance" else self.sort,
        )
        return kept, left_out

    def query(self, **changes: object) -> str:
        """The query string of these filters, with ``changes`` applied."""
        values: dict[str, object] = {
            "district": self.district,
            "neighbourhood": self.neighbourhood,
            "violation_type": self.violation_type,
            "min_chance": None if self.min_chance is None else f"{self.min_chance:g}",
            "only_new": "1" if self.only_new else None,
            "sort": None if self.sort == "rank" else self.sort,
            "page": None if self.page == 1 else self.page,
            "per_page": None if self.per_page == PAGE_SIZES[0] else self.per_page,
        }
        values.update(changes)
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in values.items() if v is not None})


def filter_rows(rows: list[Row], filters: Filters) -> list[Row]:
    """The rows that pass the filters, in list order."""
    out = rows
    if filters.district:
        out = [r for r in out if r.district == filters.district]
    if filters.neighbourhood:
        out = [r for r in out if r.neighbourhood == filters.neighbourhood]
    if filters.violation_type:
        out = [r for r in out if r.violation_type == filters.violation_type]
    if filters.min_chance is not None:
        least = filters.min_chance / 100
        out = [r for r in out if r.probability is not None and r.probability >= least]
    if filters.only_new:
        out = [r for r in out if r.state == "new"]
    return out


def sort_rows(rows: list[Row], key: SortKey) -> list[Row]:
    """Rows in the order asked for; ties keep the list's rank order."""
    by_rank = sorted(rows, key=lambda r: r.rank)
    if key == "chance":
        return sorted(by_rank, key=lambda r: -(r.probability or 0.0))
    if key == "postcode":
        return sorted(by_rank, key=lambda r: (r.postcode, r.house_number))
    if key == "district":
        return sorted(by_rank, key=lambda r: r.district_name or r.district)
    return by_rank


def neutralise(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a ``'``."""
    words = "" if value is None else str(value)
    return "'" + words if words.startswith(FORMULA_PREFIXES) else words


CSV_COLUMNS = (
    "rank",
    "address_id",
    "street",
    "house_number",
    "postcode",
    "district",
    "neighbourhood",
    "likely_violation_type",
    "chance_percent",
    "reason_1",
    "reason_2",
    "reason_3",
    "state",
    "decision",
)


def csv_text(rows: Sequence[Row]) -> str:
    """The rows as CSV: address-level facts only (no pseudonyms, no person data)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        reasons = [*r.reasons, "", "", ""][:3]
        writer.writerow(
            [
                neutralise(v)
                for v in (
                    r.rank,
                    r.address_id,
                    r.street or "",
                    r.house_number,
                    r.postcode,
                    r.district_name or r.district,
                    r.neighbourhood_name or r.neighbourhood,
                    r.violation_type or "",
                    "" if r.probability is None else f"{100 * r.probability:.1f}",
                    *reasons,
                    r.state or "",
                    "" if r.decision is None else r.decision.decision,
                )
            ]
        )
    return buffer.getvalue()
