"""Feature functions and the inputs they are computed from, as a small DAG.

Hamilton-style: a feature is a pure function whose *name* is the feature's
name and whose *parameters* name its inputs. Inputs are either other
*intermediates* (as-of views of a source table, registered with
:func:`intermediate`) or the base inputs ``queries`` (the query frame),
``tables`` (the :class:`~stratum_ml.sources.SourceTables`) and ``params``
(:class:`FeatureParams`). Each intermediate declares the source tables it
reads; a feature's sources are the union over everything it depends on, so the
catalogue knows, from the code itself, which tables every feature reads.

There is no way to reach ``audit_attributes`` from here: ``SourceTables`` has no
such field, and :func:`intermediate` / :func:`feature` refuse to declare it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FunctionType
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from stratum_ml.sources.contract import TABLES
from stratum_ml.sources.tables import SourceTables

F = TypeVar("F", bound=Callable[..., Any])
BASE_INPUTS = ("queries", "tables", "params")


class CatalogueError(ValueError):
    """A feature or intermediate breaks a rule of the catalogue."""


class FeatureParams(BaseModel):
    """Constants that feature definitions use; part of a model's recorded feature set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: expected drinking water per resident per year (Dutch average ~129 l/day = 47 m3)
    water_m3_per_person_year: float = 45.0
    #: a reading older than this many days is not "recent"
    water_recent_days: int = 400
    #: a stay shorter than this many days is a short stay
    short_stay_days: int = 180
    #: owner types whose portfolios do not link dwellings (they own whole neighbourhoods)
    unlinked_owner_types: tuple[str, ...] = ("housing_association", "municipality")
    #: SBI codes (prefixes) of employment agencies
    employment_agency_sbi: tuple[str, ...] = ("78",)


@dataclass(frozen=True)
class Node:
    """A registered function: a feature or an intermediate."""

    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    own_sources: tuple[str, ...]
    theme: str | None = None  # features only
    optional_sources: tuple[str, ...] = ()  # read when present, not needed
    kind: str = "feature"


@dataclass
class Registry:
    """All registered features and intermediates."""

    features: dict[str, Node] = field(default_factory=dict)
    intermediates: dict[str, Node] = field(default_factory=dict)

    def dependencies(self, name: str) -> list[Node]:
        """``name`` and every feature or intermediate it depends on, directly or indirectly."""
        seen: set[str] = set()
        nodes: list[Node] = []
        stack = [name]
        while stack:
            current = stack.pop()
            if current in seen or current in BASE_INPUTS:
                continue
            seen.add(current)
            node = self.features.get(current) or self.intermediates.get(current)
            if node is None:
                raise CatalogueError(f"{name!r} depends on unknown input {current!r}")
            nodes.append(node)
            stack.extend(node.inputs)
        return nodes

    def sources_of(self, name: str, *, include_optional: bool = True) -> tuple[str, ...]:
        """Every source table a feature or intermediate reads, directly or indirectly.

        With ``include_optional=False``, only the tables it cannot do without.
        """
        out: set[str] = set()
        for node in self.dependencies(name):
            out.update(node.own_sources)
            if include_optional:
                out.update(node.optional_sources)
        return tuple(t for t in TABLES if t in out)


REGISTRY = Registry()


def check_sources(name: str, sources: tuple[str, ...]) -> None:
    """Refuse unknown tables and the audit-only table as inputs of ``name``."""
    for s in sources:
        if s not in TABLES:
            raise CatalogueError(f"{name}: unknown source table {s!r}")
        if TABLES[s].audit_only:
            raise CatalogueError(
                f"{name}: reads {s!r}, which holds protected attributes for the fairness audit "
                "only; no feature may be computed from it"
            )


def _inputs(func: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(func).parameters)


def intermediate(
    *, sources: tuple[str, ...] = (), optional_sources: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Register an intermediate computed from ``sources`` (and ``optional_sources`` if present)."""

    def register(func: F) -> F:
        check_sources(func.__name__, sources + optional_sources)
        REGISTRY.intermediates[func.__name__] = Node(
            func.__name__,
            func,
            _inputs(func),
            sources,
            kind="intermediate",
            optional_sources=optional_sources,
        )
        return func

    return register


def feature(*, theme: str, sources: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register a feature of ``theme``; its name is the function's name.

    The function returns a :class:`pandas.Series` indexed by query position
    (``_q``); positions it leaves out become NaN.
    """

    def register(func: F) -> F:
        check_sources(func.__name__, sources)
        if not (func.__doc__ or "").strip():
            raise CatalogueError(f"feature {func.__name__} needs a docstring (unit, window)")
        REGISTRY.features[func.__name__] = Node(
            func.__name__, func, _inputs(func), sources, theme=theme
        )
        return func

    return register


def feature_variant(
    func: FunctionType, *, name: str, doc: str, theme: str, sources: tuple[str, ...]
) -> None:
    """Register one variant of a feature family (windows, categories) under ``name``.

    Variants come from a table in the theme module rather than from copy-paste.
    """
    func.__name__ = name
    func.__qualname__ = name
    func.__doc__ = doc
    feature(theme=theme, sources=sources)(func)


class Evaluator:
    """Computes features for one query frame, each input at most once."""

    def __init__(
        self,
        tables: SourceTables,
        queries: pd.DataFrame,
        params: FeatureParams,
        registry: Registry = REGISTRY,
    ) -> None:
        self.registry = registry
        self.available = set(tables.available)
        self._cache: dict[str, Any] = {"queries": queries, "tables": tables, "params": params}

    def can_compute(self, name: str) -> bool:
        """Whether every source table the input needs is present."""
        return not self.missing_sources(name)

    def missing_sources(self, name: str) -> tuple[str, ...]:
        """The absent source tables that ``name`` needs."""
        needed = self.registry.sources_of(name, include_optional=False)
        return tuple(s for s in needed if s not in self.available)

    def get(self, name: str) -> Any:
        """The value of a feature or intermediate (computed once, then cached)."""
        if name in self._cache:
            return self._cache[name]
        node = self.registry.features.get(name) or self.registry.intermediates.get(name)
        if node is None:
            raise CatalogueError(f"unknown feature or intermediate {name!r}")
        kwargs: Mapping[str, Any] = {arg: self.get(arg) for arg in node.inputs}
        value = node.func(**kwargs)
        self._cache[name] = value
        return value

    def keep_only(self, names: set[str]) -> None:
        """Forget every cached value not in ``names`` (bounds memory once nothing needs it)."""
        for name in list(self._cache):
            if name not in names and name not in BASE_INPUTS:
                del self._cache[name]
