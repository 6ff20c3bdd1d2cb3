"""Features of a source folder, one partition at a time, never holding the whole town.

The plan of :mod:`~stratum_ml.features.partitioned` (town-wide facts first, then each
partition on the rows it needs) works on tables already loaded, so its memory grows
with the town. Here the folder itself is split, on disk:

1. **Split.** Each source table is read and validated one table, or one block of rows,
   at a time (:class:`~stratum_ml.sources.SourceStream`: the contract checks of
   ``load_sources``), and its rows are written to a temporary folder, one Arrow file
   per partition of their address (:func:`~stratum_ml.features.partitioned.address_partition`).
2. **Town-wide facts**, from only the columns they read: units per building, each
   address's first violation, the component size of every query in the link network,
   and which other partitions need a row (the persons, owners and establishments seen
   at a partition's addresses, the establishments in its buildings and their
   addresses). Those rows are copied to the partitions that need them. The link
   tables are read back from the split folder one at a time, their ids as integer
   codes, and let go once their edges, counts and copies are done.
3. **Each partition** loads its rows, in the order of the source table, and runs the
   same feature functions with the facts as seeds
   (:func:`~stratum_ml.features.partitioned.compute_partition`); the results are put
   together in the order of the queries (:func:`features_from_folder`), or written to a
   file as each partition is done (:func:`features_to_file`, never holding the table).

Memory is that of one table block, the columns of the facts, and one partition (or two
with ``workers=2``); the temporary folder is removed afterwards.

With ``workers=2`` each phase runs on two cores, in spawned worker processes: the
split of the tables other than areas and addresses (which are checked here meanwhile,
against their ids read ahead), the link tables' facts (registrations in one process,
ownership and businesses in the other) and the partitions. Each phase's wall and CPU
seconds are logged (INFO).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stratum_ml.features.asof import make_queries
from stratum_ml.features.network import LINK_SOURCES, component_sizes, link_edges
from stratum_ml.features.partitioned import (
    ENTITY_COLUMNS,
    OWNER_COUNT_FEATURES,
    TOWN_FEATURES,
    PartitionTask,
    address_partition,
    assemble_partitions,
    compute_partition,
    default_partitions,
    rows_partition,
    town_facts,
)
from stratum_ml.features.registry import REGISTRY, Evaluator, FeatureParams
from stratum_ml.io import process_alive, release_free_memory, table_format, write_frames_atomic
from stratum_ml.sources.contract import MODEL_TABLES, TABLES, TableSpec
from stratum_ml.sources.extract import ExtractDate
from stratum_ml.sources.tables import SourceTables, normalise_column
from stratum_ml.sources.validate import BATCH_ROWS, BrokenRule, ReferenceLookup, SourceStream

log = logging.getLogger(__name__)

#: the column of a split file that holds the row's number in its source table
ROW = "_row"
#: an owner's counts, from the ``ownership`` table alone
OWNER_FEATURES = OWNER_COUNT_FEATURES
#: features computed for every query from the whole town, handed to the partitions: the
#: component size needs the whole network; an owner's counts need the whole portfolio,
#: which for a housing association would be copied into every partition
SPILL_TOWN_FEATURES = (*TOWN_FEATURES, *OWNER_FEATURES)
#: the columns of each link table that the town-wide facts read, besides its address and
#: entity: the network's start date, and the owner counts' columns
LINK_COLUMNS: dict[str, list[str]] = {
    "registrations": ["registered_from"],
    "ownership": ["owner_type", "owned_from", "owned_until"],
    "businesses": ["registered_from"],
}
#: the ids of a link table are coded in this many buckets, one at a time (see :func:`_id_codes`)
CODE_BUCKETS = 16
#: the column every other table's rows are partitioned by
ADDRESS_KEY = ("addresses", "address_id")
#: the name of a split folder: the prefix, the process id, a dot and a random part
SPLIT_PREFIX = "stratum-split-pid"
#: Arrow IPC compression of the split files
COMPRESSION = "lz4"


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A normalised block as Arrow: categories as their codes, the row number in ``_row``."""
    columns: dict[str, pa.Array] = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns[name] = pa.array(column.cat.codes.to_numpy())
        else:
            columns[name] = pa.array(column, from_pandas=True)
    columns[ROW] = pa.array(frame.index.to_numpy(dtype=np.int64))
    return pa.table(columns)


def _from_arrow(table: pa.Table, spec: TableSpec) -> pd.DataFrame:
    """The normalised frame of a split file's rows (the inverse of :func:`_to_arrow`)."""
    n = table.num_rows
    columns: dict[str, Any] = {}
    for c in spec.columns:
        if c.name not in table.column_names:
            continue
        values = table.column(c.name)
        if c.kind == "category":
            assert c.domain is not None
            codes: np.ndarray = values.to_numpy().astype(np.int8, copy=False)
            columns[c.name] = pd.Categorical.from_codes(codes, categories=pd.Index(c.domain))
        else:
            columns[c.name] = normalise_column(values.to_pandas(), c)
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


class _Files:
    """The split files of one table: ``<table>/<kind>-<partition>.arrow``, written in order."""

    def __init__(self, root: Path, table: str, kind: str, n_partitions: int) -> None:
        self.folder = root / table
        self.folder.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self.n = n_partitions
        self._writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
        self._schema: pa.Schema | None = None

    def path(self, part: int) -> Path:
        return self.folder / f"{self.kind}-{part}.arrow"

    def write(self, table: pa.Table, part: np.ndarray) -> None:
        """Append each row of ``table`` to the file of its partition ``part``."""
        if self._schema is None:
            self._schema = table.schema
            for p in range(self.n):
                self._writers[p] = pa.ipc.new_file(
                    self.path(p),
                    self._schema,
                    options=pa.ipc.IpcWriteOptions(compression=COMPRESSION),
                )
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        # a stable sort of 16-bit codes is a radix sort; one take, then each partition's slice
        codes = part.astype(np.int16 if self.n <= np.iinfo(np.int16).max else np.int32)
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=self.n))])
        ordered = table.take(order)
        for p in range(self.n):
            if bounds[p + 1] > bounds[p]:
                self._writers[p].write_table(ordered.slice(bounds[p], bounds[p + 1] - bounds[p]))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def _read_file(path: Path) -> pa.Table | None:
    if not path.exists():
        return None
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


@dataclass
class SpilledTown:
    """A source folder split by partition of addresses, and its town-wide facts."""

    root: Path
    n_partitions: int
    present: tuple[str, ...]
    addresses: pd.Series  # every address id, in file order
    address_part: np.ndarray
    areas: pd.DataFrame | None = None
    inspections: pd.DataFrame | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    #: the address ids hashed for lookups while splitting (the stream's)
    address_lookup: ReferenceLookup | None = None

    def load(self, part: int) -> SourceTables:
        """Every table's rows that partition ``part`` needs, in the source tables' order."""
        frames: dict[str, pd.DataFrame | None] = {name: None for name in MODEL_TABLES}
        for name in self.present:
            if name == "areas":
                frames[name] = self.areas
                continue
            spec = TABLES[name]
            parts = [
                t
                for t in (
                    _read_file(self.root / name / f"{k}-{part}.arrow") for k in ("own", "extra")
                )
                if t is not None
            ]
            if not parts:
                frames[name] = _from_arrow(_empty_arrow(spec), spec)
                continue
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            if len(parts) > 1:
                table = table.take(pa.compute.sort_indices(table, [(ROW, "ascending")]))
            frames[name] = _from_arrow(table, spec)
        return SourceTables(**frames)  # type: ignore[arg-type]


def _empty_arrow(spec: TableSpec) -> pa.Table:
    empty = pd.DataFrame(
        {c.name: normalise_column(pd.Series([], dtype=object), c) for c in spec.columns}
    )
    return _to_arrow(empty)


def split_sources(
    stream: SourceStream, root: Path, n_partitions: int | None = None, workers: int = 1
) -> SpilledTown:
    """Read, validate and split every table of ``stream`` into ``root`` by address partition.

    The areas and the addresses are read here (every other table refers to them); the
    other tables, each independent of the others, here one after another or in
    ``workers`` worker processes, one table each at a time, largest first. With
    ``workers`` > 1 the columns the other tables refer to (the address ids) are read
    ahead (:meth:`~stratum_ml.sources.SourceStream.read_ahead`), so the workers split
    while the areas and the addresses are checked here; a broken rule anywhere stops
    them and is reported as ``load_sources`` reports it.
    """
    present = tuple(stream.tables)
    rest = [name for name in present if name not in ("areas", "addresses")]
    ids = _read_ahead(stream, rest) if workers > 1 and rest else None
    if ids is None:
        town = _split_referenced(stream, root, present, n_partitions)
        if workers > 1:
            _split_in_workers(stream, town, rest, workers)
            return town
        for name in rest:
            inspections = _split_table(stream, town, name)
            if inspections is not None:
                town.inspections = inspections
            release_free_memory()
        return town
    n = n_partitions or default_partitions(len(ids))
    town = SpilledTown(
        root=root,
        n_partitions=n,
        present=present,
        addresses=ids,
        address_part=address_partition(ids, n),
    )
    _split_in_workers(stream, town, rest, workers, here=_split_addresses)
    return town


def _read_ahead(stream: SourceStream, names: Sequence[str]) -> pd.Series | None:
    """Read ahead the columns tables ``names`` refer to; the address ids (``None``: unread).

    ``None`` when a file or column cannot be read: the tables are then checked in order
    (areas and addresses first), which reports it.
    """
    referenced = sorted(
        {c.references for name in names for c in TABLES[name].columns if c.references}
    )
    if ADDRESS_KEY not in referenced:
        return None
    try:
        read = {key: stream.read_ahead(*key) for key in referenced if key[0] in stream.files}
    except (OSError, ValueError, KeyError):
        stream.release_references()
        return None
    return read.get(ADDRESS_KEY)


def _split_referenced(
    stream: SourceStream, root: Path, present: tuple[str, ...], n_partitions: int | None
) -> SpilledTown:
    """Read and check the areas and the addresses, and split the addresses: the town."""
    areas = pd.concat(list(stream.read("areas"))) if "areas" in present else None
    [block] = list(stream.read("addresses"))
    n = n_partitions or default_partitions(len(block))
    town = SpilledTown(
        root=root,
        n_partitions=n,
        present=present,
        addresses=block["address_id"].reset_index(drop=True),
        address_part=address_partition(block["address_id"], n),
        areas=areas,
    )
    _write_blocks(town, "addresses", [block])
    del block
    release_free_memory()
    return town


def _split_addresses(stream: SourceStream, town: SpilledTown) -> None:
    """Read and check the areas and the addresses, and split the addresses, into ``town``.

    The town's address ids and partitions were read ahead; the stream compares them
    with the checked ones.
    """
    if "areas" in town.present:
        town.areas = pd.concat(list(stream.read("areas")))
    _write_blocks(town, "addresses", stream.read("addresses"))
    release_free_memory()


def _write_blocks(town: SpilledTown, name: str, blocks: Iterable[pd.DataFrame]) -> None:
    """Write each block's rows to the ``own`` file of their address's partition."""
    files: _Files | None = None
    for block in blocks:
        if files is None:
            files = _Files(town.root, name, "own", town.n_partitions)
        part = (
            town.address_part
            if name == "addresses"
            else _address_part(block["address_id"], town, town.address_lookup)
        )
        files.write(_to_arrow(block), part)
        del block
    if files is not None:
        files.close()


@dataclass(frozen=True)
class Took:
    """Wall and CPU seconds a step took, and in which process (for the phase log)."""

    seconds: float
    cpu_seconds: float
    pid: int

    @classmethod
    def since(cls, start: tuple[float, float]) -> Took:
        """What it took since ``start`` (a :func:`_clock` reading) in this process."""
        wall, cpu = _clock()
        return cls(wall - start[0], cpu - start[1], os.getpid())

    def __str__(self) -> str:
        return f"{self.seconds:.1f} s ({self.cpu_seconds:.1f} s CPU) in process {self.pid}"


def _clock() -> tuple[float, float]:
    """Wall and CPU seconds of this process now (:meth:`Took.since`)."""
    return time.perf_counter(), time.process_time()


def _split_table(
    stream: SourceStream,
    town: SpilledTown,
    name: str,
    wanted: Callable[[], bool] | None = None,
) -> pd.DataFrame | None:
    """Read, check and split table ``name`` (not areas or addresses); its rows if inspections.

    ``wanted`` is asked before each block: when false, the split is given up
    (:class:`BrokenRule`: a rule is broken elsewhere).
    """
    town.address_lookup = stream.referenced(*ADDRESS_KEY)
    kept: list[pd.DataFrame] = []

    def blocks() -> Iterator[pd.DataFrame]:
        for block in stream.read(name):
            if wanted is not None and not wanted():
                raise BrokenRule(name)
            if name == "inspections":  # read by the town-wide facts
                kept.append(block)
            yield block

    _write_blocks(town, name, blocks())
    return pd.concat(kept) if kept else None


@functools.lru_cache(maxsize=1)
def _split_state(path: Path) -> tuple[SourceStream, SpilledTown]:
    with open(path, "rb") as fh:
        state: tuple[SourceStream, SpilledTown] = pickle.load(fh)
    return state


def split_in_worker(
    path: Path, name: str
) -> tuple[str, dict[str, Any] | None, pd.DataFrame | None, Took]:
    """Split table ``name`` in a worker process, from the stream and town written to ``path``.

    Returns the table's name, the latest date of each of its dating columns (``None``:
    a rule is broken, or the split was given up: ``path`` is gone), its rows if it is
    ``inspections``, and what the split took.
    """
    start = _clock()
    stream, town = _split_state(path)
    try:
        inspections = _split_table(stream, town, name, wanted=path.exists)
    except BrokenRule:
        return name, None, None, Took.since(start)
    finally:
        release_free_memory()
    return name, stream.latest_dates(name), inspections, Took.since(start)


def _split_in_workers(
    stream: SourceStream,
    town: SpilledTown,
    names: list[str],
    workers: int,
    here: Callable[[SourceStream, SpilledTown], None] | None = None,
) -> None:
    """Split tables ``names`` in ``workers`` spawned worker processes, largest file first.

    ``here`` (the areas' and addresses' check, when their referenced columns were
    read ahead) runs in this process meanwhile. At the first broken rule, here or in
    a worker, the workers stop at their next block and the folder is reported as
    ``load_sources`` reports it, once they are gone.
    """
    path = town.root / "split.pickle"
    worker_stream = stream.for_worker()
    worker_town = dataclasses.replace(town, addresses=pd.Series([], dtype="str"), areas=None)
    with open(path, "wb") as fh:
        pickle.dump((worker_stream, worker_town), fh, protocol=pickle.HIGHEST_PROTOCOL)
    del worker_stream, worker_town
    order = sorted(names, key=lambda name: -stream.files[name].stat().st_size)
    context = multiprocessing.get_context("spawn")
    broken = False
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(split_in_worker, path, name) for name in order]
        try:
            if here is not None:
                start = _clock()
                _unreported(stream, here, town)
                log.info(
                    "split areas and addresses (checked beside the workers): %s", Took.since(start)
                )
            for future in as_completed(futures):
                name, latest, inspections, took = future.result()
                if latest is None:
                    raise BrokenRule(name)
                log.info("split %s: %s", name, took)
                stream.add_latest_dates(name, latest)
                if inspections is not None:
                    town.inspections = inspections
        except BrokenRule:
            broken = True
        finally:
            path.unlink(missing_ok=True)  # if not done, the workers stop at their next block
            pool.shutdown(wait=True, cancel_futures=True)
    if broken:
        stream.raise_findings()


def _unreported(
    stream: SourceStream,
    read: Callable[[SourceStream, SpilledTown], None],
    town: SpilledTown,
) -> None:
    """``read(stream, town)``, a broken rule raised as :class:`BrokenRule`, not reported.

    Reporting it (``load_sources``) waits until the workers are stopped.
    """
    report_broken, stream.report_broken = stream.report_broken, False
    try:
        read(stream, town)
    finally:
        stream.report_broken = report_broken


def _address_part(
    ids: pd.Series, town: SpilledTown, addresses: ReferenceLookup | None
) -> np.ndarray:
    """The partition of each row's address, by the stream's lookup of the address ids."""
    if addresses is None:
        return address_partition(ids, town.n_partitions)
    return rows_partition(ids, addresses, town.address_part, town.n_partitions)


def _routes(
    row_group: np.ndarray,
    row_part: np.ndarray,
    member_group: np.ndarray,
    member_part: np.ndarray,
    chunk: int = 1 << 20,
) -> tuple[np.ndarray, np.ndarray]:
    """(row, partition) for every partition holding a member of the row's group, but its own.

    ``row_group`` is each row's group code (-1: none); ``member_group`` and
    ``member_part`` the group and partition of every member; the groups are codes
    ``0 .. n - 1``. The rows are routed ``chunk`` at a time (the pairs of a table of
    millions of rows took several arrays of millions of pairs at once); the pairs come
    by row, then by partition.
    """
    n_parts = np.int64(max(int(row_part.max(initial=0)), int(member_part.max(initial=0))) + 1)
    n_groups = max(int(row_group.max(initial=-1)), int(member_group.max(initial=-1))) + 1
    pairs = member_group.astype(np.int64)
    pairs *= n_parts
    pairs += member_part
    pairs = pairs[member_group >= 0]
    pairs.sort()
    if len(pairs):  # each (group, partition) once
        pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    # the pairs of group g are pairs[bounds[g]:bounds[g + 1]]
    bounds = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // n_parts, minlength=n_groups), out=bounds[1:])
    rows_out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    dest_out: list[np.ndarray] = [np.zeros(0, dtype=np.int32)]
    for begin in range(0, len(row_group), chunk):
        group = row_group[begin : begin + chunk]
        start = bounds[np.maximum(group, 0)]
        count = np.where(group >= 0, bounds[np.maximum(group, 0) + 1] - start, 0)
        rows = np.repeat(np.arange(begin, begin + len(group), dtype=np.int64), count)
        offsets = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        dest = (pairs[np.repeat(start, count) + offsets] % n_parts).astype(np.int32)
        keep = dest != row_part[rows]
        rows_out.append(rows[keep])
        dest_out.append(dest[keep])
    return np.concatenate(rows_out), np.concatenate(dest_out)


def _copy_extras(
    town: SpilledTown, name: str, row_part: np.ndarray, rows: np.ndarray, dest: np.ndarray
) -> None:
    """Copy rows ``rows`` of table ``name`` to the partitions ``dest`` (``extra`` files)."""
    spec_files = _Files(town.root, name, "extra", town.n_partitions)
    source = row_part[rows]
    order = np.lexsort((rows, source))
    rows, dest, source = rows[order], dest[order], source[order]
    bounds = np.searchsorted(source, np.arange(town.n_partitions + 1))
    for q in range(town.n_partitions):
        if bounds[q + 1] == bounds[q]:
            continue
        table = _read_file(town.root / name / f"own-{q}.arrow")
        assert table is not None
        own_rows = table.column(ROW).to_numpy()
        picked = rows[bounds[q] : bounds[q + 1]]
        positions = np.searchsorted(own_rows, picked)
        spec_files.write(table.take(positions), dest[bounds[q] : bounds[q + 1]])
        del table
    spec_files.close()


def _unique_pairs(rows: np.ndarray, dest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    key = np.unique(rows.astype(np.int64) * (1 << 20) + dest)
    return key >> 20, (key & ((1 << 20) - 1)).astype(np.int32)


def town_wide(
    stream: SourceStream,
    town: SpilledTown,
    queries: pd.DataFrame,
    names: Sequence[str],
    params: FeatureParams,
    workers: int = 1,
) -> None:
    """The town-wide facts of ``names``, and the rows each partition needs from the others.

    The link tables are read from the split folder one at a time, with only the
    columns the facts read, their ids as integer codes (:func:`link_facts`): each
    gives its edges of the link network, its copies to other partitions, and for
    ``ownership`` the owner counts of every query; then it goes. With ``workers`` > 1
    each link table is done in a spawned worker process of its own, while the facts of
    the buildings are computed here. The
    network's component sizes come from the edges of all three, held as codes.
    """
    buildings = stream.read_columns("addresses", ["building_id"])
    building, _ = pd.factorize(buildings["building_id"])
    refs = queries["ref_date"].to_numpy()
    links = [name for _, name, _, _ in LINK_SOURCES if name in town.present]
    done: Iterable[LinkFacts]
    if workers > 1 and links:
        here = functools.partial(_building_facts, town, buildings, queries, names, params)
        del buildings
        done = _link_facts_in_workers(town, links, building, refs, names, params, here)
    else:
        _building_facts(town, buildings, queries, names, params)
        del buildings
        done = (link_facts(town, name, building, refs, names, params) for name in links)
    edges: list[pd.DataFrame] = []
    for facts in done:
        log.info("town-wide facts of %s: %s", facts.name, facts.took)
        if facts.edges is not None:
            edges.append(facts.edges)
        town.per_query.update(facts.per_query)
    del done
    if "network_component_size" in names:
        network = pd.concat(edges, ignore_index=True) if edges else _edges_before(None, refs.max())
        del edges
        nodes = np.arange(len(queries), dtype=np.int64)
        town.per_query["network_component_size"] = component_sizes(
            len(queries),
            network["a"].to_numpy(),
            network["b"].to_numpy(),
            network["date"].to_numpy(),
            nodes,
            refs,
        )
        del network
    release_free_memory()


def _building_facts(
    town: SpilledTown,
    buildings: pd.DataFrame,
    queries: pd.DataFrame,
    names: Sequence[str],
    params: FeatureParams,
) -> None:
    """The facts of the buildings (units per building, each address's first violation)."""
    small = _only(addresses=buildings, inspections=town.inspections)
    town.facts, _ = town_facts(Evaluator(small, queries, params), names, len(queries), ())


@dataclass
class LinkFacts:
    """What one link table gives the town-wide facts (:func:`link_facts`)."""

    name: str
    #: its edges of the link network dated before the last reference date (``None``: none,
    #: or the network is not asked for)
    edges: pd.DataFrame | None
    #: the owner counts of every query (``ownership`` only)
    per_query: dict[str, np.ndarray]
    took: Took


def link_facts(
    town: SpilledTown,
    name: str,
    building: np.ndarray,
    refs: np.ndarray,
    names: Sequence[str],
    params: FeatureParams,
) -> LinkFacts:
    """The town-wide facts of link table ``name``, and its rows copied to other partitions.

    The table is read from the split folder as codes (:func:`_coded_table`). ``building``
    is the building code of every address, ``refs`` the reference date of every query
    (query ``i`` asks address row ``i``). Depends on no other link table, so the three
    can be done in separate processes.
    """
    start = _clock()
    frame, part = _coded_table(town, name)
    edges = None
    if "network_component_size" in names:
        edge = link_edges(name, frame, params)
        if edge is not None:
            edges = _edges_before(edge, refs.max())
        del edge
        release_free_memory()
    per_query: dict[str, np.ndarray] = {}
    if name == "ownership":
        coded_queries = pd.DataFrame(
            {
                "address_id": np.arange(len(refs), dtype=np.int32),  # query i asks address row i
                "ref_date": refs,
            }
        )
        owner = Evaluator(_only(ownership=frame), coded_queries, params)
        for feature in (n for n in OWNER_FEATURES if n in names):
            values = owner.get(feature).reindex(pd.RangeIndex(len(refs)))
            per_query[feature] = values.to_numpy()
        del owner
    _copy_rows(town, name, frame, part, building, params)
    del frame, part
    release_free_memory()
    return LinkFacts(name=name, edges=edges, per_query=per_query, took=Took.since(start))


@functools.lru_cache(maxsize=1)
def _facts_state(
    path: Path,
) -> tuple[SpilledTown, np.ndarray, np.ndarray, list[str], FeatureParams]:
    with open(path, "rb") as fh:
        state: tuple[SpilledTown, np.ndarray, np.ndarray, list[str], FeatureParams]
        state = pickle.load(fh)
    return state


def link_facts_in_worker(path: Path, name: str) -> LinkFacts:
    """:func:`link_facts` of table ``name`` in a worker process, from the state at ``path``."""
    town, building, refs, names, params = _facts_state(path)
    try:
        return link_facts(town, name, building, refs, names, params)
    finally:
        release_free_memory()


def _link_facts_in_workers(
    town: SpilledTown,
    links: list[str],
    building: np.ndarray,
    refs: np.ndarray,
    names: Sequence[str],
    params: FeatureParams,
    meanwhile: Callable[[], object],
) -> list[LinkFacts]:
    """:func:`link_facts` of each of ``links`` in a spawned worker process of its own (at
    most three: registrations, ownership, businesses), in that order.

    The town (without its addresses, areas and facts), the building codes and the
    reference dates are written once to the split folder for the workers to read;
    ``meanwhile`` runs here while they work.
    """
    path = town.root / "facts.pickle"
    worker_town = dataclasses.replace(
        town,
        addresses=pd.Series([], dtype="str"),
        areas=None,
        inspections=None,
        facts={},
        per_query={},
        address_lookup=None,
    )
    with open(path, "wb") as fh:
        state = (worker_town, building, refs, list(names), params)
        pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
    del worker_town, state
    context = multiprocessing.get_context("spawn")
    # one process per link table, even on fewer cores: their sizes differ (at 10M,
    # registrations 78, businesses 64, ownership 50 CPU s), and two in one process
    # ended 30 s after the largest alone (bench/results/scale_notes.md, round 7)
    with ProcessPoolExecutor(max_workers=len(links), mp_context=context) as pool:
        futures = [pool.submit(link_facts_in_worker, path, name) for name in links]
        meanwhile()
        del meanwhile  # what it held
        done = [future.result() for future in futures]
    path.unlink()
    return done


def _only(**frames: pd.DataFrame | None) -> SourceTables:
    """Source tables of which only ``frames`` are present (the facts read no other)."""
    tables: dict[str, pd.DataFrame | None] = {name: None for name in MODEL_TABLES}
    tables.update(frames)
    return SourceTables(**tables)  # type: ignore[arg-type]


def _edges_before(edges: pd.DataFrame | None, last: np.datetime64) -> pd.DataFrame:
    """The edges dated before ``last`` (no other counts), their ends as int32 codes."""
    if edges is None:
        return pd.DataFrame(
            {
                "a": np.zeros(0, dtype=np.int32),
                "b": np.zeros(0, dtype=np.int32),
                "date": np.zeros(0, dtype="datetime64[ns]"),
            }
        )
    keep = (edges["date"] < last).to_numpy()
    return pd.DataFrame(
        {
            "a": edges["a"].to_numpy()[keep].astype(np.int32, copy=False),
            "b": edges["b"].to_numpy()[keep].astype(np.int32, copy=False),
            "date": edges["date"].to_numpy()[keep],
        }
    )


def _read_split(path: Path, columns: Sequence[str]) -> pa.Table | None:
    """Columns ``columns`` of one split file: only those are read and decompressed."""
    if not path.exists():
        return None
    with pa.memory_map(str(path)) as source:
        names = pa.ipc.open_file(source).schema.names
        options = pa.ipc.IpcReadOptions(included_fields=[names.index(c) for c in columns])
        return pa.ipc.open_file(source, options=options).read_all()


def _coded_table(town: SpilledTown, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The fact columns of link table ``name`` in source row order, and each row's partition.

    Read from the split folder one partition at a time: the address id becomes the row
    of the address in ``addresses`` (the position of its query), looked up among the
    partition's own addresses; the entity id becomes an integer code (Arrow's
    dictionary of the table's ids, held only while coded). The other columns
    (:data:`LINK_COLUMNS`) are normalised as in the partitions.
    """
    spec = TABLES[name]
    entity = ENTITY_COLUMNS[name]
    others = LINK_COLUMNS[name]
    rows: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    addresses: list[np.ndarray] = []
    entities: list[pa.Array] = []
    values: list[pa.Table] = []
    for p in range(town.n_partitions):
        table = _read_split(
            town.root / name / f"own-{p}.arrow", [ROW, "address_id", entity, *others]
        )
        if table is None:
            continue
        own = _read_split(town.root / "addresses" / f"own-{p}.arrow", [ROW, "address_id"])
        assert own is not None, "every row's address is in its partition"
        found = pc.index_in(
            table.column("address_id"), value_set=own.column("address_id").combine_chunks()
        )
        at = np.asarray(found.fill_null(-1).to_numpy(), dtype=np.int64)
        own_rows = own.column(ROW).to_numpy()
        addresses.append(np.where(at >= 0, own_rows[np.maximum(at, 0)], -1).astype(np.int32))
        rows.append(table.column(ROW).to_numpy())
        parts.append(np.full(table.num_rows, p, dtype=np.int32))
        entities.append(table.column(entity).combine_chunks())
        values.append(table.select(others))
        del table, own, found, at
    n = sum(len(r) for r in rows)
    codes = _id_codes(entities)
    del entities
    release_free_memory()  # the ids' strings and their hash table
    order = np.empty(n, dtype=np.int64)  # the position of each source row in the pieces
    order[np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)] = np.arange(n)
    del rows
    codes = codes[order]
    columns = (
        pa.concat_tables(values).take(pa.array(order))
        if values
        else _empty_arrow(spec).select(others)
    )
    del values
    frame = _from_arrow(columns, spec)
    frame.insert(0, "address_id", np.concatenate(addresses)[order] if addresses else codes)
    frame.insert(1, entity, codes)
    part = np.concatenate(parts)[order] if parts else np.zeros(0, dtype=np.int32)
    del parts, addresses, order
    release_free_memory()
    return frame, part


def _id_codes(chunks: list[pa.Array]) -> np.ndarray:
    """An integer code for each id of the string arrays ``chunks`` (concatenated), -1 if missing.

    Equal ids get equal codes. The ids are coded one bucket of their last byte at a time
    (:data:`CODE_BUCKETS`): Arrow's hash table of distinct ids then holds one bucket's,
    not a table's millions (the registrations of a national folder).
    """
    sizes = [len(c) for c in chunks]
    starts = np.cumsum([0, *sizes])
    codes = np.full(int(starts[-1]), -1, dtype=np.int32)
    buckets = [_last_byte(c) % CODE_BUCKETS for c in chunks]
    offset = 0
    for bucket in range(CODE_BUCKETS):
        where = [np.flatnonzero(b == bucket) for b in buckets]
        taken = [c.take(pa.array(w)) for c, w in zip(chunks, where, strict=True)]
        if not any(len(t) for t in taken):
            continue
        # one dictionary for the bucket's ids of every chunk
        encoded = pc.dictionary_encode(pa.chunked_array(taken, type=chunks[0].type))
        del taken
        index = np.concatenate(
            [np.asarray(c.indices.fill_null(-1).to_numpy(), np.int64) for c in encoded.chunks]
        )
        positions = np.concatenate([start + w for start, w in zip(starts, where, strict=False)])
        codes[positions] = np.where(index >= 0, index + offset, -1)
        offset += len(encoded.chunks[-1].dictionary)
    return codes


def _last_byte(ids: pa.Array) -> np.ndarray:
    """The last byte of each string of ``ids`` (0: empty or missing), read from its buffers."""
    wide = pa.types.is_large_string(ids.type) or pa.types.is_large_binary(ids.type)
    _, offsets_buffer, data_buffer = ids.buffers()
    assert offsets_buffer is not None
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64 if wide else np.int32)
    offsets = offsets[ids.offset : ids.offset + len(ids) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else None
    if data is None or len(data) == 0:
        return np.zeros(len(ids), dtype=np.int64)
    last = data[np.clip(offsets[1:] - 1, 0, len(data) - 1)].astype(np.int64)
    return np.where(np.diff(offsets) > 0, last, 0)


def _copy_rows(
    town: SpilledTown,
    name: str,
    frame: pd.DataFrame,
    part: np.ndarray,
    building: np.ndarray,
    params: FeatureParams,
) -> None:
    """Copy to each partition the rows of table ``name`` it needs from the others.

    ``frame`` is the table as :func:`_coded_table` gives it (each row's address as its
    row in ``addresses``), ``part`` each row's partition, ``building`` the building
    code of every address.
    """
    group = frame[ENTITY_COLUMNS[name]].to_numpy().copy()
    if name == "ownership":  # other partitions read an owner's rows for links only
        group[frame["owner_type"].isin(params.unlinked_owner_types).to_numpy()] = -1
    rows, dest = _routes(group, part, group, part)
    if name == "businesses":
        address_row = frame["address_id"].to_numpy()
        row_building = np.where(address_row >= 0, building[np.maximum(address_row, 0)], -1)
        b_rows, b_dest = _routes(row_building, part, building, town.address_part)
        rows, dest = _unique_pairs(np.concatenate([rows, b_rows]), np.concatenate([dest, b_dest]))
        # the addresses of the establishments taken, for their building
        a_rows = address_row[rows]
        a_dest = dest[a_rows >= 0]
        a_rows = a_rows[a_rows >= 0]
        away = a_dest != town.address_part[a_rows]
        a_rows, a_dest = _unique_pairs(a_rows[away], a_dest[away])
        _copy_extras(town, "addresses", town.address_part, a_rows, a_dest)
    _copy_extras(town, name, part, rows, dest)
    log.info("%s: %d rows copied to other partitions", name, len(rows))


@dataclass
class SpilledTask:
    """One partition to compute from the split files (small: sent to a worker process).

    ``town`` is the town itself, or (in a worker process) the file it was written to
    once: its facts and areas are not sent with every partition.
    """

    town: SpilledTown | Path
    part: int
    queries: pd.DataFrame
    names: list[str]
    params: FeatureParams
    per_query: dict[str, np.ndarray]


@functools.lru_cache(maxsize=1)
def _town_from(path: Path) -> SpilledTown:
    with open(path, "rb") as fh:
        town: SpilledTown = pickle.load(fh)
    return town


def compute_spilled(task: SpilledTask) -> tuple[int, pd.DataFrame]:
    """Load one partition's rows and compute its features."""
    town = task.town if isinstance(task.town, SpilledTown) else _town_from(task.town)
    seeds: dict[str, Any] = dict(town.facts)
    index = pd.RangeIndex(len(task.queries))
    seeds.update({name: pd.Series(v, index=index) for name, v in task.per_query.items()})
    tables = town.load(task.part)
    return compute_partition(
        PartitionTask(
            part=task.part,
            positions=np.arange(len(task.queries)),
            tables=tables,
            queries=task.queries,
            names=task.names,
            params=task.params,
            seeds=seeds,
        )
    )


def _tasks(
    town: SpilledTown | Path,
    per_query: dict[str, np.ndarray],
    queries: pd.DataFrame,
    query_part: np.ndarray,
    names: list[str],
    params: FeatureParams,
) -> Iterator[SpilledTask]:
    for part in np.unique(query_part).tolist():
        positions = np.flatnonzero(query_part == part)
        values = {name: v[positions] for name, v in per_query.items()}
        yield SpilledTask(town, int(part), queries.iloc[positions], names, params, values)


def _run(
    town: SpilledTown,
    queries: pd.DataFrame,
    query_part: np.ndarray,
    names: list[str],
    params: FeatureParams,
    workers: int,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Every partition's features, here one by one or in ``workers`` worker processes."""
    per_query, town.per_query = town.per_query, {}
    town.addresses = pd.Series([], dtype="str")
    town.address_part = np.zeros(0, dtype=np.int32)
    town.inspections = None  # read by the town-wide facts only
    if workers <= 1:
        for task in _tasks(town, per_query, queries, query_part, names, params):
            yield compute_spilled(task)
        return
    path = town.root / "town.pickle"
    with open(path, "wb") as fh:
        pickle.dump(town, fh, protocol=pickle.HIGHEST_PROTOCOL)
    # spawned workers: a forked one would start with this process's memory
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[Future[tuple[int, pd.DataFrame]]] = []
        for task in _tasks(path, per_query, queries, query_part, names, params):
            pending.append(pool.submit(compute_spilled, task))
            # two tasks a worker queued: a worker that is done takes the next at once,
            # while this process waits for the first in line or writes its rows (with
            # one each, a worker sat idle meanwhile)
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def features_from_folder(
    folder: str | os.PathLike[str],
    as_of: dt.date,
    *,
    features: Sequence[str] | None = None,
    params: FeatureParams | None = None,
    n_partitions: int | None = None,
    workers: int = 1,
    guard: Callable[[ExtractDate], object] | None = None,
    tmp_dir: str | os.PathLike[str] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> pd.DataFrame:
    """Features of every address of a source folder as of ``as_of``, a partition at a time.

    The same table as ``build_feature_table(load_sources(folder), as_of)``.

    Parameters
    ----------
    folder
        The source folder; it is validated as ``load_sources`` validates it
        (:class:`~stratum_ml.sources.SourceValidationError` on a broken rule).
    as_of
        The reference date of every address.
    features, params
        Names to compute (default: the catalogue) and their constants.
    n_partitions
        Partitions of the addresses (default :func:`default_partitions`).
    workers
        Tables split and partitions computed at once, each in a worker process (1: here,
        one by one); with more than one, the link tables' town-wide facts are computed
        in a process each (at most three).
    guard
        Called with the folder's extract date once every table is read, before any
        feature is computed (``stratum features`` refuses a date after it: see
        :func:`~stratum_ml.sources.guard_as_of`).
    tmp_dir
        Where the split files go (default: the system's temporary folder).
    batch_rows
        Rows of a large table read and checked at a time.

    Returns
    -------
    pandas.DataFrame
        One row per address (indexed by ``address_id``), one column per feature.

    Raises
    ------
    SourceValidationError
        When the folder breaks the contract (every finding, as ``load_sources``).
    ExtractDateError
        When the folder holds no dated row and declares no extract date.
    """
    return _from_folder(
        folder,
        as_of,
        assemble_partitions,
        features=features,
        params=params,
        n_partitions=n_partitions,
        workers=workers,
        guard=guard,
        tmp_dir=tmp_dir,
        batch_rows=batch_rows,
    )


@dataclass(frozen=True)
class FeatureFile:
    """What :func:`features_to_file` wrote."""

    path: Path
    rows: int
    #: the feature columns, in the file's order (after ``address_id``)
    columns: list[str]
    #: the features not computed, each with the source tables it lacks
    absent_features: dict[str, list[str]]


def features_to_file(
    folder: str | os.PathLike[str],
    as_of: dt.date,
    out: str | os.PathLike[str],
    *,
    features: Sequence[str] | None = None,
    params: FeatureParams | None = None,
    n_partitions: int | None = None,
    workers: int = 1,
    guard: Callable[[ExtractDate], object] | None = None,
    tmp_dir: str | os.PathLike[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    spreadsheet_safe: bool = False,
) -> FeatureFile:
    """:func:`features_from_folder` written to a file a partition at a time, never held whole.

    Each partition's rows are written to ``out`` (Parquet: one row group per
    partition; or CSV) as the partition is done, so the whole table is never held. The
    file has the columns and types of ``features_from_folder(...).reset_index()``
    written by :func:`~stratum_ml.io.write_frame_atomic` (``address_id``, then one
    column per feature), and the same rows, **in another order**: partition by
    partition (ascending), each partition's addresses in the order of the address
    table. Read it by ``address_id``, not by row. It is written atomically: on any error
    (a broken rule in the folder, a failed partition) nothing is left at ``out``.

    Parameters
    ----------
    folder, as_of, features, params, n_partitions, workers, guard, tmp_dir, batch_rows
        As :func:`features_from_folder`.
    out
        The file to write (``.parquet`` or ``.csv``).
    spreadsheet_safe
        CSV only: neutralise text cells that a spreadsheet would run as formulas (see
        :func:`~stratum_ml.io.write_frame_atomic`; default off: a data file).

    Returns
    -------
    FeatureFile
        The rows and feature columns written, and the features not computed.

    Raises
    ------
    SourceValidationError, ExtractDateError
        As :func:`features_from_folder`.
    """
    table_format(out)  # an unknown suffix is refused before the folder is read
    write = functools.partial(_write_partitions, out=Path(out), spreadsheet_safe=spreadsheet_safe)
    return _from_folder(
        folder,
        as_of,
        write,
        features=features,
        params=params,
        n_partitions=n_partitions,
        workers=workers,
        guard=guard,
        tmp_dir=tmp_dir,
        batch_rows=batch_rows,
    )


def _write_partitions(
    results: Iterable[tuple[int, pd.DataFrame]],
    query_part: np.ndarray,
    index: pd.Index,
    absent: dict[str, list[str]],
    *,
    out: Path,
    spreadsheet_safe: bool,
) -> FeatureFile:
    """Write each partition's results to ``out`` as they come (the checks of
    :func:`~stratum_ml.features.partitioned.assemble_partitions`)."""
    sizes = np.bincount(query_part, minlength=1)
    columns: list[str] = []

    def frames() -> Iterator[pd.DataFrame]:
        dtypes: pd.Series | None = None
        done = np.zeros(len(sizes), dtype=bool)
        for part, table in results:
            if part >= len(sizes) or done[part] or len(table) != sizes[part]:
                raise ValueError(f"partition {part}: {len(table)} rows, not its queries'")
            done[part] = True
            if dtypes is None:
                dtypes = table.dtypes
                columns.extend(str(c) for c in table.columns)
            elif not table.dtypes.equals(dtypes):
                raise ValueError(f"partition {part}: its columns or types differ")
            # the column ``reset_index`` would make, without copying the partition
            ids = index[np.flatnonzero(query_part == part)].to_numpy()
            table.insert(0, "index" if index.name is None else index.name, ids)
            yield table
        if (sizes[~done] > 0).any():
            raise ValueError(f"{int(sizes[~done].sum())} queries were not computed")
        if dtypes is None:  # no address: the file of an empty table
            yield pd.DataFrame(index=index).reset_index()

    rows = write_frames_atomic(frames(), out, spreadsheet_safe=spreadsheet_safe)
    return FeatureFile(out, rows, columns, absent)


_Collected = TypeVar("_Collected")


def _from_folder(
    folder: str | os.PathLike[str],
    as_of: dt.date,
    collect: Callable[
        [Iterator[tuple[int, pd.DataFrame]], np.ndarray, pd.Index, dict[str, list[str]]],
        _Collected,
    ],
    *,
    features: Sequence[str] | None,
    params: FeatureParams | None,
    n_partitions: int | None,
    workers: int,
    guard: Callable[[ExtractDate], object] | None,
    tmp_dir: str | os.PathLike[str] | None,
    batch_rows: int,
) -> _Collected:
    """Split and check the folder, compute the town-wide facts, then hand every partition's
    results (as they come) to ``collect``, within the life of the split folder."""
    from stratum_ml.features.catalogue import load_catalogue

    params = params or FeatureParams()
    names = list(features) if features is not None else load_catalogue().names
    stream = SourceStream.open(folder, batch_rows=batch_rows)
    remove_stale_splits(tmp_dir)
    prefix = f"{SPLIT_PREFIX}{os.getpid()}."
    with tempfile.TemporaryDirectory(prefix=prefix, dir=tmp_dir) as tmp:
        with _phase("validate + split"):
            town = split_sources(stream, Path(tmp), n_partitions, workers)
        town.address_lookup = None
        stream.release_references()  # the hashed address ids: read by the split only
        extract = stream.extract_date()
        if guard is not None:
            guard(extract)
        queries = make_queries(town.addresses, as_of)
        town.addresses = pd.Series([], dtype="str")  # the queries hold the ids now
        absent = absent_features(names, town.present)
        todo = [n for n in names if n not in absent]
        with _phase("town-wide facts"):
            town_wide(stream, town, queries, todo, params, workers)
        query_part = town.address_part  # one query per address, in the same order
        with _phase("partitions + assembly or writing"):
            results = _run(town, queries, query_part, todo, params, workers)
            return collect(results, query_part, queries.index, absent)


@contextlib.contextmanager
def _phase(name: str) -> Iterator[None]:
    """Log (INFO) the wall and CPU seconds of a phase of :func:`features_from_folder`.

    The CPU seconds are this process's and those of its worker processes that ended
    in the phase (each phase's workers end with it).
    """
    wall, cpu = time.perf_counter(), _cpu_seconds()
    yield
    log.info(
        "%s: %.1f s, %.1f CPU s (with its worker processes)",
        name,
        time.perf_counter() - wall,
        _cpu_seconds() - cpu,
    )


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its ended child processes."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def remove_stale_splits(tmp_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the split folders of runs whose process is gone (killed before cleaning up)."""
    removed = []
    for path in Path(tmp_dir or tempfile.gettempdir()).glob(f"{SPLIT_PREFIX}*"):
        pid = path.name[len(SPLIT_PREFIX) :].split(".", 1)[0]
        if path.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def absent_features(names: Sequence[str], present: Sequence[str]) -> dict[str, list[str]]:
    """The features of ``names`` whose source tables are not all ``present``: what is missing."""
    empty = pd.DataFrame()
    tables = SourceTables(
        **{name: (empty if name in present else None) for name in MODEL_TABLES}  # type: ignore[arg-type]
    )
    evaluator = Evaluator(tables, empty, FeatureParams(), REGISTRY)
    return {n: list(evaluator.missing_sources(n)) for n in names if not evaluator.can_compute(n)}


__all__ = [
    "FeatureFile",
    "SpilledTown",
    "absent_features",
    "features_from_folder",
    "features_to_file",
    "split_sources",
]
