"""The registry derives every function's inputs and source tables from its signature."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pandas as pd
import pytest

from stratum_ml.features.asof import make_queries
from stratum_ml.features.registry import (
    BASE_INPUTS,
    REGISTRY,
    CatalogueError,
    Evaluator,
    FeatureParams,
    Registry,
    feature,
    intermediate,
    parameterize,
)
from stratum_ml.sources.contract import MODEL_TABLES
from stratum_ml.sources.tables import SourceTables
from tests.builders import A, tiny_tables


def _evaluator(registry: Registry, tables: SourceTables | None = None) -> Evaluator:
    queries = make_queries(A, dt.date(2025, 1, 1))
    return Evaluator(tables or tiny_tables(), queries, FeatureParams(), registry)


def test_sources_are_exactly_the_table_parameters_of_each_function() -> None:
    nodes = [*REGISTRY.features.values(), *REGISTRY.intermediates.values()]
    names = set(REGISTRY.features) | set(REGISTRY.intermediates)
    for node in nodes:
        parameters = inspect.signature(node.func).parameters
        tables = {p for p in parameters if p in MODEL_TABLES}
        optional = {p for p in tables if parameters[p].default is None}
        assert set(node.own_sources) == tables - optional, node.name
        assert set(node.optional_sources) == optional, node.name
        assert set(node.inputs) <= names | set(BASE_INPUTS), node.name  # nothing else to read
        assert "tables" not in parameters, node.name
    # the table network.py once read without declaring it is now a declared source
    assert "addresses" in REGISTRY.sources_of("network_component_size")


def test_a_function_receives_only_the_tables_it_names() -> None:
    registry = Registry()
    seen: dict[str, Any] = {}

    @registry.feature
    def spy(queries: pd.DataFrame, water_usage: pd.DataFrame) -> pd.Series:
        """Spy (count)."""
        seen.update(queries=queries, water_usage=water_usage)
        return pd.Series(0.0, index=range(len(queries)))

    tables = tiny_tables()
    _evaluator(registry, tables).get("spy")
    assert set(seen) == {"queries", "water_usage"}
    assert seen["water_usage"] is tables.water_usage
    assert registry.sources_of("spy") == ("water_usage",)


def test_reading_an_undeclared_table_is_impossible() -> None:
    """There is no bundle of tables to reach into: a table is read by naming it."""
    registry = Registry()
    with pytest.raises(CatalogueError, match="takes the bundle 'tables'"):

        @registry.feature
        def sneaky(keys: pd.DataFrame, tables: Any) -> pd.Series:
            """Reads whatever it likes (count)."""
            return pd.Series(dtype=float)

    @registry.feature
    def also_sneaky(source_tables: Any) -> pd.Series:
        """Reads whatever it likes (count)."""
        return pd.Series(dtype=float)

    with pytest.raises(CatalogueError, match="unknown input 'source_tables'"):
        _evaluator(registry).missing_sources("also_sneaky")
    assert "sneaky" not in registry.features


def test_registering_a_feature_computed_from_audit_attributes_is_refused() -> None:
    with pytest.raises(CatalogueError, match="protected attributes"):

        @feature
        def share_female(audit_attributes: pd.DataFrame) -> pd.Series:
            """Share of female residents (ratio)."""
            return pd.Series(dtype=float)

    with pytest.raises(CatalogueError, match="protected attributes"):

        @intermediate
        def residents_with_attributes(
            registrations: pd.DataFrame, audit_attributes: pd.DataFrame | None = None
        ) -> pd.DataFrame:
            return registrations

    with pytest.raises(CatalogueError, match="protected attributes"):

        @parameterize(female_share_adults={"age": 18})
        def female_share(audit_attributes: pd.DataFrame, age: int) -> pd.Series:
            """Share of female residents aged {age} or over (ratio)."""
            return pd.Series(dtype=float)

    assert "share_female" not in REGISTRY.features
    assert "residents_with_attributes" not in REGISTRY.intermediates
    assert "female_share_adults" not in REGISTRY.features


def test_parameterize_registers_one_feature_per_variant() -> None:
    registry = Registry()

    @registry.parameterize(
        visits_90d={"days": 90}, violations_365d={"days": 365, "outcome": "violation"}
    )
    def visits_in(
        inspections: pd.DataFrame, n_queries: int, days: int, outcome: str = "any"
    ) -> pd.Series:
        """Visits in the {days} days before the reference date (count)."""
        return pd.Series(float(days), index=range(n_queries))

    assert list(registry.features) == ["visits_90d", "violations_365d"]  # not the function
    first, second = registry.features["visits_90d"], registry.features["violations_365d"]
    assert first.inputs == ("inspections", "n_queries", "outcome")  # unbound: still an input
    assert second.inputs == ("inspections", "n_queries")
    assert second.describe() == "Visits in the 365 days before the reference date (count)."
    assert second.func(inspections=None, n_queries=2).tolist() == [365.0, 365.0]
    assert {n.theme for n in registry.features.values()} == {"test_registry"}  # the module
    with pytest.raises(CatalogueError, match="binds window"):
        registry.parameterize(x_1={"window": 1})(visits_in)


def test_a_docstring_quoting_an_unknown_value_is_refused() -> None:
    registry = Registry()
    with pytest.raises(CatalogueError, match="needs a docstring"):

        @registry.feature
        def silent(queries: pd.DataFrame) -> pd.Series:
            return pd.Series(dtype=float)

    with pytest.raises(CatalogueError, match="unknown value"):

        @registry.feature
        def quoting(queries: pd.DataFrame) -> pd.Series:
            """Stays under {params.no_such_setting} days (count)."""
            return pd.Series(dtype=float)

    with pytest.raises(CatalogueError, match="unknown value"):  # a value it does not bind

        @registry.parameterize(reports_90d={"days": 90})
        def reports_in(queries: pd.DataFrame, days: int, category: str = "any") -> pd.Series:
            """Reports of category {category} in the {days} days before it (count)."""
            return pd.Series(dtype=float)


def test_unknown_intermediate_is_an_error() -> None:
    registry = Registry()
    with pytest.raises(CatalogueError, match="unknown input"):
        registry.sources_of("nothing_here")
