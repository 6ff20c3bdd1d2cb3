"""Every catalogue feature reads as a sentence a person can trust, in both languages.

Each feature is rendered at 0, at a typical value and at its maximum in a generated
town, and missing; categories at every value of their domain; flags at 0 and 1. The
sentences must not say "NaN", leave a template or a raw code behind, put English
words into Dutch (``english_words.txt``), contradict a flag's value, count "1
personen" or "1 reports", or give a duration of a month or more in days.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratum_ml.evaluation.explain import reason_for
from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import CatalogueEntry, Language, load_catalogue
from stratum_ml.features.population import population_queries
from stratum_ml.features.wording import format_duration
from stratum_ml.sources.contract import OWNER_TYPES, TENURES, USE_PURPOSES
from stratum_ml.synthetic import GeneratorConfig, generate_tables

ENGLISH = frozenset(
    line.strip()
    for line in (Path(__file__).with_name("english_words.txt")).read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)
DOMAINS = {"use_purpose": USE_PURPOSES, "tenure": TENURES, "owner_type": OWNER_TYPES}
LANGUAGES: tuple[Language, ...] = ("en", "nl")
NEGATIONS = {"en": {"no", "not"}, "nl": {"geen", "niet"}}


@pytest.fixture(scope="module")
def town_features() -> pd.DataFrame:
    sources = generate_tables(GeneratorConfig(n_addresses=2_000, seed=5)).sources
    queries = population_queries(sources.addresses, pd.Timestamp("2024-06-01"))
    return build_features(sources, queries, features=tuple(load_catalogue().names))


def _values(entry: CatalogueEntry, column: pd.Series) -> list[Any]:
    """0, a typical value and the maximum (or every category), and missing."""
    missing: list[Any] = [float("nan"), None]
    if entry.unit == "category":
        return [*DOMAINS[entry.name], *missing]
    if entry.unit == "flag":
        return [0.0, 1.0, *missing]
    present = pd.to_numeric(column, errors="coerce").dropna()
    assert len(present), f"{entry.name}: no value in the generated town"
    typical = float(present.median())
    return [0.0, typical, float(present.max()), 1.0, 2.0, *missing]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ]+", text.lower())


def _problems(entry: CatalogueEntry, value: Any, language: Language, text: str) -> list[str]:
    out = []
    words = _words(text)
    if "nan" in words or "none" in words or "null" in words:
        out.append("shows a missing value as NaN/None")
    if re.search(r"[{}]|\(\(|\)\)", text):
        out.append("leaves a template field")
    if re.search(r"[a-z]+_[a-z_]+", text):
        out.append("shows a raw code")
    if language == "nl" and (english := sorted(set(words) & ENGLISH)):
        out.append(f"English in Dutch: {english}")
    if entry.unit == "flag" and value is not None and not np.isnan(value):
        negated = bool(set(words) & NEGATIONS[language])
        if negated != (value == 0):
            out.append("contradicts the flag's value")
    if isinstance(value, float) and f"{value:.0f}" == "1" and entry.unit not in ("ratio", "flag"):
        singular_only = r"\b1 (?!\w*ss\b)\w+s\b" if language == "en" else r"\b1 \w+en\b"
        if re.search(singular_only, text):
            out.append("plural after 1")
    for number, _ in re.findall(r"\b(\d+) (dagen|days)\b", text):
        if entry.unit == "days" and int(number) >= 31:  # not a window ("the past 90 days")
            out.append("a duration of a month or more in days")
    return out


def test_every_feature_renders_truthfully_in_both_languages(town_features: pd.DataFrame) -> None:
    catalogue = load_catalogue()
    failures = []
    for entry in catalogue:
        for value in _values(entry, town_features[entry.name]):
            for language in LANGUAGES:
                text = entry.reason(value, language)
                failures += [
                    f"{entry.name}={value!r} [{language}] {p}: {text!r}"
                    for p in _problems(entry, value, language, text)
                ]
                # the sentence of a reason adds only the direction, in the same language
                reason = reason_for(entry.name, value, 0.3, catalogue, language, 1.2)
                failures += [
                    f"{entry.name}={value!r} [{language}] reason {p}: {reason.text!r}"
                    for p in _problems(entry, value, language, reason.text)
                ]
    assert not failures, "\n".join(failures)


def test_the_checks_catch_what_the_issue_found() -> None:
    """The old wordings fail the checks above (so the checks can fail)."""
    flag = load_catalogue()["water_use_without_registration"]
    old = "er wordt water verbruikt op het adres terwijl er niemand staat ingeschreven"
    assert "contradicts the flag's value" in _problems(flag, 0.0, "nl", old)
    tenure = load_catalogue()["tenure"]
    assert any(
        "raw code" in p
        for p in _problems(tenure, "private_rent", "nl", "de woning is private_rent")
    )
    owner = load_catalogue()["owner_type"]
    assert any(
        "English" in p for p in _problems(owner, "company", "nl", "de eigenaar is een company")
    )
    floor = load_catalogue()["floor_area_m2"]
    assert _problems(floor, float("nan"), "nl", "no data: floor area (m2) is nan")
    days = load_catalogue()["days_since_last_move_in"]
    assert _problems(days, 11929.0, "nl", "de laatste nieuwe inschrijving was 11929 dagen geleden")
    persons = load_catalogue()["registered_persons"]
    assert "plural after 1" in _problems(persons, 1.0, "nl", "er staan 1 personen ingeschreven")


def test_flags_are_worded_by_their_value() -> None:
    flag = load_catalogue()["water_use_without_registration"]
    assert flag.reason(0, "en") != flag.reason(1, "en")
    assert flag.reason(1, "en") == "water is used at the address while nobody is registered there"
    assert "geen waterverbruik" in flag.reason(0.0, "nl")
    assert "geen overtreding" in load_catalogue()["last_visit_found_violation"].reason(0, "nl")


def test_categories_durations_counts_and_missing_values() -> None:
    c = load_catalogue()
    assert c["owner_type"].reason("company", "nl") == "de eigenaar is een bedrijf"
    assert c["tenure"].reason("private_rent", "nl").endswith("particuliere huur")
    assert (
        c["use_purpose"].reason("woonfunctie", "en") == "the unit's registered use is residential"
    )
    for entry in (c[n] for n in DOMAINS):  # every domain value has words in both languages
        assert entry.categories_en is not None and entry.categories_nl is not None
        assert set(entry.categories_en) == set(entry.categories_nl) == set(DOMAINS[entry.name])
    assert c["days_since_last_move_in"].reason(1157, "nl") == (
        "de laatste nieuwe inschrijving was 3 jaar en 2 maanden geleden"
    )
    assert format_duration(11929, "en") == "32 years and 7 months"
    assert c["registered_persons"].reason(1, "nl") == "er staat 1 persoon ingeschreven op het adres"
    assert c["registered_persons"].reason(4, "en") == "4 persons are registered at the address"
    assert c["floor_area_m2"].reason(float("nan"), "nl") == (
        "geen gegevens: de gebruiksoppervlakte is onbekend"
    )
