"""Re-identification: refused without a case and a reason; every attempt audited, no identity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.pseudonymise.keys import PseudonymKey
from stratum_ml.pseudonymise.reidentify import ReidentificationRefused, reidentify
from stratum_ml.serving.audit import AuditLog, verify_log

from .conftest import Town

REASON = "Awb art. 5:17 onderzoek, besluit handhaving dossier 2026-114"


def _row(town: Town, n: int = 4) -> tuple[str, str, str]:
    raw = pd.read_csv(town.raw / "brp_verblijfplaatsen.csv", dtype=str, keep_default_na=False)
    out = pd.read_csv(town.out / "registrations.csv", dtype=str, keep_default_na=False)
    return raw["bsn"][n], out["person_id"][n], raw["geslachtsnaam"][n]


def test_finds_the_identity_and_records_who_when_what_and_why(town: Town, tmp_path: Path) -> None:
    bsn, pseudonym, _ = _row(town)
    log = tmp_path / "audit.jsonl"
    result = reidentify(
        pseudonym, town.raw, town.mapping, town.key, case_id="ZAAK-0042", reason=REASON,
        audit=AuditLog(log), user="steward-anna",
    )  # fmt: skip
    tables = {m.table for m in result.matches}
    assert tables == {"registrations", "audit_attributes"}
    assert all(m.values == (bsn,) for m in result.matches)
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["endpoint"] == "reidentify" and record["role"] == "data_steward"
    assert record["status"] == 200 and record["seq"] == result.audit_seq
    for part in ("steward-anna", pseudonym, "ZAAK-0042", REASON):
        assert part in record["detail"]
    assert bsn not in log.read_text()
    assert town.key.secret.hex() not in log.read_text()
    assert verify_log(log).ok


def test_family_name_pseudonym_gives_the_ways_it_was_written(town: Town, tmp_path: Path) -> None:
    raw = pd.read_csv(town.out / "registrations.csv", dtype=str, keep_default_na=False)
    result = reidentify(
        raw["surname_key"][4], town.raw, town.mapping, town.key, case_id="Z-1", reason=REASON,
        audit=AuditLog(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    assert result.domain == "family_name" and result.matches
    assert _row(town)[2] in result.matches[0].values


@pytest.mark.parametrize(
    ("case_id", "reason", "why"),
    [("", REASON, "case id"), ("Z-1", "", "reason of at least 20"),
     ("Z-1", "because I want to", "reason of at least 20"), ("Z-1", "x" * 500, "too long")],
)  # fmt: skip
def test_refused_without_case_id_and_reason_and_the_refusal_is_recorded(
    town: Town, tmp_path: Path, case_id: str, reason: str, why: str
) -> None:
    _, pseudonym, _ = _row(town)
    log = tmp_path / "audit.jsonl"
    with pytest.raises(ReidentificationRefused, match=why):
        reidentify(
            pseudonym, town.raw, town.mapping, town.key, case_id=case_id, reason=reason,
            audit=AuditLog(log),
        )  # fmt: skip
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["status"] == 403 and record["detail"].startswith("refused")
    assert verify_log(log).ok


def test_not_a_pseudonym_or_another_key_finds_nothing(town: Town, tmp_path: Path) -> None:
    bsn, pseudonym, _ = _row(town)
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(ReidentificationRefused, match="not a pseudonym"):
        reidentify(bsn, town.raw, town.mapping, town.key, case_id="Z", reason=REASON, audit=log)
    result = reidentify(
        pseudonym, town.raw, town.mapping, PseudonymKey.new(), case_id="Z", reason=REASON,
        audit=log,
    )  # fmt: skip
    assert result.matches == ()
    assert json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])["status"] == 404
    assert bsn not in (tmp_path / "audit.jsonl").read_text()
