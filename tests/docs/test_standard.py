"""The register entry against publication standard 1.0.0, and `stratum docs --check`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.docs.organisation import read_organisation
from stratum_ml.docs.pack import MANIFEST, REGISTER_FILE, check_pack, pack_hash
from stratum_ml.docs.standard import check_entry, field_specs, spec_source

EXAMPLE = Path(__file__).parents[2] / "examples" / "organisation.yaml"


def _valid() -> dict[str, Any]:
    return {
        "name": "Risicogestuurde prioritering van huisbezoeken",
        "description_short": "Een model zet adressen in volgorde.",
        "organization": "Gemeente Voorbeeldstad",
        "category": ["Wonen", "Openbare orde en veiligheid"],
        "status": "In gebruik",
        "begin_date": "2026-03",
        "contact_email": "algoritmes@voorbeeldstad.example.nl",
        "publication_category": "Hoog-risico AI-systeem",
        "goal": "<p>Doel.</p>",
        "risks": "<ul><li>Selectieve labels.</li></ul>",
        "source_data_grouping": [{"title": "BRP", "link": "https://www.rvig.nl/brp"}],
        "lang": "nld",
        "standard_version": "1.0.0",
        "source_id": "stratum-risk versie 3",
        "tags": "huisbezoek",
    }


def test_the_committed_field_list_is_the_standard_with_its_source() -> None:
    specs = field_specs()
    assert len(specs) == 29
    assert {n for n, s in specs.items() if s.required} == {
        "name",
        "description_short",
        "organization",
        "status",
        "contact_email",
        "publication_category",
        "lang",
    }
    assert specs["description_short"].max_length == 350
    assert specs["category"].max_items == 3
    assert specs["publication_category"].permitted_values == (
        "Hoog-risico AI-systeem",
        "Impactvolle algoritmes",
        "Overige algoritmes",
    )
    assert [i.name for i in specs["lawful_basis_grouping"].items] == ["title", "link"]
    source = spec_source()
    assert source["path"] == "backend/app/schemas/config/v1_0_0.json"
    assert "EUPL-1.2" in source["licence"] and len(source["sha256"]) == 64


def test_a_conforming_entry_has_no_problems() -> None:
    assert check_entry(_valid()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"department": "Handhaving"}, "department: not a field of publication standard 1.0.0"),
        ({"organization": None}, "organization: required, but missing"),
        ({"contact_email": ""}, "contact_email: required, but missing"),
        ({"standard_version": None}, "standard_version: required, but missing"),
        ({"status": "Actief"}, "status: 'Actief' is not a permitted value"),
        ({"lang": "eng"}, "lang: 'eng' is not a permitted value"),
        ({"standard_version": "0.4.0"}, "standard_version: '0.4.0' is not a permitted value"),
        ({"category": ["Wonen", "Sport"]}, "category[1]: 'Sport' is not a permitted value"),
        ({"category": ["Wonen", "Werk", "Recht", "Economie"]}, "category: 4 items"),
        ({"name": "x" * 101}, "name: 101 characters, more than the 100 allowed"),
        ({"description_short": "y" * 351}, "description_short: 351 characters"),
        ({"goal": "<script>x</script>"}, "goal: HTML tags script not allowed"),
        ({"name": "<p>x</p>"}, "name: HTML tags p not allowed (allowed: none)"),
        ({"begin_date": "2026-13"}, "begin_date: '2026-13' is not a month"),
        ({"source_data_grouping": [{"title": "BRP"}]}, "source_data_grouping[0].link: required"),
        ({"source_data_grouping": [{"title": "BRP", "link": "x", "n": 1}]}, "unknown field 'n'"),
        ({"tags": ["a", "b"]}, "tags: must be a text, not list"),
    ],
)
def test_each_departure_from_the_standard_is_named(change: dict[str, Any], expected: str) -> None:
    entry = _valid() | change
    problems = check_entry(entry)
    assert any(p.startswith(expected) or expected in p for p in problems), problems


def _write_pack(folder: Path, entry: dict[str, Any]) -> None:
    """A pack of one register entry with a manifest that matches it."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(entry, ensure_ascii=False).encode("utf-8")
    (folder / REGISTER_FILE).write_bytes(data)
    files = {REGISTER_FILE: hashlib.sha256(data).hexdigest()}
    manifest = {"files": files, "pack_sha256": pack_hash(files)}
    (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, None),
        ({"impact": "hoog"}, "impact: not a field"),
        ({"publication_category": None}, "publication_category: required, but missing"),
        ({"status": "Actief"}, "status: 'Actief' is not a permitted value"),
        ({"source_id": "v" * 101}, "source_id: 101 characters"),
    ],
)
def test_docs_check_fails_a_pack_whose_entry_departs_from_the_standard(
    tmp_path: Path, change: dict[str, Any], expected: str | None
) -> None:
    folder = tmp_path / "pack"
    _write_pack(folder, _valid() | change)
    result = CliRunner().invoke(app, ["docs", "--check", str(folder)])
    if expected is None:
        assert result.exit_code == 0, result.output
        assert "OK" in result.output
    else:
        assert result.exit_code == 1
        assert expected in result.output


def test_docs_check_fails_a_file_changed_after_writing(tmp_path: Path) -> None:
    folder = tmp_path / "pack"
    _write_pack(folder, _valid())
    assert check_pack(folder) == []
    entry = json.loads((folder / REGISTER_FILE).read_text("utf-8"))
    entry["status"] = "Buiten gebruik"  # still conforming, but not what was written
    (folder / REGISTER_FILE).write_text(json.dumps(entry), "utf-8")
    (folder / "extra.md").write_text("x", "utf-8")
    problems = check_pack(folder)
    assert f"{REGISTER_FILE}: changed since the pack was written (sha256 differs)" in problems
    assert "extra.md: not listed in the manifest" in problems
    (folder / MANIFEST).unlink()
    assert check_pack(folder) == [f"{MANIFEST}: missing or unreadable (FileNotFoundError)"]


def test_the_example_organisation_fills_the_required_municipal_fields() -> None:
    fields = read_organisation(EXAMPLE).register_fields()
    assert {"organization", "contact_email", "publication_category"} <= set(fields)
    assert check_entry(_valid() | fields) == []


def test_a_wrong_organisation_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text("organisation: typo\npublication_category: Hoog risico\n", "utf-8")
    with pytest.raises(ValueError, match="org.yaml") as info:
        read_organisation(path)
    assert "organisation" in str(info.value) and "publication_category" in str(info.value)


def test_docs_usage_errors_write_nothing(tmp_path: Path) -> None:
    cli = CliRunner()
    out = tmp_path / "pack"
    assert cli.invoke(app, ["docs"]).exit_code == 2
    both = cli.invoke(app, ["docs", "--check", str(out), "--model", "1"])
    assert both.exit_code == 2 and "--check takes a pack folder only" in both.output
    bad = tmp_path / "org.yaml"
    bad.write_text("organization: [a, b]\n", "utf-8")
    wrong = cli.invoke(app, ["docs", "--model", "1", "--out", str(out), "--organisation", str(bad)])
    assert wrong.exit_code == 2 and "org.yaml" in wrong.output and "organization" in wrong.output
    assert not out.exists()
    missing = cli.invoke(app, ["docs", "--check", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "no such folder" in missing.output
