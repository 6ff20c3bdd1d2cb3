"""The mapping from raw extracts to contract tables (YAML, schema-checked with pydantic).

A mapping names, per contract table, the raw file it comes from and, per
contract column, the raw column it is made of; identifier columns also name
their identifier domain and are pseudonymised (``examples/mapping.yaml``)::

    version: 1
    tables:
      registrations:
        file: brp_verblijfplaatsen        # brp_verblijfplaatsen.csv or .parquet
        columns:
          person_id: {from: bsn, domain: person}
          surname_key: {from: geslachtsnaam, domain: family_name}
          address_id: adresseerbaar_object
          ...

Rules (checked by :func:`load_mapping`, each error naming the file and the
field): every table is a contract table and the required tables are there;
every contract column of a mapped table is mapped (optional columns may be
left out), and nothing else; the
pseudonym columns (:data:`PSEUDONYM_COLUMNS`) are pseudonymised in their
domain, and no other column is. Raw columns that no table maps are dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stratum_ml.sources.contract import REQUIRED_TABLES, TABLES

#: contract columns that hold a pseudonym, and the identifier domain of each
PSEUDONYM_COLUMNS: dict[tuple[str, str], str] = {
    ("registrations", "person_id"): "person",
    ("registrations", "surname_key"): "family_name",
    ("audit_attributes", "person_id"): "person",
    ("ownership", "owner_id"): "owner",
}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the fields."""


class PseudonymColumn(BaseModel):
    """A contract column made by pseudonymising a raw identifier column."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", min_length=1, description="The raw column.")
    domain: Literal["person", "family_name", "owner"]


class TableMapping(BaseModel):
    """Where one contract table comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1, description="Raw file name, with or without .csv/.parquet.")
    columns: dict[str, str | PseudonymColumn]

    def raw_column(self, column: str) -> str:
        """The raw column a contract column is made of."""
        spec = self.columns[column]
        return spec if isinstance(spec, str) else spec.source

    @property
    def raw_columns(self) -> list[str]:
        """The raw columns this table reads, each once, in mapping order."""
        return list(dict.fromkeys(self.raw_column(c) for c in self.columns))


class Mapping(BaseModel):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    tables: dict[str, TableMapping]

    @model_validator(mode="after")
    def _check_contract(self) -> Mapping:
        problems = []
        for table in self.tables:
            if table not in TABLES:
                problems.append(f"tables.{table}: not a contract table")
        for table in REQUIRED_TABLES:
            if table not in self.tables:
                problems.append(f"tables.{table}: a required contract table is not mapped")
        for table, tm in self.tables.items():
            if table not in TABLES:
                continue
            wanted = TABLES[table].column_names
            for column in wanted:
                if column not in tm.columns and not TABLES[table].column(column).optional:
                    problems.append(f"tables.{table}.columns.{column}: not mapped")
            for column, spec in tm.columns.items():
                where = f"tables.{table}.columns.{column}"
                domain = PSEUDONYM_COLUMNS.get((table, column))
                if column not in wanted:
                    problems.append(f"{where}: not a column of {table}")
                elif domain is not None and not isinstance(spec, PseudonymColumn):
                    problems.append(
                        f"{where}: must be pseudonymised: {{from: <raw column>, domain: {domain}}}"
                    )
                elif isinstance(spec, PseudonymColumn) and spec.domain != domain:
                    problems.append(
                        f"{where}: domain {spec.domain!r} is not allowed here"
                        + (f" (expected {domain!r})" if domain else " (not a pseudonym column)")
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self


def load_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Read and check a mapping file.

    Raises
    ------
    MappingError
        When the file is missing, is not YAML, or breaks a rule; the message
        names the file and each wrong field.
    """
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise MappingError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MappingError(f"{path}: not valid YAML{where}") from None
    try:
        return Mapping.model_validate(content)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
            msg = err["msg"].removeprefix("Value error, ")
            if loc:
                lines.append(f"  {loc}: {msg}")
            else:  # the contract rules: one problem a line, each naming its field
                lines += [f"  {problem}" for problem in msg.splitlines()]
        raise MappingError(f"{path}: not a valid mapping:\n" + "\n".join(lines)) from None


def _is_union_tag(part: object) -> bool:
    return part in ("str", "PseudonymColumn")
