"""Build feature tables: one row per address as of a date, or one row per past visit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from rich.progress import Progress

from stratum_ml.features.asof import make_queries
from stratum_ml.features.catalogue import FeatureSet, load_catalogue
from stratum_ml.features.registry import REGISTRY, Evaluator, FeatureParams
from stratum_ml.sources.tables import SourceTables

log = logging.getLogger(__name__)


def build_features(
    tables: SourceTables,
    queries: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    params: FeatureParams | None = None,
    progress: bool = False,
    seeds: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Compute features for a query frame (see :func:`~stratum_ml.features.asof.make_queries`).

    Parameters
    ----------
    tables
        Validated source tables.
    queries
        Columns ``address_id`` and ``ref_date``; the result has the same index.
    features
        Names to compute (default: every feature in the catalogue, approved or not).
    params
        Feature constants (default :class:`FeatureParams`).
    progress
        Show a progress bar.
    seeds
        Values of features or intermediates computed elsewhere, used as they are
        (see :mod:`stratum_ml.features.partitioned`).

    Returns
    -------
    pandas.DataFrame
        One column per feature whose sources are present. Features whose source table is
        absent are left out (not zero-filled); ``result.attrs["absent_features"]`` maps
        each of them to the missing tables.
    """
    catalogue = load_catalogue()
    names = list(features) if features is not None else catalogue.names
    evaluator = Evaluator(tables, queries, params or FeatureParams(), seeds=seeds)
    absent = {n: list(evaluator.missing_sources(n)) for n in names if not evaluator.can_compute(n)}
    todo = [n for n in names if n not in absent]
    for name, missing in absent.items():
        log.info("feature %s is absent: source table(s) %s not present", name, ", ".join(missing))
    needs = {n: {node.name for node in REGISTRY.dependencies(n)} for n in todo}
    columns: dict[str, pd.Series] = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("features", total=len(todo))
        for i, name in enumerate(todo):
            bar.update(task, description=f"features: {name}")
            value = evaluator.get(name)
            columns[name] = _as_column(value, name, len(queries))
            evaluator.keep_only(set().union(*(needs[n] for n in todo[i + 1 :])))
            bar.advance(task)
    table = pd.DataFrame(columns, index=pd.RangeIndex(len(queries)))
    table.index = queries.index
    table.attrs["absent_features"] = absent
    return table


def _as_column(value: object, name: str, n: int) -> pd.Series:
    if not isinstance(value, pd.Series):
        raise TypeError(f"feature {name} returned {type(value).__name__}, not a Series")
    column = value.reindex(pd.RangeIndex(n))
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("float64")
    return column.rename(name)


def build_feature_table(
    tables: SourceTables,
    as_of: dt.date,
    *,
    feature_set: FeatureSet | None = None,
    progress: bool = False,
    engine: str = "local",
    partitions: int | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Features of every address as of ``as_of``, indexed by ``address_id``.

    ``engine`` ``local`` computes in memory; ``partitioned`` and ``dask`` compute the
    same table one partition of addresses at a time (``partitions`` of them), here or
    on a Dask cluster (``scheduler`` address, or a local cluster): see
    :mod:`stratum_ml.features.partitioned`.
    """
    queries = make_queries(tables.addresses["address_id"], as_of)
    if engine != "local" or partitions is not None or scheduler is not None:
        from stratum_ml.features.partitioned import build_features_with

        return build_features_with(
            engine,
            tables,
            queries,
            features=feature_set.features if feature_set else None,
            params=feature_set.params if feature_set else None,
            n_partitions=partitions,
            scheduler=scheduler,
            progress=progress,
        )
    return _build_set(tables, queries, feature_set, progress)


def build_visit_features(
    tables: SourceTables,
    visits: pd.DataFrame | None = None,
    *,
    feature_set: FeatureSet | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Features of each visit's address as of the visit date, indexed by ``inspection_id``.

    The visit's own outcome and anything dated on or after its date (the report the
    municipality files afterwards, a deregistration that follows) cannot reach its row.
    """
    visits = tables.inspections if visits is None else visits
    queries = make_queries(
        visits["address_id"],
        visits["inspected_at"],
        index=pd.Index(visits["inspection_id"].to_numpy(), name="inspection_id"),
    )
    return _build_set(tables, queries, feature_set, progress)


def _build_set(
    tables: SourceTables, queries: pd.DataFrame, feature_set: FeatureSet | None, progress: bool
) -> pd.DataFrame:
    if feature_set is None:
        return build_features(tables, queries, progress=progress)
    return build_features(
        tables,
        queries,
        features=feature_set.features,
        params=feature_set.params,
        progress=progress,
    )
