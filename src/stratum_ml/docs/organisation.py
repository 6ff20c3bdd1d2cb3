"""What only the municipality knows, kept in a small YAML file (``examples/organisation.yaml``).

The software cannot know the organisation's name, its contact point, the lawful
basis of the process, the impact assessments it carried out or the publication
category it chose; the municipality writes them once in this file, and
``stratum docs --organisation FILE`` merges them into the register entry. A field
left out stays out of the entry and is listed as missing; nothing is invented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Link", "Organisation", "read_organisation"]


class Link(BaseModel):
    """A title with a link (a law, an impact assessment)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1)
    link: str = Field(min_length=1, pattern=r"^https://")


class Organisation(BaseModel):
    """The municipality's part of the register entry; every field optional.

    Field names follow the register's where they map one to one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    organization: str | None = Field(None, description="full name, as in the TOOI list")
    contact_email: str | None = Field(None, description="general e-mail address or https:// page")
    website: str | None = Field(None, description="public page about the process (https://)")
    url: str | None = Field(None, description="the municipality's own register entry (https://)")
    publication_category: (
        Literal["Hoog-risico AI-systeem", "Impactvolle algoritmes", "Overige algoritmes"] | None
    ) = None
    provider: str | None = Field(None, description="supplier, or 'Intern ontwikkeld'")
    proportionality: str | None = Field(None, description="the weighing of pros and cons")
    lawful_basis: str | None = Field(None, description="the lawful basis, in plain words")
    lawful_basis_links: tuple[Link, ...] = ()
    impact_assessments: tuple[Link, ...] = Field(
        (), description="assessments carried out (DPIA, IAMA) with a link to the results"
    )
    impact_assessments_note: str | None = Field(
        None, description="why an assessment was not done (the register's 'impacttoetsen')"
    )
    process_index_url: str | None = Field(None, description="the processing register entry")
    publiccode: str | None = Field(None, description="the public code repository (https://)")

    def register_fields(self) -> dict[str, Any]:
        """The fields this file fills, under the register's names (absent ones left out)."""
        fields: dict[str, Any] = {
            "organization": self.organization,
            "contact_email": self.contact_email,
            "website": self.website,
            "url": self.url,
            "publication_category": self.publication_category,
            "provider": self.provider,
            "proportionality": self.proportionality,
            "lawful_basis": self.lawful_basis,
            "process_index_url": self.process_index_url,
            "impacttoetsen": self.impact_assessments_note,
            "publiccode": self.publiccode,
        }
        if self.lawful_basis_links:
            fields["lawful_basis_grouping"] = [
                link.model_dump() for link in self.lawful_basis_links
            ]
        if self.impact_assessments:
            fields["impacttoetsen_grouping"] = [
                link.model_dump() for link in self.impact_assessments
            ]
        return {name: value for name, value in fields.items() if value not in (None, "")}


def read_organisation(path: str | Path | None) -> Organisation:
    """Read the municipality's YAML file; ``None`` gives an empty one (everything missing).

    Raises
    ------
    ValueError
        If the file cannot be read or holds an unknown or invalid field; the message
        names the file and the field.
    """
    if path is None:
        return Organisation()
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the organisation file: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the organisation file is a mapping of fields")
    try:
        return Organisation.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{path}: invalid organisation file: {problems}") from exc
