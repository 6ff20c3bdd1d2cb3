"""Feature functions and the inputs they are computed from, as a small DAG.

Hamilton-style: a feature is a pure function whose *name* is the feature's
name and whose *parameters* name its inputs. An input is one of

* a source table, by its name in :class:`~stratum_ml.sources.SourceTables`
  (``addresses``, ``registrations``, ``water_usage``, ...): a parameter with a
  default of ``None`` is an *optional* source, read when present;
* an *intermediate* (registered with :func:`intermediate`) or another feature;
* ``queries`` (the query frame) or ``params`` (:class:`FeatureParams`).

A function's source tables are therefore its signature, not a declaration
beside it: the registry derives them, and the evaluator passes a function the
tables it names and nothing else. No function receives the whole bundle of
tables, so none can read a table it does not list. A feature's sources are the
union over everything it depends on, so the catalogue knows, from the code
itself, which tables every feature reads.

A feature's theme is the module it is defined in (``features/household.py``
holds the ``household`` features); :data:`THEMES` lists the themes once.

Families of features (one per window, one per category) come from
:func:`parameterize`, which binds some of a function's parameters to values,
one feature per set of values. A feature's docstring is a template: ``{days}``
is a bound value, ``{params.short_stay_days}`` a :class:`FeatureParams` field,
so a description (:meth:`Node.describe`) always quotes the values the feature
is computed with.

There is no way to reach ``audit_attributes`` from here: ``SourceTables`` has no
such field, and a function with a parameter of that name is refused.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from stratum_ml.sources.contract import MODEL_TABLES, TABLES
from stratum_ml.sources.tables import SourceTables

F = TypeVar("F", bound=Callable[..., Any])

#: the themes, in data-flow order: one module of ``stratum_ml.features`` each; the
#: catalogue (and every feature table) lists features in this order
THEMES = (
    "dwelling",
    "household",
    "water",
    "energy",
    "businesses",
    "ownership",
    "reports",
    "visits",
    "network",
)
#: inputs that are not computed: the query frame, the constants and every source table
BASE_INPUTS = ("queries", "params", *MODEL_TABLES)


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


class _TextFormatter(string.Formatter):
    """``str.format`` that writes a tuple of codes as ``78, 79`` rather than ``('78', '79')``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, tuple):
            return ", ".join(format(v, format_spec) for v in value)
        text: str = super().format_field(value, format_spec)
        return text


_TEXT = _TextFormatter()


#: template fields a reason sentence fills in per address: the value, and a number of days
#: in years and months
SENTENCE_FIELDS = ("value", "duration")


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def render(template: str, params: FeatureParams, **values: Any) -> str:
    """Fill ``{params.<field>}``, and ``{<name>}`` for each of ``values``, into ``template``.

    The result is again a template: the fields of :data:`SENTENCE_FIELDS` (``value``,
    ``duration``) stay as they are (a reason sentence fills them in later with the
    feature's value for an address), and braces
    stay escaped; ``render(...).format()`` is the plain text.

    Examples
    --------
    >>> render("under {params.short_stay_days} days: {value:.0%}", FeatureParams())
    'under 180 days: {value:.0%}'
    """
    out: list[str] = []
    for literal, name, spec, conversion in _TEXT.parse(template):
        out.append(_escape(literal))
        if name is None:
            continue
        field_text = "{" + name + (f"!{conversion}" if conversion else "")
        field_text += (f":{spec}" if spec else "") + "}"
        if name in SENTENCE_FIELDS:
            out.append(field_text)
        else:
            out.append(_escape(_TEXT.format(field_text, params=params, **values)))
    return "".join(out)


@dataclass(frozen=True)
class Node:
    """A registered function: a feature or an intermediate.

    ``inputs``, ``own_sources`` and ``optional_sources`` are derived from the
    function's signature; ``bound`` holds the values :func:`parameterize` gave it.
    """

    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    own_sources: tuple[str, ...]
    optional_sources: tuple[str, ...] = ()  # read when present, not needed
    theme: str | None = None  # features only
    doc: str = ""
    bound: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "feature"

    def describe(self, params: FeatureParams | None = None) -> str:
        """The docstring's summary, quoting the bound values and ``params``.

        The summary is the first paragraph, its lines joined by spaces.
        """
        summary = " ".join(inspect.cleandoc(self.doc).split("\n\n")[0].split())
        return render(summary, params or FeatureParams(), **self.bound).format()


def _make_node(
    func: Callable[..., Any],
    *,
    name: str,
    kind: str,
    bound: Mapping[str, Any] | None = None,
) -> Node:
    """A node whose inputs and source tables are the parameters of ``func``."""
    bound = dict(bound or {})
    signature = inspect.signature(func)
    if unknown := sorted(set(bound) - set(signature.parameters)):
        raise CatalogueError(f"{name}: binds {', '.join(unknown)}, which it does not take")
    inputs: list[str] = []
    own: list[str] = []
    optional: list[str] = []
    for arg, parameter in signature.parameters.items():
        if arg in bound:
            continue
        if arg == "tables":
            raise CatalogueError(
                f"{name}: takes the bundle 'tables'; name each source table it reads as a "
                "parameter instead (addresses, registrations, ...)"
            )
        if arg in TABLES:
            check_sources(name, (arg,))
            (optional if parameter.default is None else own).append(arg)
        inputs.append(arg)
    node = Node(
        name,
        functools.partial(func, **bound) if bound else func,
        tuple(inputs),
        tuple(own),
        tuple(optional),
        theme=func.__module__.rsplit(".", 1)[-1] if kind == "feature" else None,
        doc=func.__doc__ or "",
        bound=bound,
        kind=kind,
    )
    if kind == "feature":
        if not node.doc.strip():
            raise CatalogueError(f"feature {name} needs a docstring (unit, window)")
        try:
            node.describe()
        except (AttributeError, IndexError, KeyError, ValueError) as exc:
            raise CatalogueError(f"feature {name}: docstring quotes an unknown value") from exc
    return node


@dataclass
class Registry:
    """All registered features and intermediates."""

    features: dict[str, Node] = field(default_factory=dict)
    intermediates: dict[str, Node] = field(default_factory=dict)

    def intermediate(self, func: F) -> F:
        """Register ``func`` as an intermediate: an input of features, not a feature."""
        self.intermediates[func.__name__] = _make_node(
            func, name=func.__name__, kind="intermediate"
        )
        return func

    def feature(self, func: F) -> F:
        """Register ``func`` as a feature of its module's theme; its name is the function's.

        The function returns a :class:`pandas.Series` indexed by query position
        (``_q``); positions it leaves out become NaN.
        """
        self.features[func.__name__] = _make_node(func, name=func.__name__, kind="feature")
        return func

    def parameterize(self, **variants: Mapping[str, Any]) -> Callable[[F], F]:
        """Register one feature per keyword: ``name={parameter: value, ...}``.

        Each feature is the decorated function with those parameters bound; its
        docstring is filled in with them. The function itself is not a feature.
        """

        def register(func: F) -> F:
            nodes = {
                name: _make_node(func, name=name, kind="feature", bound=bound)
                for name, bound in variants.items()
            }
            self.features.update(nodes)  # all variants, or none when one is refused
            return func

        return register

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
#: register a feature, an intermediate, or a family of features in :data:`REGISTRY`
feature = REGISTRY.feature
intermediate = REGISTRY.intermediate
parameterize = REGISTRY.parameterize


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


class Evaluator:
    """Computes features for one query frame, each input at most once.

    A function receives exactly the inputs its signature names: the source tables
    among them one by one (``None`` for an absent optional one), never the bundle.
    ``seeds`` gives values of features or intermediates computed elsewhere (the
    partitioned path computes town-wide facts once and seeds every partition with them).
    """

    def __init__(
        self,
        tables: SourceTables,
        queries: pd.DataFrame,
        params: FeatureParams,
        registry: Registry = REGISTRY,
        *,
        seeds: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.available = set(tables.available)
        self._base: dict[str, Any] = {
            "queries": queries,
            "params": params,
            **{name: tables.get(name) for name in MODEL_TABLES},
        }
        # values computed elsewhere (the town-wide facts of a partition): taken as they are
        self._cache: dict[str, Any] = dict(seeds or {})

    def can_compute(self, name: str) -> bool:
        """Whether every source table the input needs is present."""
        return not self.missing_sources(name)

    def missing_sources(self, name: str) -> tuple[str, ...]:
        """The absent source tables that ``name`` needs."""
        needed = self.registry.sources_of(name, include_optional=False)
        return tuple(s for s in needed if s not in self.available)

    def get(self, name: str) -> Any:
        """The value of a feature or intermediate (computed once, then cached)."""
        if name in self._base:
            return self._base[name]
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
            if name not in names:
                del self._cache[name]
