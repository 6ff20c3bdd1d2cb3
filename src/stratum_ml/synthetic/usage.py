"""Metered use: yearly water readings and energy totals, driven by who actually lives there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_ml.synthetic._util import day, local_index, occupancy_integral, year_start
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.population import People
from stratum_ml.synthetic.world import World

WATER_M3_PER_PERSON_YEAR = 45.0


@dataclass
class Water:
    addr: np.ndarray
    start: np.ndarray
    end: np.ndarray
    volume: np.ndarray


@dataclass
class Energy:
    addr: np.ndarray
    year: np.ndarray
    electricity: np.ndarray
    gas: np.ndarray


def water(cfg: GeneratorConfig, w: World, people: People, rng: np.random.Generator) -> Water:
    """One reading a year per address (on the address's own reading day), some missing."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    n = w.n
    first = np.where(
        w.exists_from < t0, t0 + rng.integers(0, 365, n), w.exists_from + rng.integers(5, 60, n)
    )
    k_max = (t1 - t0) // 300 + 2
    lengths = np.round(rng.normal(365, 8, (n, k_max))).astype("int64")
    short = rng.random((n, k_max)) < 0.03  # meter replaced: a short period
    lengths = np.where(short, rng.integers(60, 300, (n, k_max)), lengths)
    ends = first[:, None] + np.cumsum(lengths, axis=1)
    starts = ends - lengths
    ok = ends < t1
    addr = np.broadcast_to(np.arange(n)[:, None], (n, k_max))[ok]
    start, end = starts[ok], ends[ok]
    keep = rng.random(len(addr)) >= 0.03  # a missing reading
    addr, start, end = addr[keep], start[keep], end[keep]
    days = (end - start).astype("float64")
    person_days = occupancy_integral(
        people.occ_addr, people.occ_from, people.occ_to, people.occ_weight, addr, start, end
    )
    person_years = np.maximum(person_days, 0) / 365.25
    area = w.floor_area[addr].astype("float64")
    res = w.residential[addr]
    unit_f = rng.lognormal(0, 0.6, n)[addr]
    base = np.where(res, 2.0 + 0.025 * area, 0.12 * area**0.9 * unit_f) * days / 365.25
    use = WATER_M3_PER_PERSON_YEAR * person_years * rng.lognormal(0, 0.12, len(addr))
    leak = np.where(rng.random(len(addr)) < 0.005, rng.uniform(2, 4, len(addr)), 1.0)
    volume = np.round((base + use) * leak).astype("float64")
    return Water(addr, start, end, volume)


def energy(cfg: GeneratorConfig, w: World, people: People, rng: np.random.Generator) -> Energy:
    """Yearly electricity and gas for every full calendar year before the extract."""
    t0 = day(cfg.start_date)
    y0, y1 = cfg.start_date.year, cfg.extract_date.year - 1
    if y1 < y0:
        z = np.zeros(0)
        return Energy(z.astype("int64"), z.astype("int64"), z, z)
    n = w.n
    years = np.arange(y0, y1 + 1)
    exists_year = np.maximum(w.exists_from, t0)
    first_year = np.searchsorted(year_start(years + 1), exists_year, side="right")
    counts = np.maximum(len(years) - first_year, 0)
    addr = np.repeat(np.arange(n), counts)
    year = years[first_year[addr] + local_index(counts)]
    ys, ye = year_start(year), year_start(year + 1)
    lo = np.maximum(ys, w.exists_from[addr])
    share = (ye - lo) / (ye - ys)
    occ = (
        np.maximum(
            occupancy_integral(
                people.occ_addr, people.occ_from, people.occ_to, people.occ_weight, addr, lo, ye
            ),
            0,
        )
        / 365.25
    )
    area = w.floor_area[addr].astype("float64")
    res = w.residential[addr]
    f_e = rng.lognormal(0, 0.25, n)[addr] * rng.lognormal(0, 0.08, len(addr))
    f_g = rng.lognormal(0, 0.2, n)[addr] * rng.lognormal(0, 0.08, len(addr))
    built = w.construction_year[addr]
    elec = np.where(res, (700 + 9 * area) * share + 650 * occ, 55 * area * share) * f_e
    per_m2 = np.select([built < 1975, built < 2000], [14.0, 9.0], 6.0)
    gas = np.where(res, area * per_m2 * share + 45 * occ, 9 * area * share) * f_g
    no_gas = (built >= 2019) | (rng.random(n) < 0.08)[addr]
    gas = np.where(no_gas, np.nan, np.round(gas))
    elec = np.round(elec)
    elec[rng.random(len(addr)) < 0.01] = np.nan
    return Energy(addr, year.astype("int64"), elec.astype("float64"), gas.astype("float64"))
