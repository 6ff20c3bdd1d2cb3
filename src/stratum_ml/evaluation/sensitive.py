"""Protected attributes at address level, for the fairness audit only.

This is the one module that reads ``audit_attributes``. It aggregates the
attributes of the persons registered at an address *on the reference date* to
address-level groups (the data contract's example: "the residents include
someone born outside Europe"), and adds the district and neighbourhood. The
result goes to :func:`~stratum_ml.evaluation.fairness.fairness_audit` and the
proxy check; it never joins a feature table.
"""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import Q, asof_join, in_force, query_keys
from stratum_ml.sources.tables import AuditTables, SourceTables

#: address-level attribute -> (audit column, value): "a registered resident has that value"
RESIDENT_GROUPS: dict[str, tuple[str, str]] = {
    "any_resident_born_outside_europe": ("birth_country_group", "outside_europe"),
    "any_resident_born_in_europe_outside_nl": ("birth_country_group", "europe_other"),
    "any_female_resident": ("gender", "female"),
}


def address_groups(
    tables: SourceTables, audit: AuditTables | None, queries: pd.DataFrame
) -> pd.DataFrame:
    """Protected groups of each query's address as of its reference date.

    Parameters
    ----------
    tables
        Source tables (registrations and addresses).
    audit
        The audit attributes; ``None`` gives only district and neighbourhood.
    queries
        Columns ``address_id`` and ``ref_date`` (as for features).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``queries``: ``district``, ``neighbourhood`` and, with audit
        attributes, one boolean-like column per :data:`RESIDENT_GROUPS` entry
        (``"True"`` / ``"False"``; missing for an address without registered
        residents: their group is unknown, not False, and the audit reports it as the
        group ``"missing"``).
    """
    keys = query_keys(queries)
    place = keys.merge(
        tables.addresses[["address_id", "district_code", "neighbourhood_code"]],
        on="address_id",
        how="left",
    ).sort_values(Q)
    out = pd.DataFrame(
        {
            "district": place["district_code"].to_numpy(),
            "neighbourhood": place["neighbourhood_code"].to_numpy(),
        },
        index=queries.index,
    )
    if audit is None:
        return out
    residents = in_force(
        asof_join(
            tables.registrations, keys, date_col="registered_from", end_col="registered_until"
        ),
        "registered_until",
    )[[Q, "person_id"]].merge(audit.audit_attributes, on="person_id", how="left")
    has_residents = pd.Series(False, index=range(len(queries)))
    has_residents.loc[residents[Q].unique()] = True
    for name, (column, value) in RESIDENT_GROUPS.items():
        hit = (residents[column] == value).groupby(residents[Q]).any()
        hit = hit.reindex(range(len(queries)), fill_value=False)
        labels = hit.map({True: "True", False: "False"}).where(has_residents)
        out[name] = labels.to_numpy()
    return out
