"""The case handler's dossier of one address, as known on the scoring date.

Built from the model-input tables (:class:`~stratum_ml.sources.tables.SourceTables`)
only. Protected attributes live in a separate object that this module never
receives, so a dossier cannot contain them.

Every row obeys the feature library's as-of rule
(:func:`stratum_ml.features.asof.asof_join`): a row counts only when its own
date lies strictly before the scoring date, and an end date on or after it is
not yet known (shown as still in force). A dossier therefore shows what the
model saw, not what happened later.

Linked addresses follow the network features' definition
(:mod:`stratum_ml.features.network`): another address where a person registered
here was also registered, that a private owner of this address also owned, or
where an establishment registered here was also registered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from stratum_ml.features.asof import REF, Q, asof_join, make_queries, query_keys
from stratum_ml.features.network import LINK_SOURCES
from stratum_ml.features.registry import FeatureParams
from stratum_ml.serving.api_models import (
    AddressFacts,
    BusinessOut,
    DossierResponse,
    LinkedAddress,
    OwnershipOut,
    ReportOut,
    Stay,
    VisitOut,
    WaterPeriod,
)
from stratum_ml.sources.tables import SourceTables

#: most linked addresses listed in one dossier (all are counted)
MAX_LINKED = 500


def _date(value: Any) -> dt.date | None:
    return None if pd.isna(value) else pd.Timestamp(value).date()


def _text(value: Any) -> str | None:
    return None if pd.isna(value) else str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _known(
    table: pd.DataFrame | None,
    address_id: str,
    as_of: dt.date,
    date_col: str,
    end_col: str | None = None,
) -> pd.DataFrame:
    """Rows of ``table`` about ``address_id`` known before ``as_of``, oldest first."""
    if table is None:
        return pd.DataFrame()
    rows = table.loc[table["address_id"] == address_id]
    keys = query_keys(make_queries([address_id], as_of))
    known = asof_join(rows, keys, date_col=date_col, end_col=end_col)
    return known.drop(columns=[Q, REF]).sort_values(date_col, kind="stable")


def _linked(tables: SourceTables, address_id: str, as_of: dt.date) -> list[LinkedAddress]:
    """Other addresses sharing a resident, a private owner or an establishment before ``as_of``."""
    unlinked_owners = FeatureParams().unlinked_owner_types
    cutoff = pd.Timestamp(as_of)
    links: list[LinkedAddress] = []
    for via, table_name, entity, start in LINK_SOURCES:
        table = tables.get(table_name)
        if table is None:
            continue
        if table_name == "ownership":
            table = table.loc[~table["owner_type"].isin(unlinked_owners)]
        known = table.loc[table[start] < cutoff, ["address_id", entity]]
        shared = known.loc[known["address_id"] == address_id, entity].unique()
        others = known.loc[known[entity].isin(shared) & (known["address_id"] != address_id)]
        for other, through in others.drop_duplicates().itertuples(index=False):
            links.append(LinkedAddress(address_id=str(other), via=via, through=str(through)))
    return sorted(links, key=lambda link: (link.address_id, link.via, link.through))


def build_dossier(tables: SourceTables, address_id: str, as_of: dt.date) -> DossierResponse:
    """The dossier of one address as known on ``as_of``.

    Parameters
    ----------
    tables
        The validated model-input tables the service loaded.
    address_id
        A BAG verblijfsobject id.
    as_of
        The scoring date.

    Returns
    -------
    DossierResponse

    Raises
    ------
    KeyError
        When the address is not in the address register.
    """
    addresses = tables.addresses.loc[tables.addresses["address_id"] == address_id]
    if addresses.empty:
        raise KeyError(address_id)
    a = _records(addresses)[0]
    facts = AddressFacts(
        postcode=str(a["postcode"]),
        house_number=int(a["house_number"]),
        house_number_suffix=_text(a["house_number_suffix"]),
        district=str(a["district_code"]),
        neighbourhood=str(a["neighbourhood_code"]),
        floor_area_m2=int(a["floor_area_m2"]),
        use_purpose=str(a["use_purpose"]),
        construction_year=int(a["construction_year"]),
        tenure=str(a["tenure"]),
    )
    stays = _known(tables.registrations, address_id, as_of, "registered_from", "registered_until")
    water = _known(tables.water_usage, address_id, as_of, "period_end")
    reports = _known(tables.reports, address_id, as_of, "reported_at")
    visits = _known(tables.inspections, address_id, as_of, "inspected_at")
    businesses = _known(tables.businesses, address_id, as_of, "registered_from", "registered_until")
    owners = _known(tables.ownership, address_id, as_of, "owned_from", "owned_until")
    linked = _linked(tables, address_id, as_of)
    return DossierResponse(
        address_id=address_id,
        as_of=as_of,
        address=facts,
        registrations=[
            Stay(
                person_id=str(r["person_id"]),
                surname_key=str(r["surname_key"]),
                birth_year=int(r["birth_year"]),
                registered_from=pd.Timestamp(r["registered_from"]).date(),
                registered_until=_date(r["registered_until"]),
            )
            for r in _records(stays)
        ],
        water_usage=[
            WaterPeriod(
                period_start=pd.Timestamp(r["period_start"]).date(),
                period_end=pd.Timestamp(r["period_end"]).date(),
                volume_m3=float(r["volume_m3"]),
                m3_per_day=float(r["volume_m3"])
                / max((pd.Timestamp(r["period_end"]) - pd.Timestamp(r["period_start"])).days, 1),
            )
            for r in _records(water)
        ],
        reports=[
            ReportOut(
                report_id=str(r["report_id"]),
                reported_at=pd.Timestamp(r["reported_at"]).to_pydatetime(),
                category=str(r["category"]),
                source=str(r["source"]),
            )
            for r in _records(reports)
        ],
        visits=[
            VisitOut(
                inspection_id=str(r["inspection_id"]),
                inspected_at=pd.Timestamp(r["inspected_at"]).date(),
                reason=str(r["reason"]),
                outcome=str(r["outcome"]),
                violation_type=_text(r["violation_type"]),
            )
            for r in _records(visits)
        ],
        businesses=[
            BusinessOut(
                business_id=str(r["business_id"]),
                sbi_code=str(r["sbi_code"]),
                registered_from=pd.Timestamp(r["registered_from"]).date(),
                registered_until=_date(r["registered_until"]),
            )
            for r in _records(businesses)
        ],
        ownership=[
            OwnershipOut(
                owner_id=str(r["owner_id"]),
                owner_type=str(r["owner_type"]),
                owned_from=pd.Timestamp(r["owned_from"]).date(),
                owned_until=_date(r["owned_until"]),
            )
            for r in _records(owners)
        ],
        linked_addresses=linked[:MAX_LINKED],
        n_linked_addresses=len(linked),
        absent_sources=[
            name
            for name in ("water_usage", "businesses", "ownership", "reports")
            if tables.get(name) is None
        ],
    )
