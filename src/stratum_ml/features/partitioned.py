"""Features one partition of addresses at a time: memory bounded by a partition.

The in-memory path (:func:`~stratum_ml.features.build.build_features`) joins every
query to every table at once; its working memory grows with the town. Here the
queries are split into partitions by a stable hash of their address id, and each
partition is computed by the *same* feature functions on only the rows it needs:

1. **Town-wide facts first**, as small tables, from the whole town:

   * ``building_units``: BAG units per building;
   * ``first_violation``: the date of each address's first violation (the linked
     violations read it for addresses outside the partition);
   * ``network_component_size``: the component size of every query, one sweep of a
     union-find over the dated links of the whole town (the only feature that needs
     the whole network);
   * the *row index* of every entity: each table's rows by partition of their
     address, by person, by owner, by establishment and by building.

2. **Each partition** then gets, of every source table, the rows of its own
   addresses, plus the rows of the persons, owners and establishments seen at its
   addresses (a person's other addresses for the resident links, an owner's
   portfolio for the owner counts and links, an establishment's other addresses)
   and the establishments in its addresses' buildings. The feature functions run
   unchanged on those rows, seeded with the town-wide facts
   (:class:`~stratum_ml.features.registry.Evaluator` ``seeds``), so the point-in-time
   rules are exactly those of the in-memory path and so are the results.

The plan runs in this process one partition after another (``engine="partitioned"``)
or on a Dask cluster (``engine="dask"``; a ``LocalCluster`` of two worker processes
when no scheduler address is given), at most two partitions per worker in flight.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import load_catalogue
from stratum_ml.features.registry import REGISTRY, Evaluator, FeatureParams
from stratum_ml.io import release_free_memory
from stratum_ml.sources.contract import MODEL_TABLES
from stratum_ml.sources.tables import SourceTables
from stratum_ml.sources.validate import ReferenceLookup

log = logging.getLogger(__name__)

Engine = Literal["local", "partitioned", "dask"]
#: the engines :func:`build_features_with` knows
ENGINES: tuple[str, ...] = ("local", "partitioned", "dask")
#: queries per partition when the number of partitions is not given
QUERIES_PER_PARTITION = 50_000
#: town-wide facts that every partition receives whole (small: one value per key)
TOWN_FACTS = ("building_units", "first_violation")
#: features computed town-wide per query, then handed to each partition
TOWN_FEATURES = ("network_component_size",)
#: features of an owner's whole portfolio, computed town-wide per query: a partition then
#: needs of other partitions only the rows of owners it may link (the portfolio of a
#: housing association would otherwise be copied into every partition)
OWNER_COUNT_FEATURES = ("owner_dwellings", "owner_acquisitions_24m", "owner_sales_24m")
#: the entity column whose other rows a partition also needs, per source table
ENTITY_COLUMNS = {
    "registrations": "person_id",
    "ownership": "owner_id",
    "businesses": "business_id",
}


def default_partitions(n_queries: int) -> int:
    """Partitions of about :data:`QUERIES_PER_PARTITION` queries, and at least two."""
    return max(2, -(-n_queries // QUERIES_PER_PARTITION))


def address_partition(address_ids: pd.Series | np.ndarray, n_partitions: int) -> np.ndarray:
    """The partition of each address id: a stable hash (the same in every process) modulo n.

    Examples
    --------
    >>> address_partition(np.array(["0479010000000001", "0479010000000002"]), 4).tolist()
    [0, 3]
    """
    if n_partitions < 1:
        raise ValueError(f"the number of partitions must be at least 1, not {n_partitions}")
    # each distinct id is hashed once: a table of millions of rows names ~1M addresses,
    # and turning every row's id into a Python string held them all at once
    codes, uniques = pd.factorize(
        np.asarray(address_ids) if isinstance(address_ids, np.ndarray) else address_ids
    )
    # distinct already: categorising them first (the default) would factorise them again
    hashed = pd.util.hash_array(np.asarray(uniques, dtype=object), categorize=False)
    part_of_unique = (hashed % np.uint64(n_partitions)).astype(np.int32)
    part: np.ndarray = part_of_unique[np.maximum(codes, 0)]
    if (codes < 0).any():  # a missing id: the partition its own hash gives
        ids = (
            np.asarray(address_ids, dtype=object)
            if isinstance(address_ids, np.ndarray)
            else (address_ids.to_numpy(dtype=object))
        )
        missing = ids[codes < 0]
        part[codes < 0] = (pd.util.hash_array(missing) % np.uint64(n_partitions)).astype(np.int32)
    return part


def rows_partition(
    ids: pd.Series, addresses: ReferenceLookup, address_part: np.ndarray, n_partitions: int
) -> np.ndarray:
    """:func:`address_partition` of each row's address id, looked up among the addresses.

    ``addresses`` is the lookup of the address ids of a checked ``addresses`` table
    (distinct and present, so its positions are its rows) and ``address_part`` their
    partitions: each distinct id is looked up instead of hashed. An id not found is hashed.
    """
    if len(addresses) != len(address_part):
        return address_partition(ids, n_partitions)
    positions = addresses.positions(ids)
    part: np.ndarray = address_part[np.maximum(positions, 0)]
    absent = positions < 0
    if absent.any():
        part[absent] = address_partition(ids[absent], n_partitions)
    return part


def town_facts(
    evaluator: Evaluator,
    todo: Sequence[str],
    n_queries: int,
    town_features: Sequence[str] = TOWN_FEATURES,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The town-wide facts that features ``todo`` need, and the town-wide features per query.

    ``evaluator`` holds the whole town (or the columns the facts read) and every query;
    ``town_features`` are the features of ``todo`` computed here, for every query.
    """
    needed = set().union(set(), *({d.name for d in REGISTRY.dependencies(n)} for n in todo))
    facts = {name: evaluator.get(name) for name in TOWN_FACTS if name in needed}
    per_query: dict[str, np.ndarray] = {}
    wanted = [name for name in town_features if name in todo]
    for i, name in enumerate(wanted):
        per_query[name] = evaluator.get(name).reindex(pd.RangeIndex(n_queries)).to_numpy()
        later = {d.name for n in wanted[i + 1 :] for d in REGISTRY.dependencies(n)}
        evaluator.keep_only(set(facts) | later)  # the network's edges go once used
    return facts, per_query


def assemble_partitions(
    results: Iterable[tuple[int, pd.DataFrame]],
    query_part: np.ndarray,
    index: pd.Index,
    absent: dict[str, list[str]],
) -> pd.DataFrame:
    """The partitions' results as one table in the order of the queries (``index``).

    Each partition's values are written into columns allocated once, as the
    partition arrives, so the whole table is never held twice.
    """
    n = len(query_part)
    columns: dict[str, np.ndarray] = {}
    dtypes: dict[str, Any] = {}
    filled = np.zeros(n, dtype=bool)
    for part, table in results:
        positions = np.flatnonzero(query_part == part)
        if len(table) != len(positions) or filled[positions].any():
            raise ValueError(f"partition {part}: {len(table)} rows for {len(positions)}")
        filled[positions] = True
        for name in table.columns:
            column = table[name]
            if dtypes.setdefault(name, column.dtype) != column.dtype:
                raise ValueError(f"partition {part}: {name} is {column.dtype}")
            is_cat = isinstance(column.dtype, pd.CategoricalDtype)
            values = column.cat.codes.to_numpy() if is_cat else column.to_numpy()
            if name not in columns:
                columns[name] = np.empty(n, dtype=values.dtype)
            columns[name][positions] = values
    if not filled.all():
        raise ValueError(f"{int((~filled).sum())} queries were not computed")
    out = {
        name: pd.Categorical.from_codes(values, dtype=dtypes[name])
        if isinstance(dtypes[name], pd.CategoricalDtype)
        else values
        for name, values in columns.items()
    }
    columns.clear()
    table = pd.DataFrame(out, index=index, copy=False)
    table.attrs["absent_features"] = absent
    return table


@dataclass
class _TableIndex:
    """Where a partition's rows lie in one source table."""

    own: np.ndarray  # partition of each row's address
    entity: np.ndarray | None = None  # code of each row's person/owner/establishment
    building: np.ndarray | None = None  # code of each row's building (-1: unknown)
    address_row: np.ndarray | None = None  # row of each row's address in ``addresses``


@dataclass
class PartitionPlan:
    """The town-wide facts and the row index of every partition.

    Build it with :meth:`from_tables`; :meth:`tables_for` gives one partition's rows.
    """

    tables: SourceTables
    queries: pd.DataFrame
    n_partitions: int
    names: list[str]
    params: FeatureParams
    absent: dict[str, list[str]]
    query_part: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    index: dict[str, _TableIndex] = field(default_factory=dict)

    @classmethod
    def from_tables(
        cls,
        tables: SourceTables,
        queries: pd.DataFrame,
        *,
        n_partitions: int | None = None,
        features: Sequence[str] | None = None,
        params: FeatureParams | None = None,
    ) -> PartitionPlan:
        """Compute the town-wide facts and index every table by partition and entity."""
        params = params or FeatureParams()
        n_partitions = n_partitions or default_partitions(len(queries))
        names = list(features) if features is not None else load_catalogue().names
        evaluator = Evaluator(tables, queries, params)
        absent = {
            n: list(evaluator.missing_sources(n)) for n in names if not evaluator.can_compute(n)
        }
        todo = [n for n in names if n not in absent]
        plan = cls(
            tables=tables,
            queries=queries,
            n_partitions=n_partitions,
            names=names,
            params=params,
            absent=absent,
            query_part=address_partition(queries["address_id"].to_numpy(), n_partitions),
        )
        plan.facts, plan.per_query = town_facts(
            evaluator, todo, len(queries), (*TOWN_FEATURES, *OWNER_COUNT_FEATURES)
        )
        evaluator.keep_only(set())
        release_free_memory()
        plan._index_tables()
        return plan

    def _index_tables(self) -> None:
        addresses = self.tables.addresses
        lookup = ReferenceLookup(addresses["address_id"])
        address_part = address_partition(addresses["address_id"], self.n_partitions)
        building_codes, _ = pd.factorize(addresses["building_id"])
        for name, frame in self.tables.items():
            if "address_id" not in frame.columns:
                continue  # a reference table (areas): every partition gets it whole
            own = (
                address_part
                if name == "addresses"
                else rows_partition(frame["address_id"], lookup, address_part, self.n_partitions)
            )
            idx = _TableIndex(own=own)
            if name in ENTITY_COLUMNS:
                entity = pd.factorize(frame[ENTITY_COLUMNS[name]])[0]
                if name == "ownership":  # other partitions read an owner's rows for links only
                    unlinked = frame["owner_type"].isin(self.params.unlinked_owner_types)
                    entity[unlinked.to_numpy(dtype=bool)] = -1
                idx.entity = entity
            if name == "addresses":
                idx.building = building_codes
            if name == "businesses":
                rows = (
                    lookup.positions(frame["address_id"])
                    if len(lookup) == len(address_part)
                    else pd.Index(addresses["address_id"]).get_indexer(frame["address_id"])
                )
                idx.address_row = rows
                idx.building = np.where(rows >= 0, building_codes[np.maximum(rows, 0)], -1)
            self.index[name] = idx

    @property
    def partitions(self) -> list[int]:
        """The partitions that hold at least one query."""
        return [int(p) for p in np.unique(self.query_part)]

    def rows_for(self, part: int) -> dict[str, np.ndarray]:
        """A boolean mask of the rows partition ``part`` needs, per present table."""
        masks: dict[str, np.ndarray] = {}
        for name, idx in self.index.items():
            own = idx.own == part
            mask = own
            if idx.entity is not None:
                seen = np.zeros(int(idx.entity.max(initial=-1)) + 1, dtype=bool)
                codes = idx.entity[own]
                seen[codes[codes >= 0]] = True
                mask = mask | ((idx.entity >= 0) & seen[np.maximum(idx.entity, 0)])
            masks[name] = mask
        if "businesses" in masks:
            address_index = self.index["addresses"]
            assert address_index.building is not None
            buildings = address_index.building[masks["addresses"]]
            in_building = np.zeros(int(address_index.building.max(initial=-1)) + 1, dtype=bool)
            in_building[buildings[buildings >= 0]] = True
            biz = self.index["businesses"]
            assert biz.building is not None and biz.address_row is not None
            there = (biz.building >= 0) & in_building[np.maximum(biz.building, 0)]
            masks["businesses"] = masks["businesses"] | there
            # the addresses of the establishments taken, for their building
            rows = biz.address_row[masks["businesses"]]
            extra = np.zeros(len(address_index.own), dtype=bool)
            extra[rows[rows >= 0]] = True
            masks["addresses"] = masks["addresses"] | extra
        return masks

    def tables_for(self, part: int) -> SourceTables:
        """The rows of every source table that partition ``part`` needs (table order kept).

        A table without addresses (``areas``) is a small reference table: it goes whole.
        """
        masks = self.rows_for(part)
        subset: dict[str, pd.DataFrame | None] = {}
        for name in MODEL_TABLES:
            frame = self.tables.get(name)
            if frame is None or name not in masks:
                subset[name] = frame
            else:
                subset[name] = frame.loc[masks[name]].reset_index(drop=True)
        return SourceTables(**subset)  # type: ignore[arg-type]

    def task_for(self, part: int) -> PartitionTask:
        """Everything a worker needs to compute partition ``part``."""
        positions = np.flatnonzero(self.query_part == part)
        seeds: dict[str, Any] = dict(self.facts)
        for name, values in self.per_query.items():
            seeds[name] = pd.Series(values[positions], index=pd.RangeIndex(len(positions)))
        return PartitionTask(
            part=part,
            positions=positions,
            tables=self.tables_for(part),
            queries=self.queries.iloc[positions],
            names=[n for n in self.names if n not in self.absent],
            params=self.params,
            seeds=seeds,
        )

    def assemble(self, results: Iterable[tuple[int, pd.DataFrame]]) -> pd.DataFrame:
        """The partitions' results as one table in the order (and index) of the queries.

        Each partition's values are written into columns allocated once, as the
        partition arrives, so the whole table is never held twice.
        """
        return assemble_partitions(results, self.query_part, self.queries.index, self.absent)


@dataclass
class PartitionTask:
    """One partition's rows, queries and town-wide facts: picklable, sent to a worker."""

    part: int
    positions: np.ndarray
    tables: SourceTables
    queries: pd.DataFrame
    names: list[str]
    params: FeatureParams
    seeds: dict[str, Any]


def compute_partition(task: PartitionTask) -> tuple[int, pd.DataFrame]:
    """Features of one partition's queries (runs in a Dask worker, or here)."""
    table = build_features(
        task.tables, task.queries, features=task.names, params=task.params, seeds=task.seeds
    )
    return task.part, table


Runner = Callable[
    [Callable[[PartitionTask], tuple[int, pd.DataFrame]], Iterator[PartitionTask]],
    Iterator[tuple[int, pd.DataFrame]],
]


def _run_here(
    func: Callable[[PartitionTask], tuple[int, pd.DataFrame]], tasks: Iterator[PartitionTask]
) -> Iterator[tuple[int, pd.DataFrame]]:
    for task in tasks:
        yield func(task)


def build_features_partitioned(
    tables: SourceTables,
    queries: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    params: FeatureParams | None = None,
    n_partitions: int | None = None,
    runner: Runner | None = None,
) -> pd.DataFrame:
    """:func:`~stratum_ml.features.build.build_features`, one partition of addresses at a time.

    Parameters
    ----------
    tables
        Validated source tables.
    queries
        Columns ``address_id`` and ``ref_date`` (any reference dates, as in training).
    features
        Names to compute (default: the whole catalogue).
    params
        Feature constants (default :class:`FeatureParams`).
    n_partitions
        Number of partitions of the addresses (by a stable hash of the address id);
        default :func:`default_partitions`.
    runner
        How to run the partitions (default: here, one after another).

    Returns
    -------
    pandas.DataFrame
        The same table as ``build_features(tables, queries, ...)``: integers equal to
        the bit, floats equal up to the order of floating-point sums.
    """
    plan = PartitionPlan.from_tables(
        tables, queries, n_partitions=n_partitions, features=features, params=params
    )
    if len(queries) == 0:
        return build_features(tables, queries, features=features, params=params)
    tasks = (plan.task_for(p) for p in plan.partitions)
    return plan.assemble((runner or _run_here)(compute_partition, tasks))


def dask_runner(scheduler: str | None = None, *, n_workers: int = 2) -> Runner:
    """A runner on a Dask cluster: ``scheduler`` (address), or a ``LocalCluster``.

    The local cluster has ``n_workers`` worker processes of one thread each. At most two
    partitions per worker are in flight, so this process holds few partitions at once.
    """

    def run(
        func: Callable[[PartitionTask], tuple[int, pd.DataFrame]],
        tasks: Iterator[PartitionTask],
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        # dask.distributed has no type hints: typed as Any here, on purpose
        distributed: Any = importlib.import_module("dask.distributed")
        cluster = (
            None
            if scheduler
            else distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
        )
        client = distributed.Client(scheduler if scheduler else cluster)
        try:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            window = distributed.as_completed()
            for task in tasks:
                window.add(client.submit(func, task, pure=False))
                if window.count() >= 2 * workers:
                    future = next(window)
                    yield future.result()
                    future.release()
            for future in window:
                yield future.result()
                future.release()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return run


def build_features_with(
    engine: str,
    tables: SourceTables,
    queries: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    params: FeatureParams | None = None,
    n_partitions: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Features of ``queries`` with one of :data:`ENGINES`.

    ``local`` is the in-memory path; ``partitioned`` the same plan as ``dask`` run here.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if scheduler is not None and engine != "dask":
        raise ValueError(f"a scheduler address needs --engine dask, not {engine!r}")
    if engine == "local":
        return build_features(tables, queries, features=features, params=params, progress=progress)
    runner = dask_runner(scheduler) if engine == "dask" else None
    return build_features_partitioned(
        tables, queries, features=features, params=params, n_partitions=n_partitions, runner=runner
    )


__all__ = [
    "QUERIES_PER_PARTITION",
    "ENGINES",
    "PartitionPlan",
    "address_partition",
    "build_features_partitioned",
    "build_features_with",
    "dask_runner",
]
