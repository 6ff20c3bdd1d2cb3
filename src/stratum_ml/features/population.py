"""The scored population: every dwelling, and how it is ranked today.

A *dwelling* is an address whose BAG use purpose is ``woonfunctie``. Training
evaluates on them, scoring ranks them, the service explains why any other
address is not scored, and the visit-propensity model draws its controls from
them: all read the definition here.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from stratum_ml.features.asof import make_queries

__all__ = [
    "CURRENT_PRACTICE_FEATURE",
    "DWELLING_USE_PURPOSE",
    "dwelling_ids",
    "is_dwelling",
    "population_queries",
]

#: the BAG use purpose (gebruiksdoel) of a dwelling
DWELLING_USE_PURPOSE = "woonfunctie"
#: the "current practice" baseline ranking: by the number of reports in the past year
CURRENT_PRACTICE_FEATURE = "reports_all_365d"


def is_dwelling(use_purpose: pd.Series) -> pd.Series:
    """Whether each address is a dwelling, from its BAG use purpose.

    Examples
    --------
    >>> is_dwelling(pd.Series(["woonfunctie", "winkelfunctie", None])).tolist()
    [True, False, False]
    """
    return use_purpose == DWELLING_USE_PURPOSE


def dwelling_ids(addresses: pd.DataFrame) -> pd.Series:
    """The ``address_id`` of every dwelling in an address table, in table order."""
    ids: pd.Series = addresses.loc[is_dwelling(addresses["use_purpose"]), "address_id"]
    return ids


def population_queries(addresses: pd.DataFrame, as_of: dt.date | pd.Timestamp) -> pd.DataFrame:
    """Queries for every dwelling as of ``as_of`` (see :func:`~.asof.make_queries`).

    Parameters
    ----------
    addresses : pandas.DataFrame
        The ``addresses`` source table (``address_id``, ``use_purpose``).
    as_of : datetime.date or pandas.Timestamp
        The reference date of every query.

    Returns
    -------
    pandas.DataFrame
        Columns ``address_id`` and ``ref_date``, indexed by address id.
    """
    return make_queries(dwelling_ids(addresses), as_of)
