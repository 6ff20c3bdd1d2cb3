"""The mapping's schema check: errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stratum_ml.pseudonymise.mapping import PSEUDONYM_COLUMNS, MappingError, load_mapping
from stratum_ml.sources.contract import TABLES

from .conftest import MAPPING_FILE


def _example() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(MAPPING_FILE.read_text())


def _write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(content) if not isinstance(content, str) else content)
    return path


def test_example_maps_every_contract_table_and_pseudonymises_every_identifier() -> None:
    mapping = load_mapping(MAPPING_FILE)
    assert set(mapping.tables) == set(TABLES)
    for (table, column), domain in PSEUDONYM_COLUMNS.items():
        spec = mapping.tables[table].columns[column]
        assert not isinstance(spec, str) and spec.domain == domain


def test_unknown_table_missing_column_and_unknown_column(tmp_path: Path) -> None:
    m = _example()
    m["tables"]["people"] = m["tables"].pop("audit_attributes")
    del m["tables"]["registrations"]["columns"]["birth_year"]
    m["tables"]["addresses"]["columns"]["colour"] = "kleur"
    path = _write(tmp_path, m)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    text = str(err.value)
    assert str(path) in text
    assert "tables.people: not a contract table" in text
    assert "tables.registrations.columns.birth_year: not mapped" in text
    assert "tables.addresses.columns.colour: not a column of addresses" in text


def test_identifier_must_be_pseudonymised_in_its_domain(tmp_path: Path) -> None:
    m = _example()
    m["tables"]["registrations"]["columns"]["person_id"] = "bsn"
    m["tables"]["ownership"]["columns"]["owner_id"] = {"from": "eigenaar", "domain": "person"}
    m["tables"]["addresses"]["columns"]["postcode"] = {"from": "postcode", "domain": "person"}
    with pytest.raises(MappingError) as err:
        load_mapping(_write(tmp_path, m))
    text = str(err.value)
    assert "tables.registrations.columns.person_id: must be pseudonymised" in text
    assert "tables.ownership.columns.owner_id: domain 'person' is not allowed here" in text
    assert "tables.addresses.columns.postcode: domain 'person' is not allowed here" in text


def test_required_table_bad_domain_bad_yaml_and_version(tmp_path: Path) -> None:
    m = _example()
    del m["tables"]["inspections"]
    with pytest.raises(MappingError) as err:
        load_mapping(_write(tmp_path, m))
    assert "\n  tables.inspections: a required contract table is not mapped" in str(err.value)
    m = _example()
    m["tables"]["registrations"]["columns"]["surname_key"] = {"from": "x", "domain": "surname"}
    with pytest.raises(MappingError, match=r"tables\.registrations\.columns\.surname_key\.domain"):
        load_mapping(_write(tmp_path, m))
    with pytest.raises(MappingError, match="not valid YAML at line [0-9]"):
        load_mapping(_write(tmp_path, "version: 1\ntables: [\n"))
    with pytest.raises(MappingError, match="version"):
        load_mapping(_write(tmp_path, {**_example(), "version": 2}))
    with pytest.raises(MappingError, match="cannot be read"):
        load_mapping(tmp_path / "missing.yaml")
