"""The catalogue agrees with the code, and protected attributes cannot reach a feature."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import stratum_ml.features as features_pkg
from stratum_ml.features.catalogue import (
    CatalogueEntry,
    FeatureSet,
    _read_yaml,
    build_catalogue,
    load_catalogue,
)
from stratum_ml.features.registry import REGISTRY, THEMES, CatalogueError, FeatureParams
from stratum_ml.sources.tables import SourceTables


def test_every_feature_has_an_entry_with_sources_unit_and_both_languages() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.names) == set(REGISTRY.features)
    for entry in catalogue:
        assert entry.sources, entry.name
        assert entry.unit and entry.description and entry.justification
        sample = "private_rent" if entry.unit == "category" else 1.5
        for language in ("en", "nl"):
            assert "{" not in entry.reason(sample, language), entry.name


def test_reason_templates_render_values_in_both_languages() -> None:
    entry = load_catalogue()["water_ratio_to_expected"]
    assert entry.reason(3.1, "en") == (
        "water use per registered person is 310% of what is usual for such a household"
    )
    assert "310%" in entry.reason(3.1, "nl")
    assert entry.reason(float("nan"), "en").startswith("no data:")


def test_no_feature_reads_audit_attributes() -> None:
    """Static proof: no feature's traced sources, and no line of feature code, names them."""
    for name in REGISTRY.features:
        assert "audit_attributes" not in REGISTRY.sources_of(name), name
    package = Path(features_pkg.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}  # a table is an input
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert "audit_attributes" not in names | strings, path.name
    assert "audit_attributes" not in {f.name for f in dataclasses.fields(SourceTables)}


def test_catalogue_entry_refuses_audit_sources() -> None:
    with pytest.raises(ValueError, match="fairness audit only"):
        CatalogueEntry(
            name="x",
            theme="household",
            sources=("registrations", "audit_attributes"),
            unit="count",
            description="d",
            reason_en="e",
            reason_nl="n",
            approved=True,
            justification="long enough justification",
        )


def test_catalogue_refuses_disagreement_between_code_and_file() -> None:
    metadata = _read_yaml()
    missing = {k: v for k, v in metadata.items() if k != "floor_area_m2"}
    with pytest.raises(CatalogueError, match="without a catalogue entry: floor_area_m2"):
        build_catalogue(missing)
    extra = {**metadata, "ghost_feature": metadata["floor_area_m2"]}
    with pytest.raises(CatalogueError, match="without a feature: ghost_feature"):
        build_catalogue(extra)
    sneaky = {**metadata, "floor_area_m2": {**metadata["floor_area_m2"], "sources": ["addresses"]}}
    with pytest.raises(CatalogueError, match="come from the code"):
        build_catalogue(sneaky)


def test_feature_sets_refuse_unapproved_features() -> None:
    catalogue = load_catalogue()
    unapproved = [e.name for e in catalogue if not e.approved]
    assert {"registered_minors", "mean_resident_age"} <= set(unapproved)
    with pytest.raises(ValueError, match="not approved"):
        FeatureSet(features=("floor_area_m2", "mean_resident_age"))
    with pytest.raises(ValueError, match="unknown features"):
        FeatureSet(features=("floor_area_m2", "shoe_size"))
    default = FeatureSet.default()
    assert not set(default.features) & set(unapproved)
    assert set(default.features) == set(catalogue.approved)


def test_changing_a_feature_parameter_changes_the_catalogue_text() -> None:
    """Descriptions and reasons quote a run's settings, not numbers written beside them."""
    default = load_catalogue()
    assert "expected 45 m3/person/year" in default["water_ratio_to_expected"].description
    assert "under 180 days" in default["short_stay_share_24m"].description
    assert "(SBI 78)" in default["employment_agencies_at_address"].description
    assert "in the last 400 days" in default["water_m3_year"].description
    assert "under 180 days" in default["short_stay_share_24m"].reason(0.5, "en")
    params = FeatureParams(
        water_m3_per_person_year=52.5,
        short_stay_days=90,
        water_recent_days=500,
        employment_agency_sbi=("78", "7010"),
    )
    run = FeatureSet(features=("water_ratio_to_expected",), params=params).catalogue()
    assert run is load_catalogue(params)
    assert "expected 52.5 m3/person/year" in run["water_ratio_to_expected"].description
    assert "in the last 500 days" in run["water_m3_year"].description
    assert "(SBI 78, 7010)" in run["employment_agencies_in_building"].description
    short = run["short_stay_share_24m"]
    assert "under 90 days (0-1)" in short.description
    assert short.reason(0.5, "en") == "50% of recent stays at the address lasted under 90 days"
    assert short.reason(0.5, "nl").endswith("duurde korter dan 90 dagen")
    assert default["short_stay_share_24m"].description != short.description


def test_themes_are_the_theme_modules() -> None:
    modules = [m.__name__.rsplit(".", 1)[-1] for m in features_pkg.THEME_MODULES]
    assert modules == ["common", *THEMES]
    assert [e.theme for e in load_catalogue()] == sorted(
        (e.theme for e in load_catalogue()), key=THEMES.index
    )
    assert {n.theme for n in REGISTRY.features.values()} == set(THEMES)
