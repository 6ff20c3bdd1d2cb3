"""The id of a scoring run: the same date, model version and sources give the same id."""

from __future__ import annotations

import datetime as dt
import hashlib

#: hexadecimal characters of the sha256 kept in a run id
RUN_ID_LENGTH = 16


def run_id_of(as_of: dt.date, model_name: str, model_version: str, sources: str) -> str:
    """The run id of scoring ``sources`` as of ``as_of`` with one model version.

    Parameters
    ----------
    as_of : datetime.date
        The scoring date.
    model_name, model_version : str
        The registered model and version.
    sources : str
        The sources fingerprint (:func:`stratum_ml.sources.tables.sources_fingerprint`).

    Returns
    -------
    str
        The first 16 hexadecimal characters of a sha256 over the four.

    Examples
    --------
    >>> a = run_id_of(dt.date(2026, 11, 1), "stratum-risk", "3", "ab12")
    >>> a == run_id_of(dt.date(2026, 11, 1), "stratum-risk", "3", "ab12"), len(a)
    (True, 16)
    >>> a == run_id_of(dt.date(2026, 12, 1), "stratum-risk", "3", "ab12")
    False
    """
    key = "\x1f".join((as_of.isoformat(), model_name, model_version, sources))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:RUN_ID_LENGTH]
