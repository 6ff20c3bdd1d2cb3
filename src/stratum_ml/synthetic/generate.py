"""Generate a synthetic municipality: every contract table, plus the ground truth.

The municipality is generated chunk by chunk (whole neighbourhoods at a time;
see :mod:`stratum_ml.synthetic.world`), each from its own random streams, so a
chunk never needs another chunk and memory stays bounded by ``chunk_size``.
Per chunk, in order:

1. the built environment and its first owners (``world``);
2. violation episodes (``mechanisms``);
3. reports and past visits; visits that find a violation shorten its episode
   (``enforcement``);
4. households, moves and the mechanisms' people, from the *final* episodes
   (``population``);
5. water and energy from who actually lives there (``usage``);
6. ownership and businesses (``registers``).

:func:`generate_tables` returns everything in memory with the normalised dtypes
of :mod:`stratum_ml.sources.tables` (what ``load_sources`` returns after a round
trip through files); :func:`generate_municipality` writes a source folder and a
truth file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from stratum_ml.io import atomic_path, table_format
from stratum_ml.sources.contract import (
    BIRTH_COUNTRY_GROUPS,
    CONTRACT,
    EXTRACT_DECLARATION,
    GENDERS,
    INSPECTION_REASONS,
    OUTCOMES,
    OWNER_TYPES,
    REPORT_CATEGORIES,
    REPORT_SOURCES,
    TABLES,
    TENURES,
    USE_PURPOSES,
    VIOLATION_TYPES,
    TableSpec,
)
from stratum_ml.sources.extract import declaration_text
from stratum_ml.sources.tables import AuditTables, SourceTables, normalise_table
from stratum_ml.synthetic import (
    enforcement,
    mechanisms,
    places,
    population,
    registers,
    usage,
    world,
)
from stratum_ml.synthetic._util import day, format_ids, scramble, to_datetime64
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.truth import MECHANISMS, normalise_truth

__all__ = ["GeneratorConfig", "Municipality", "generate_municipality", "generate_tables"]

_STAGES = ("world", "mechanisms", "enforcement", "people", "registers", "usage")


@dataclass(frozen=True)
class Municipality:
    """A generated municipality in memory."""

    sources: SourceTables
    audit: AuditTables
    truth: pd.DataFrame


@dataclass
class _Tally:
    """Numbers for the summary, added up over chunks."""

    rows: dict[str, int] = field(default_factory=lambda: {t.name: 0 for t in CONTRACT})
    dwellings: int = 0
    running: np.ndarray = field(default_factory=lambda: np.zeros(len(MECHANISMS)))
    ever: np.ndarray = field(default_factory=lambda: np.zeros(len(MECHANISMS)))
    episodes: np.ndarray = field(default_factory=lambda: np.zeros(len(MECHANISMS)))
    ended_by_visit: int = 0
    visits: dict[str, list[int]] = field(default_factory=dict)  # reason -> [visits, in violation]


@dataclass
class _Counters:
    """Running numbers for sequential ids across chunks, and the names handed out so far."""

    namer: places.StreetNamer
    reports: int = 0
    inspections: int = 0


@dataclass
class _Chunk:
    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    #: code, level and name of the chunk's districts and neighbourhoods (no geometry yet)
    area_names: pd.DataFrame


def _keys(seed: int) -> dict[str, int]:
    state = np.random.SeedSequence([seed, 0x5EED]).generate_state(4, dtype=np.uint64)
    return dict(
        zip(("person", "surname", "owner", "business"), (int(s) for s in state), strict=True)
    )


def _pseudonyms(prefix: str, codes: np.ndarray, key: int) -> np.ndarray:
    return format_ids(prefix, scramble(codes, 48, key), 12, base=16)


def _cat(codes: np.ndarray, domain: tuple[str, ...]) -> pd.Categorical[str]:
    """Categorical from codes into ``domain``; code -1 is missing."""
    values = cast("npt.NDArray[np.int64]", np.asarray(codes, dtype="int64"))
    return pd.Categorical.from_codes(values, categories=pd.Index(list(domain)))


def _simulate(cfg: GeneratorConfig, spec: world.ChunkSpec) -> dict[str, Any]:
    ss = np.random.SeedSequence([cfg.seed, spec.index])
    rng = dict(
        zip(_STAGES, (np.random.default_rng(s) for s in ss.spawn(len(_STAGES))), strict=True)
    )
    w = world.build_world(cfg, spec, rng["world"])
    ep, ops = mechanisms.plant(cfg, w, rng["mechanisms"])
    visits, reports = enforcement.enforce(cfg, w, ep, rng["enforcement"])
    people = population.simulate_people(cfg, w, ep, rng["people"])
    water = usage.water(cfg, w, people, rng["usage"])
    energy = usage.energy(cfg, w, people, rng["usage"])
    owners = registers.ownership(cfg, w, ep, ops, people, rng["registers"])
    firms = registers.businesses(cfg, w, ops, people, rng["registers"])
    return dict(
        world=w,
        episodes=ep,
        visits=visits,
        reports=reports,
        people=people,
        water=water,
        energy=energy,
        ownership=owners,
        businesses=firms,
    )


def _frames(
    cfg: GeneratorConfig, sim: dict[str, Any], counters: _Counters, tally: _Tally
) -> _Chunk:
    w: world.World = sim["world"]
    ep: mechanisms.Episodes = sim["episodes"]
    vis: enforcement.Visits = sim["visits"]
    rep: enforcement.Reports = sim["reports"]
    ppl: population.People = sim["people"]
    wat: usage.Water = sim["water"]
    en: usage.Energy = sim["energy"]
    own: registers.Ownership = sim["ownership"]
    biz: registers.Businesses = sim["businesses"]
    keys = _keys(cfg.seed)
    t1 = day(cfg.extract_date)
    muni = cfg.municipality_code
    addr_id = format_ids(muni + "01", w.addr_global + 1, 10)

    def dates(days: np.ndarray) -> np.ndarray:
        return to_datetime64(days, end=t1)

    streets, area_names = _names(cfg, w, counters.namer)

    raw: dict[str, dict[str, Any]] = {
        "addresses": {
            "address_id": addr_id,
            "building_id": format_ids(muni + "10", w.building + 1, 10),
            "postcode": w.postcode,
            "house_number": w.house_number,
            "house_number_suffix": w.suffix,
            "district_code": w.district_code[w.nbh],
            "neighbourhood_code": w.nbh_code[w.nbh],
            "floor_area_m2": w.floor_area,
            "use_purpose": _cat(w.use_purpose, USE_PURPOSES),
            "construction_year": w.construction_year,
            "tenure": _cat(w.tenure, TENURES),
            "x_rd": w.x_rd,
            "y_rd": w.y_rd,
            "street_name": streets,
            "city": np.full(w.n, places.city_name(cfg.seed), dtype=object),
        },
        "registrations": {
            "person_id": _pseudonyms("P", ppl.reg_person, keys["person"]),
            "address_id": addr_id[ppl.reg_addr],
            "registered_from": dates(ppl.reg_from),
            "registered_until": dates(ppl.reg_until),
            "birth_year": ppl.birth_year[np.searchsorted(ppl.person, ppl.reg_person)],
            "surname_key": _pseudonyms(
                "S", ppl.surname[np.searchsorted(ppl.person, ppl.reg_person)], keys["surname"]
            ),
        },
        "water_usage": {
            "address_id": addr_id[wat.addr],
            "period_start": dates(wat.start),
            "period_end": dates(wat.end),
            "volume_m3": wat.volume,
        },
        "energy_usage": {
            "address_id": addr_id[en.addr],
            "year": en.year,
            "electricity_kwh": en.electricity,
            "gas_m3": en.gas,
        },
        "businesses": {
            "business_id": format_ids(
                "",
                scramble(
                    (np.int64(w.spec.index) << np.int64(24)) + biz.number, 39, keys["business"]
                ),
                12,
            ),
            "address_id": addr_id[biz.addr],
            "registered_from": dates(biz.start),
            "registered_until": dates(biz.end),
            "sbi_code": biz.sbi,
        },
        "ownership": {
            "address_id": addr_id[own.addr],
            "owner_id": _pseudonyms("O", own.owner, keys["owner"]),
            "owner_type": _cat(own.owner_type, OWNER_TYPES),
            "owned_from": dates(own.start),
            "owned_until": dates(own.end),
        },
    }
    order = np.lexsort((rep.addr, rep.second, rep.day))
    seconds = rep.day[order] * 86_400 + rep.second[order]
    raw["reports"] = {
        "report_id": format_ids("R", counters.reports + 1 + np.arange(len(order)), 9),
        "address_id": addr_id[rep.addr[order]],
        "reported_at": seconds.astype("datetime64[s]").astype("datetime64[ns]"),
        "category": _cat(rep.category[order], REPORT_CATEGORIES),
        "source": _cat(rep.source[order], REPORT_SOURCES),
    }
    counters.reports += len(order)
    vt = vis.violation_type
    raw["inspections"] = {
        "inspection_id": format_ids("I", counters.inspections + 1 + np.arange(len(vis.addr)), 9),
        "address_id": addr_id[vis.addr],
        "inspected_at": dates(vis.day),
        "reason": _cat(vis.reason, INSPECTION_REASONS),
        "outcome": _cat(vis.outcome, OUTCOMES),
        "violation_type": _cat(vt, VIOLATION_TYPES),
    }
    counters.inspections += len(vis.addr)
    raw["audit_attributes"] = {
        "person_id": _pseudonyms("P", ppl.person, keys["person"]),
        "gender": _cat(ppl.gender, GENDERS),
        "birth_country_group": _cat(ppl.country, BIRTH_COUNTRY_GROUPS),
    }
    tables = {name: normalise_table(pd.DataFrame(cols), TABLES[name]) for name, cols in raw.items()}
    truth = normalise_truth(
        pd.DataFrame(
            {
                "address_id": addr_id[ep.addr],
                "mechanism": _cat(ep.mech, MECHANISMS),
                "start_date": ep.start.astype("datetime64[D]").astype("datetime64[ns]"),
                "end_date": dates(ep.end),
            }
        )
    )
    _count(cfg, w, ep, vis, tables, tally)
    return _Chunk(tables, truth, area_names)


def _names(
    cfg: GeneratorConfig, w: world.World, namer: places.StreetNamer
) -> tuple[np.ndarray, pd.DataFrame]:
    """A street name per address (one street per postcode) and the chunk's area names."""
    streets = np.empty(w.n, dtype=object)
    nbh_names = []
    for j in range(w.spec.n_nbh):
        theme, name = namer.neighbourhood(w.spec.nbh_offset + j)
        nbh_names.append(name)
        rows = np.flatnonzero(w.nbh == j)
        codes = pd.unique(w.postcode[rows])
        street = dict(zip(codes, namer.streets(theme, len(codes)), strict=True))
        streets[rows] = [street[p] for p in w.postcode[rows]]
    districts = pd.unique(w.district_code)
    first = int(cfg.municipality_code) * 100
    area_names = pd.DataFrame(
        {
            "code": [*districts, *w.nbh_code],
            "level": ["district"] * len(districts) + ["neighbourhood"] * len(w.nbh_code),
            "name": [places.district_name(int(d[2:]) - first) for d in districts] + nbh_names,
        }
    )
    return streets, area_names


def _add_places(points: places.AreaPoints, addresses: pd.DataFrame) -> None:
    """Gather a chunk's address places for the boundaries drawn at the end."""
    points.add(
        addresses["x_rd"].to_numpy(dtype=np.float64),
        addresses["y_rd"].to_numpy(dtype=np.float64),
        addresses["neighbourhood_code"].to_numpy(dtype=object),
        addresses["district_code"].to_numpy(dtype=object),
    )


def _areas(points: places.AreaPoints, names: pd.DataFrame) -> pd.DataFrame:
    """The ``areas`` table: every district and neighbourhood with its boundary (RD New)."""
    nbh, dist = points.geometries()
    shapes = {**dist, **nbh}
    names = names.loc[names["code"].isin(list(shapes))].reset_index(drop=True)
    geometry = shapely.to_geojson(np.array([shapes[c] for c in names["code"]], dtype=object))
    frame = names.assign(crs=places.AREA_CRS, geometry=geometry)
    return normalise_table(frame, TABLES["areas"])


def _count(
    cfg: GeneratorConfig,
    w: world.World,
    ep: mechanisms.Episodes,
    vis: enforcement.Visits,
    tables: dict[str, pd.DataFrame],
    tally: _Tally,
) -> None:
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    for name, df in tables.items():
        tally.rows[name] += len(df)
    tally.dwellings += int(w.residential.sum())
    for m in range(len(MECHANISMS)):
        sel = ep.mech == m
        running = sel & (ep.start <= t1 - 1) & (ep.end > t1 - 1)
        tally.running[m] += len(np.unique(ep.addr[running]))
        tally.ever[m] += len(np.unique(ep.addr[sel & (ep.end > t0)]))
        tally.episodes[m] += int(sel.sum())
    tally.ended_by_visit += int((ep.cause == 1).sum())
    active = enforcement._active_episode(ep, vis.addr, vis.day) >= 0
    for r, name in enumerate(INSPECTION_REASONS):
        sel = vis.reason == r
        if sel.any():
            v = tally.visits.setdefault(name, [0, 0, 0])
            v[0] += int(sel.sum())
            v[1] += int(active[sel].sum())
            v[2] += int((vis.outcome[sel] == enforcement.VIOLATION).sum())


def _chunks(cfg: GeneratorConfig, tally: _Tally) -> Iterator[tuple[world.ChunkSpec, _Chunk]]:
    counters = _Counters(namer=places.StreetNamer(cfg.seed))
    for spec in world.plan_chunks(cfg):
        yield spec, _frames(cfg, _simulate(cfg, spec), counters, tally)


def generate_tables(cfg: GeneratorConfig) -> Municipality:
    """Generate the whole municipality in memory (for tests and benchmarks).

    The tables have the normalised dtypes of :mod:`stratum_ml.sources.tables`
    and equal what ``load_sources`` returns for the folder that
    :func:`generate_municipality` writes with the same configuration, the
    declared extract date (``cfg.extract_date``) included.

    Examples
    --------
    >>> m = generate_tables(GeneratorConfig(n_addresses=300, seed=1))
    >>> len(m.sources.addresses)
    300
    """
    parts: dict[str, list[pd.DataFrame]] = {t.name: [] for t in CONTRACT if t.name != "areas"}
    truths, names = [], []
    points = places.AreaPoints(cfg.n_addresses)
    for _, chunk in _chunks(cfg, _Tally()):
        for name, df in chunk.tables.items():
            parts[name].append(df)
        _add_places(points, chunk.tables["addresses"])
        truths.append(chunk.truth)
        names.append(chunk.area_names)
    tables = {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
    audit = tables.pop("audit_attributes")
    sources = SourceTables(
        addresses=tables["addresses"],
        registrations=tables["registrations"],
        inspections=tables["inspections"],
        water_usage=tables["water_usage"],
        energy_usage=tables["energy_usage"],
        businesses=tables["businesses"],
        ownership=tables["ownership"],
        reports=tables["reports"],
        areas=_areas(points, pd.concat(names, ignore_index=True)),
        declared_extract_date=cfg.extract_date,
    )
    return Municipality(
        sources=sources,
        audit=AuditTables(audit_attributes=audit),
        truth=pd.concat(truths, ignore_index=True),
    )


# ---------------------------------------------------------------------------- writing


def _arrow_schema(spec: TableSpec) -> Any:
    import pyarrow as pa

    kinds = {
        "string": pa.string(),
        "category": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("ms"),
    }
    return pa.schema([pa.field(c.name, kinds[c.kind], nullable=True) for c in spec.columns])


def _arrow_table(df: pd.DataFrame, schema: Any) -> Any:
    import pyarrow as pa

    arrays = []
    for f in schema:
        col = df[f.name]
        if pa.types.is_date32(f.type):
            values = col.to_numpy("datetime64[ns]").astype("datetime64[D]")
            arrays.append(pa.array(values, type=pa.date32(), mask=np.isnat(values)))
        elif pa.types.is_timestamp(f.type):
            values = col.to_numpy("datetime64[ns]").astype("datetime64[ms]")
            arrays.append(pa.array(values, type=f.type, mask=np.isnat(values)))
        elif pa.types.is_string(f.type):
            arrays.append(
                pa.array(col.astype(object).where(col.notna(), None).to_numpy(), type=pa.string())
            )
        else:
            arrays.append(pa.array(col.to_numpy(), type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _csv_frame(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    out = {}
    for name in df.columns:
        col = df[name]
        kind = kinds.get(name, "string")
        if kind in ("date", "timestamp"):
            values = col.to_numpy("datetime64[ns]")
            text = np.datetime_as_string(
                values.astype("datetime64[D]" if kind == "date" else "datetime64[s]")
            )
            out[name] = np.where(np.isnat(values), "", text)
        elif kind in ("string", "category"):
            out[name] = col.astype(object).where(col.notna(), "").to_numpy()
        else:
            out[name] = col.to_numpy()
    return pd.DataFrame(out)


class _TableWriter:
    """Appends chunk frames to one CSV or Parquet file."""

    def __init__(self, path: Path, spec_or_columns: TableSpec | None, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.spec = spec_or_columns
        self._pq: Any = None
        self._fh: IO[str] | None = None

    def write(self, df: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            schema = _arrow_schema(self.spec) if self.spec is not None else _truth_schema()
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, schema, compression="zstd")
            self._pq.write_table(_arrow_table(df, schema))
        else:
            kinds: dict[str, str] = (
                {c.name: c.kind for c in self.spec.columns}
                if self.spec is not None
                else {"start_date": "date", "end_date": "date"}
            )
            first = self._fh is None
            if self._fh is None:
                self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            _csv_frame(df, kinds).to_csv(self._fh, header=first, index=False, lineterminator="\n")

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def _truth_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("address_id", pa.string()),
            pa.field("mechanism", pa.string()),
            pa.field("start_date", pa.date32()),
            pa.field("end_date", pa.date32()),
        ]
    )


def _check_targets(out_dir: Path, truth_file: Path, fmt: str) -> None:
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', not {fmt!r}")
    table_format(truth_file)  # raises ValueError for an unknown suffix
    out_abs, truth_abs = out_dir.resolve(), truth_file.resolve()
    if truth_abs == out_abs or out_abs in truth_abs.parents:
        raise ValueError(
            f"truth file {truth_file} lies inside the source folder {out_dir}: the ground truth "
            "must never be among the sources; put it elsewhere"
        )
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not an empty folder")


def generate_municipality(
    cfg: GeneratorConfig,
    out_dir: str | os.PathLike[str],
    truth_file: str | os.PathLike[str],
    fmt: str = "parquet",
    progress: bool = False,
    raw_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Write a synthetic source folder and its ground truth; return a short summary.

    Every contract table is written as ``<table>.<fmt>`` into ``out_dir``, chunk
    by chunk, with ``extract.json`` declaring ``cfg.extract_date`` (see
    :mod:`stratum_ml.sources.extract`), first into a temporary sibling folder
    that is renamed to ``out_dir`` only when complete. The truth goes to ``truth_file`` (Parquet or
    CSV by its suffix), which must lie outside ``out_dir``.

    With ``raw_dir``, the same municipality is also written there as the raw
    extracts a municipality holds before pseudonymisation (CSV, made-up BSNs,
    family names and KvK numbers; see :mod:`stratum_ml.synthetic.raw`), also
    atomically; the source folder and truth are the same bytes as without it.

    Raises
    ------
    FileExistsError
        ``out_dir`` exists and is not empty.
    ValueError
        ``truth_file`` lies inside ``out_dir``, or a format is unknown.
    """
    from stratum_ml.synthetic.raw import RawExtractWriter

    out_dir, truth_file = Path(out_dir), Path(truth_file)
    _check_targets(out_dir, truth_file, fmt)
    if raw_dir is not None:
        _check_raw_target(Path(raw_dir), out_dir, truth_file)
    raw = None if raw_dir is None else RawExtractWriter(raw_dir, cfg.seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    tally = _Tally()
    writers = {t.name: _TableWriter(tmp / f"{t.name}.{fmt}", t, fmt) for t in CONTRACT}
    points = places.AreaPoints(cfg.n_addresses)  # the addresses' places, for the areas
    names: list[pd.DataFrame] = []
    try:
        with atomic_path(truth_file) as truth_tmp, _progress(progress, cfg.n_addresses) as bar:
            truth_writer = _TableWriter(truth_tmp, None, table_format(truth_file))
            try:
                for spec, chunk in _chunks(cfg, tally):
                    for name, df in chunk.tables.items():
                        writers[name].write(df)
                    truth_writer.write(chunk.truth)
                    if raw is not None:
                        raw.write(chunk.tables)
                    _add_places(points, chunk.tables["addresses"])
                    names.append(chunk.area_names)
                    bar(spec.n_addresses)
                areas = _areas(points, pd.concat(names, ignore_index=True))
                writers["areas"].write(areas)
                tally.rows["areas"] = len(areas)
                if raw is not None:
                    raw.write_areas(areas)
            finally:
                truth_writer.close()
                for wr in writers.values():
                    wr.close()
            (tmp / EXTRACT_DECLARATION.file).write_text(
                declaration_text(cfg.extract_date), encoding="utf-8"
            )
            if out_dir.exists():
                out_dir.rmdir()  # checked empty above
            if raw is not None:
                raw.finish(cfg.extract_date)
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if raw is not None:
            raw.abort()
        raise
    summary = _summary(cfg, tally, out_dir, truth_file, fmt)
    return summary if raw_dir is None else f"{summary}\nraw extracts -> {raw_dir} (csv)"


def _check_raw_target(raw_dir: Path, out_dir: Path, truth_file: Path) -> None:
    raw_abs, out_abs = raw_dir.resolve(), out_dir.resolve()
    if raw_abs == out_abs or out_abs in raw_abs.parents or raw_abs in out_abs.parents:
        raise ValueError(
            f"the raw extracts ({raw_dir}) and the source folder ({out_dir}) must not lie "
            "inside one another: identities must never be among the sources"
        )
    if raw_abs in truth_file.resolve().parents:
        raise ValueError(f"truth file {truth_file} lies inside the raw folder {raw_dir}")


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    if not enabled:
        yield lambda k: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("generating addresses"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as p:
        task = p.add_task("generate", total=total)
        yield lambda k: p.advance(task, k)


def _summary(cfg: GeneratorConfig, t: _Tally, out_dir: Path, truth_file: Path, fmt: str) -> str:
    last_day = cfg.extract_date - dt.timedelta(days=1)
    lines = [
        f"synthetic municipality: {cfg.n_addresses:,} addresses, seed {cfg.seed}",
        f"history {cfg.start_date} .. {last_day} (extract {cfg.extract_date})",
        f"sources -> {out_dir} ({fmt})",
        f"truth   -> {truth_file}",
        "rows per table:",
    ]
    lines += [f"  {name:<20}{n:>12,}" for name, n in t.rows.items()]
    dw = max(t.dwellings, 1)
    lines += [
        f"planted mechanisms, share of {t.dwellings:,} dwellings:",
        f"  {'':<20}{'last day':>9}{'ever':>8}{'episodes':>10}",
    ]
    for m, name in enumerate(MECHANISMS):
        lines.append(
            f"  {name:<20}{t.running[m] / dw:>9.2%}{t.ever[m] / dw:>8.2%}{int(t.episodes[m]):>10,}"
        )
    lines.append(
        f"  {'any':<20}{t.running.sum() / dw:>9.2%}{t.ever.sum() / dw:>8.2%}"
        f"{int(t.episodes.sum()):>10,}"
    )
    lines += [
        f"  ({t.ended_by_visit:,} episodes ended after a visit found them)",
        "visits by reason:",
        f"  {'':<20}{'visits':>9}{'in violation':>14}{'recorded':>10}",
    ]
    for name, (n, true, found) in t.visits.items():
        lines.append(f"  {name:<20}{n:>9,}{true / max(n, 1):>14.1%}{found / max(n, 1):>10.1%}")
    return "\n".join(lines)
