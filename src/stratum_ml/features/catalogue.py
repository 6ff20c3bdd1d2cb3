"""The feature catalogue: metadata (data, not comments) and feature sets.

The catalogue joins two halves that must agree: the code (every registered
feature, its theme, docstring and the source tables it reads, traced through
the registry from the functions' signatures) and ``catalogue.yaml`` (unit,
reason templates in English and Dutch, approval and its justification).
:func:`load_catalogue` refuses a catalogue where they disagree, and refuses any
feature computed from the protected audit attributes.

A description is the feature's docstring filled in with the values it is computed
with (its window, and the :class:`FeatureParams` of a run), so the catalogue of a run
quotes that run's settings: see :func:`load_catalogue` and :meth:`FeatureSet.catalogue`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stratum_ml.features import THEME_MODULES  # noqa: F401  (registers every feature)
from stratum_ml.features.registry import (
    REGISTRY,
    THEMES,
    CatalogueError,
    FeatureParams,
    Registry,
    check_sources,
    render,
)
from stratum_ml.features.wording import choose_number, format_duration

Language = Literal["en", "nl"]
__all__ = ["THEMES", "Catalogue", "CatalogueEntry", "FeatureSet", "Language", "load_catalogue"]


class CatalogueEntry(BaseModel):
    """Everything known about one feature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    theme: str
    sources: tuple[str, ...]
    unit: str
    description: str
    reason_en: str
    reason_nl: str
    approved: bool
    justification: str = Field(min_length=10)
    #: what the feature is about, as a short phrase (missing values, chart labels)
    label_en: str = Field(min_length=2)
    label_nl: str = Field(min_length=2)
    #: flags: the sentence for the value 0 (``reason_*`` is the one for 1)
    reason_en_no: str | None = None
    reason_nl_no: str | None = None
    #: categories: each value of the domain in words
    categories_en: dict[str, str] | None = None
    categories_nl: dict[str, str] | None = None

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, theme: str) -> str:
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r}; add it to registry.THEMES")
        return theme

    @field_validator("sources")
    @classmethod
    def _no_audit_sources(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        check_sources("catalogue entry", sources)
        return sources

    @model_validator(mode="after")
    def _wording_for_the_unit(self) -> CatalogueEntry:
        if self.unit == "flag" and (self.reason_en_no is None or self.reason_nl_no is None):
            raise ValueError(f"{self.name}: a flag needs reason_en_no and reason_nl_no (value 0)")
        if self.unit == "category" and (self.categories_en is None or self.categories_nl is None):
            raise ValueError(f"{self.name}: a category needs categories_en and categories_nl")
        return self

    def label(self, language: Language = "en") -> str:
        """What the feature is about, as a short phrase in ``language``."""
        return self.label_en if language == "en" else self.label_nl

    def category(self, value: Any, language: Language = "en") -> str:
        """A category value in words (the value itself where the catalogue has no words)."""
        words = self.categories_en if language == "en" else self.categories_nl
        return (words or {}).get(str(value), str(value))

    def missing(self, language: Language = "en") -> str:
        """The sentence for a missing value: there is no data on what the feature measures."""
        if language == "en":
            return f"no data: {self.label_en} unknown"
        return f"geen gegevens: {self.label_nl} is onbekend"

    def reason(self, value: Any, language: Language = "en") -> str:
        """The reason sentence for this feature's ``value`` in ``language``.

        Flags are worded by their value (0 has a sentence of its own), categories in
        the language's words, days as years and months, counts with the right singular
        or plural; a missing value gives :meth:`missing`.
        """
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return self.missing(language)
        en = language == "en"
        template = self.reason_en if en else self.reason_nl
        if self.unit == "flag" and not float(value):
            template = str(self.reason_en_no if en else self.reason_nl_no)
        if self.unit == "category":
            return template.format(value=self.category(value, language))
        fields: dict[str, Any] = {"value": value}
        if self.unit == "days":
            fields["duration"] = format_duration(float(value), language)
        return choose_number(template.format(**fields), float(value))


class Catalogue:
    """All catalogue entries, by feature name, in registration order."""

    def __init__(self, entries: Mapping[str, CatalogueEntry]) -> None:
        self.entries = dict(entries)

    def __getitem__(self, name: str) -> CatalogueEntry:
        return self.entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Any:
        return iter(self.entries.values())

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    @property
    def approved(self) -> list[str]:
        """Names of the features that may enter a model."""
        return [e.name for e in self.entries.values() if e.approved]

    def to_frame(self) -> pd.DataFrame:
        """One row per feature, for reports and MLflow artifacts."""
        rows = [e.model_dump() for e in self.entries.values()]
        frame = pd.DataFrame(rows)
        frame["sources"] = frame["sources"].map(", ".join)
        return frame


def _theme_rank(theme: str | None) -> int:
    return THEMES.index(theme) if theme in THEMES else len(THEMES)


def _read_yaml() -> dict[str, dict[str, Any]]:
    text = resources.files("stratum_ml.features").joinpath("catalogue.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise CatalogueError("catalogue.yaml must hold a mapping 'features'")
    features: dict[str, dict[str, Any]] = data["features"]
    return features


def build_catalogue(
    metadata: Mapping[str, Mapping[str, Any]],
    registry: Registry = REGISTRY,
    params: FeatureParams | None = None,
) -> Catalogue:
    """Join the registered features with their metadata; refuse any disagreement.

    Descriptions and reason templates quote ``params`` (default :class:`FeatureParams`).
    """
    params = params or FeatureParams()
    code = set(registry.features)
    data = set(metadata)
    if missing := sorted(code - data):
        raise CatalogueError(f"features without a catalogue entry: {', '.join(missing)}")
    if extra := sorted(data - code):
        raise CatalogueError(f"catalogue entries without a feature: {', '.join(extra)}")
    entries: dict[str, CatalogueEntry] = {}
    ordered = sorted(registry.features.items(), key=lambda item: _theme_rank(item[1].theme))
    for name, node in ordered:
        meta = dict(metadata[name])
        if "sources" in meta or "theme" in meta:
            raise CatalogueError(f"{name}: sources and theme come from the code, not the file")
        try:
            for key in ("reason_en", "reason_nl", "reason_en_no", "reason_nl_no"):
                if key in meta:
                    meta[key] = render(meta[key], params)
            entries[name] = CatalogueEntry(
                name=name,
                theme=node.theme or "",
                sources=registry.sources_of(name),
                description=node.describe(params),
                **meta,
            )
        except (KeyError, ValueError) as exc:
            raise CatalogueError(f"catalogue entry {name!r}: {exc}") from exc
    return Catalogue(entries)


@cache
def load_catalogue(params: FeatureParams | None = None) -> Catalogue:
    """The project's catalogue (code + ``catalogue.yaml``), validated.

    Parameters
    ----------
    params
        The feature constants of a run (default :class:`FeatureParams`): descriptions
        and reason sentences quote them.
    """
    return build_catalogue(_read_yaml(), params=params)


class FeatureSet(BaseModel):
    """The features a model uses, and the constants they were computed with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    features: tuple[str, ...]
    params: FeatureParams = FeatureParams()

    @field_validator("features")
    @classmethod
    def _approved_only(cls, features: tuple[str, ...]) -> tuple[str, ...]:
        catalogue = load_catalogue()
        unknown = [f for f in features if f not in catalogue]
        if unknown:
            raise ValueError(f"unknown features: {', '.join(unknown)}")
        refused = [f for f in features if not catalogue[f].approved]
        if refused:
            raise ValueError(
                "features not approved in the catalogue cannot enter a model: "
                + ", ".join(f"{f} ({catalogue[f].justification})" for f in refused)
            )
        if len(set(features)) != len(features):
            raise ValueError("a feature is listed twice")
        return features

    def catalogue(self) -> Catalogue:
        """The catalogue as this feature set computes it (quoting its :attr:`params`)."""
        return load_catalogue(self.params)

    @classmethod
    def default(cls, exclude: Iterable[str] = ()) -> FeatureSet:
        """Every approved feature, less ``exclude``."""
        skip = set(exclude)
        return cls(features=tuple(f for f in load_catalogue().approved if f not in skip))
