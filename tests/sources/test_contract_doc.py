"""docs/data-contract.md is generated from the contract and kept current."""

from __future__ import annotations

from pathlib import Path

from stratum_ml.sources.contract import CONTRACT
from stratum_ml.sources.contract_doc import column_rule, render_contract

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"
REGENERATE = "python -m stratum_ml.sources.contract_doc docs/data-contract.md"


def test_committed_document_is_current() -> None:
    assert DOC.read_text("utf-8") == render_contract(), (
        f"docs/data-contract.md is out of date with sources/contract.py; run: {REGENERATE}"
    )


def test_every_table_and_column_is_documented() -> None:
    text = render_contract()
    for table in CONTRACT:
        assert f"## {table.name} — " in text
        for column in table.columns:
            assert f"| {column.name} | {column.kind} |" in text


def test_rules_follow_the_specs() -> None:
    by_name = {t.name: t for t in CONTRACT}
    inspections = by_name["inspections"]
    rule = column_rule(inspections, inspections.column("violation_type"))
    assert "set only when outcome = violation" in rule
    assert "nullable" in rule
    water = by_name["water_usage"]
    assert column_rule(water, water.column("period_end")) == "> period_start"
    addresses = by_name["addresses"]
    assert "current year" in column_rule(addresses, addresses.column("construction_year"))
    assert "`^[1-9][0-9]{3}[A-Z]{2}$`" in column_rule(addresses, addresses.column("postcode"))


def test_audit_only_table_says_it_is_never_a_feature() -> None:
    text = render_contract()
    audit = text.split("## audit_attributes")[1].split("## ")[0]
    assert "never become model features" in audit
