"""Re-identification: the raw identity behind a pseudonym, for the data steward, audited.

A keyed hash cannot be reversed: the identity is found by pseudonymising the
raw extract the pseudonym came from, with the same key and mapping, and
keeping the rows whose pseudonym matches. Only the data steward holds the key
and the raw extracts; the service and the web app hold neither.

Every attempt, refused or not, is written to the hash-chained audit log
(:class:`stratum_ml.serving.audit.AuditLog`) *before* any identity is
returned: who (the operating-system user), when, which pseudonym, the case id
and the reason, and whether it was found; never the identity itself. A request
without a case id, or with a reason shorter than :data:`MIN_REASON`
characters, is refused.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from stratum_ml.pseudonymise.keys import PseudonymKey
from stratum_ml.pseudonymise.mapping import Mapping, PseudonymColumn
from stratum_ml.pseudonymise.pseudonym import domain_of
from stratum_ml.pseudonymise.run import _TablePseudonymiser, find_raw_file, read_raw_batches
from stratum_ml.serving.audit import DETAIL_MAX, AuditLog

__all__ = ["MIN_REASON", "Match", "Reidentification", "ReidentificationRefused", "reidentify"]

MIN_REASON = 20
MAX_CASE_ID = 40
ENDPOINT = "reidentify"
ROLE = "data_steward"


class ReidentificationRefused(ValueError):
    """The request was refused (and the refusal recorded); nothing was looked up."""


@dataclass(frozen=True)
class Match:
    """Where a pseudonym's identity was found: the raw spellings and the number of rows."""

    table: str
    raw_file: str
    raw_column: str
    values: tuple[str, ...]
    rows: int


@dataclass(frozen=True)
class Reidentification:
    """The outcome: the matches (empty when not found) and the audit record's number."""

    pseudonym: str
    domain: str
    matches: tuple[Match, ...]
    audit_seq: int


def _detail(user: str, pseudonym: str, case_id: str, reason: str, outcome: str) -> str:
    return f"{outcome} by {user}: pseudonym {pseudonym}, case {case_id}, reason: {reason}"


def _refusal(case_id: str, reason: str, pseudonym: str, user: str) -> str | None:
    if not case_id or "\n" in case_id or len(case_id) > MAX_CASE_ID:
        return f"a case id (1 to {MAX_CASE_ID} characters, one line) is required"
    if len(reason) < MIN_REASON:
        return f"a reason of at least {MIN_REASON} characters is required (the legal ground)"
    if len(_detail(user, pseudonym, case_id, reason, "found")) > DETAIL_MAX:
        room = DETAIL_MAX - len(_detail(user, pseudonym, case_id, "", "found"))
        return f"the reason is too long for the audit record: at most {room} characters here"
    return None


def reidentify(
    pseudonym: str,
    raw_dir: str | os.PathLike[str],
    mapping: Mapping,
    key: PseudonymKey,
    *,
    case_id: str,
    reason: str,
    audit: AuditLog,
    user: str | None = None,
    chunk_rows: int = 500_000,
) -> Reidentification:
    """Find the raw value(s) whose pseudonym is ``pseudonym``, and record the look-up.

    Parameters
    ----------
    pseudonym
        A pseudonym from a source folder (``P…``, ``S…`` or ``O…``).
    raw_dir
        The raw extracts the source folder was made from.
    mapping
        The mapping it was made with.
    key
        The key it was made with.
    case_id
        The case the look-up is for (required).
    reason
        Why the law allows it here (at least :data:`MIN_REASON` characters).
    audit
        The audit log to record the attempt in.
    user
        Who asks; default the operating-system user.
    chunk_rows
        Rows held in memory at a time.

    Returns
    -------
    Reidentification
        The matches; empty when the pseudonym was not made from this extract with this key.

    Raises
    ------
    ReidentificationRefused
        No case id, too short a reason, or not a pseudonym; the refusal is recorded.
    """
    user = user or getpass.getuser()
    case_id, reason, pseudonym = case_id.strip(), " ".join(reason.split()), pseudonym.strip()
    refusal = _refusal(case_id, reason, pseudonym[:40], user)
    domain = None
    if refusal is None:
        try:
            domain = domain_of(pseudonym)
        except ValueError as exc:
            refusal = str(exc)
    if refusal is not None or domain is None:
        detail = f"refused for {user}: {refusal}"
        audit.append(
            key_id=key.key_id, role=ROLE, endpoint=ENDPOINT, address_ids=[],
            model_version=None, status=403, detail=detail,
        )  # fmt: skip
        raise ReidentificationRefused(f"re-identification refused: {refusal}")
    matches = tuple(_scan(pseudonym, domain, Path(raw_dir), mapping, key, chunk_rows))
    outcome = "found" if matches else "not found"
    record = audit.append(
        key_id=key.key_id,
        role=ROLE,
        endpoint=ENDPOINT,
        address_ids=[],
        model_version=None,
        status=200 if matches else 404,
        detail=_detail(user, pseudonym, case_id, reason, outcome),
    )
    return Reidentification(pseudonym, domain, matches, record["seq"])


def _scan(
    pseudonym: str, domain: str, raw_dir: Path, mapping: Mapping, key: PseudonymKey, chunk_rows: int
) -> list[Match]:
    found = []
    for table, tm in mapping.tables.items():
        hasher = _TablePseudonymiser(key, tm)
        for column, spec in tm.columns.items():
            if not isinstance(spec, PseudonymColumn) or spec.domain != domain:
                continue
            path = find_raw_file(raw_dir, tm.file)
            values: set[str] = set()
            rows = 0
            for batch in read_raw_batches(path, [spec.source], chunk_rows):
                raw = batch.column(0)
                out, _ = hasher.column(column, domain, raw)
                hit = np.flatnonzero(
                    pc.fill_null(pc.equal(out, pseudonym), False).to_numpy(zero_copy_only=False)
                )
                if len(hit):
                    rows += len(hit)
                    values.update(str(v) for v in raw.take(hit).to_pylist())
            if rows:
                found.append(Match(table, path.name, spec.source, tuple(sorted(values)), rows))
    return found
