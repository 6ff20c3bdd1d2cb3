"""Registers that follow people and mechanisms: ownership (Kadaster) and businesses (KvK)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_ml.sources.contract import USE_PURPOSES
from stratum_ml.synthetic._util import OPEN, categorical, day
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes, Operations
from stratum_ml.synthetic.population import YEAR, People
from stratum_ml.synthetic.world import (
    ASSOCIATION,
    COMPANY,
    EXPLOIT,
    GLOBAL_OWNER,
    MUNICIPALITY,
    N_ASSOCIATIONS,
    NATURAL,
    OWNER_OCC,
    PRIVATE,
    ROOM,
    UNKNOWN_TENURE,
    World,
)

#: SBI codes by use purpose: (codes, weights); 78xx are employment agencies
SBI_BY_USE: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "winkelfunctie": (
        ("4711", "4719", "4751", "4771", "4773", "4778", "4779", "5610", "9602", "4722", "47191"),
        (10, 6, 3, 10, 4, 6, 4, 8, 8, 3, 2),
    ),
    "kantoorfunctie": (
        (
            "6201",
            "6202",
            "6910",
            "6920",
            "7022",
            "7112",
            "6619",
            "7311",
            "7820",
            "8211",
            "6831",
            "7810",
            "78201",
        ),
        (8, 5, 6, 6, 10, 4, 3, 3, 2, 3, 4, 1, 1),
    ),
    "industriefunctie": (
        (
            "1071",
            "2511",
            "2562",
            "3312",
            "4120",
            "4321",
            "4332",
            "4399",
            "4941",
            "5210",
            "1013",
            "2219",
        ),
        (3, 3, 3, 3, 6, 5, 4, 4, 4, 5, 2, 2),
    ),
    "bijeenkomstfunctie": (("5610", "5630", "9312", "9499", "9329"), (6, 5, 2, 3, 2)),
    "gezondheidszorgfunctie": (("8621", "8622", "8690", "8691", "8710"), (4, 3, 4, 2, 2)),
    "onderwijsfunctie": (("8520", "8531", "8559", "8891"), (5, 3, 2, 2)),
    "sportfunctie": (("9311", "9313", "9312"), (3, 4, 2)),
    "logiesfunctie": (("5510", "5520", "5590"), (5, 2, 2)),
    "overige gebruiksfunctie": (("4520", "5221", "6820", "9609", "0161"), (4, 2, 3, 2, 1)),
    "celfunctie": (("8424",), (1,)),
}
HOME_SBI = (
    (
        "6201",
        "7022",
        "4332",
        "7410",
        "9003",
        "8690",
        "4791",
        "9602",
        "4120",
        "8559",
        "7111",
        "7810",
        "4941",
    ),
    (8, 10, 6, 5, 4, 4, 5, 4, 3, 3, 3, 1, 2),
)
AGENCY_SBI = (("7820", "78", "7830", "78201", "7810"), (5, 2, 2, 2, 1))


@dataclass
class Ownership:
    addr: np.ndarray
    owner: np.ndarray
    owner_type: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass
class Businesses:
    number: np.ndarray  # local business number
    addr: np.ndarray
    start: np.ndarray
    end: np.ndarray
    sbi: np.ndarray  # str


def _intervals(
    addr: np.ndarray, start: np.ndarray, *cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Successive holders per address: each row lasts until the next row at the same address."""
    order = np.lexsort((start, addr))
    addr, start = addr[order], start[order]
    cols_sorted = [c[order] for c in cols]
    end = np.full(len(addr), OPEN, dtype="int64")
    if len(addr) > 1:
        same = addr[1:] == addr[:-1]
        end[:-1] = np.where(same, start[1:], OPEN)
    return addr, start, end, cols_sorted


def ownership(
    cfg: GeneratorConfig,
    w: World,
    ep: Episodes,
    ops: Operations,
    people: People,
    rng: np.random.Generator,
) -> Ownership:
    """Who owned each unit when: one owner per owner-occupier household, landlords, sales."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    chunk = np.int64(w.spec.index) << np.int64(32)
    next_id = w.next_owner

    def new_ids(k: int) -> np.ndarray:
        nonlocal next_id
        out = chunk + next_id + np.arange(k, dtype="int64")
        next_id += k
        return out

    a_l, s_l, o_l, t_l = [], [], [], []
    # owner-occupied dwellings: the household owns it; a sale when the next one moves in
    occ = w.residential & (w.tenure == OWNER_OCC) & (w.owner < 0)
    occ_addr = np.flatnonzero(occ)
    ti = np.flatnonzero(occ[people.ten_addr])
    buy = people.ten_start[ti] - rng.integers(0, 31, len(ti))
    first_buy = np.full(w.n, OPEN, dtype="int64")
    np.minimum.at(first_buy, people.ten_addr[ti], buy)
    before = np.minimum(w.owner_from[occ_addr], first_buy[occ_addr] - 365)
    new_build = w.exists_from[occ_addr] >= t0 - 400
    a_l += [people.ten_addr[ti], occ_addr]
    s_l += [buy, before]
    o_l += [new_ids(len(ti)), new_ids(len(occ_addr))]
    t_l += [np.full(len(ti), NATURAL), np.where(new_build, COMPANY, NATURAL)]

    # everything else: the first owner, then sales
    rest = np.flatnonzero(~occ)
    a_l.append(rest)
    s_l.append(w.owner_from[rest])
    o_l.append(w.owner[rest])
    t_l.append(w.owner_type[rest])
    exploited = np.zeros(w.n, dtype=bool)
    exploited[ep.addr[ep.mech == EXPLOIT]] = True
    exploited[ops.agency_addr[ops.agency_addr >= 0]] = True
    saleable = (
        ~occ
        & ~exploited
        & (w.owner_type != MUNICIPALITY)
        & (np.isin(w.tenure, [PRIVATE, UNKNOWN_TENURE]) | ~w.residential)
    )
    rate = np.where(w.residential, 0.025, 0.02) * saleable
    k = rng.poisson(rate * (t1 - t0) / YEAR)
    sa = np.repeat(np.arange(w.n), k)
    sd = t0 + (rng.random(len(sa)) * (t1 - t0)).astype("int64")
    # a landlord may sell once an operation or a room-rental business ends
    sold_after = (ep.mech == EXPLOIT) | (
        (ep.mech == ROOM) & (ep.variant == 1) & (w.portfolio[ep.addr] >= 4)
    )
    p_sell = np.where(ep.mech == EXPLOIT, 0.5, 0.3)
    later = np.zeros(len(ep), dtype=bool)  # episodes are sorted by address, then start
    later[:-1] = ep.addr[1:] == ep.addr[:-1]
    sell = np.flatnonzero(
        sold_after & ~later & (ep.cause == 0) & (ep.end < t1) & (rng.random(len(ep)) < p_sell)
    )
    sd2 = ep.end[sell] + rng.integers(0, 61, len(sell))
    ok = sd2 < t1
    sa = np.concatenate([sa, ep.addr[sell][ok]])
    sd = np.concatenate([sd, sd2[ok]])
    a_l.append(sa)
    s_l.append(sd)
    o_l.append(new_ids(len(sa)))
    t_l.append(np.where(rng.random(len(sa)) < 0.7, NATURAL, COMPANY))
    # housing associations swap some of their stock
    swap = np.flatnonzero(
        (w.owner_type == ASSOCIATION) & (rng.random(w.n) < 0.015)[w.building - w.spec.addr_offset]
    )
    swap_to = (
        GLOBAL_OWNER
        + (w.owner[swap] - GLOBAL_OWNER + 1 + rng.integers(0, N_ASSOCIATIONS - 1, len(swap)))
        % N_ASSOCIATIONS
    )
    swap_day = (t0 + (rng.random(w.n) * (t1 - t0)).astype("int64"))[
        w.building[swap] - w.spec.addr_offset
    ]
    a_l.append(swap)
    s_l.append(swap_day)
    o_l.append(swap_to)
    t_l.append(np.full(len(swap), ASSOCIATION))

    addr, start, end, (owner, otype) = _intervals(
        np.concatenate(a_l).astype("int64"),
        np.concatenate(s_l).astype("int64"),
        np.concatenate(o_l).astype("int64"),
        np.concatenate(t_l).astype("int64"),
    )
    # two events on one day: the later one wins
    keep = end > start
    addr, start, end, owner, otype = (x[keep] for x in (addr, start, end, owner, otype))
    # history rows that ended before the history starts are not in the extract
    keep = (end >= t0) & (start < t1)
    end = np.where(end >= t1, OPEN, end)
    w.next_owner = next_id
    return Ownership(addr[keep], owner[keep], otype[keep], start[keep], end[keep])


def _sbi(
    rng: np.random.Generator, table: tuple[tuple[str, ...], tuple[float, ...]], k: int
) -> np.ndarray:
    codes, weights = table
    return np.asarray(np.array(codes)[categorical(rng, np.array(weights, dtype="float64"), k)])


def businesses(
    cfg: GeneratorConfig, w: World, ops: Operations, people: People, rng: np.random.Generator
) -> Businesses:
    """Establishments: commercial units, people working from home, and the operations' agencies."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    a_l, s_l, e_l, c_l = [], [], [], []
    # commercial units: one business after another, sometimes two at once
    units = np.flatnonzero(~w.residential)
    streams = np.concatenate([units, units[rng.random(len(units)) < 0.2]])
    k = len(streams)
    mean = 7 * YEAR
    old = w.exists_from[streams] < t0
    start = np.where(
        old, t0 - rng.gamma(1.3, mean / 1.3, k), w.exists_from[streams] + rng.integers(30, 200, k)
    ).astype("int64")
    start = np.where(rng.random(k) < 0.15, t0 + rng.exponential(400, k).astype("int64"), start)
    end = start + np.maximum(rng.gamma(1.3, mean / 1.3, k), 60).astype("int64")
    s_all, e_all, a_all = [start], [end], [streams]
    idx, cur = np.arange(k), end
    while True:
        live = cur < t1
        idx, cur = idx[live], cur[live]
        if len(idx) == 0:
            break
        s = cur + 30 + rng.exponential(200, len(idx)).astype("int64")
        e = s + np.maximum(rng.gamma(1.3, mean / 1.3, len(idx)), 60).astype("int64")
        s_all.append(s)
        e_all.append(e)
        a_all.append(streams[idx])
        cur = e
    ua = np.concatenate(a_all)
    a_l.append(ua)
    s_l.append(np.concatenate(s_all))
    e_l.append(np.concatenate(e_all))
    codes = np.empty(len(ua), dtype=object)
    for use, table in SBI_BY_USE.items():
        sel = w.use_purpose[ua] == USE_PURPOSES.index(use)
        codes[sel] = _sbi(rng, table, int(sel.sum()))
    c_l.append(codes.astype(str))

    # people who run a business from home (a few of them recruit staff: SBI 7810)
    ti = np.flatnonzero(rng.random(len(people.ten_addr)) < 0.08)
    dur = np.minimum(people.ten_end[ti], t1) - people.ten_start[ti]
    s = people.ten_start[ti] + (rng.random(len(ti)) * 0.5 * np.minimum(dur, 10 * YEAR)).astype(
        "int64"
    )
    e = np.minimum(people.ten_end[ti], s + rng.gamma(1.5, 6 * YEAR / 1.5, len(ti)).astype("int64"))
    a_l.append(people.ten_addr[ti])
    s_l.append(s)
    e_l.append(e)
    c_l.append(_sbi(rng, HOME_SBI, len(ti)))

    # the employment agency of each exploitation operation
    op = np.flatnonzero(ops.agency_addr >= 0)
    aa = ops.agency_addr[op]
    s = np.maximum(ops.start[op] - rng.integers(0, 241, len(op)), w.exists_from[aa] + 1)
    e = np.where(ops.end[op] >= t1, OPEN, ops.end[op] + rng.integers(0, 301, len(op)))
    a_l.append(aa)
    s_l.append(s)
    e_l.append(e)
    c_l.append(_sbi(rng, AGENCY_SBI, len(op)))

    addr = np.concatenate(a_l).astype("int64")
    start = np.concatenate(s_l).astype("int64")
    end = np.concatenate(e_l).astype("int64")
    sbi = np.concatenate(c_l)
    end = np.where(end >= t1, OPEN, end)
    keep = (start < t1) & (end >= t0) & (end >= start)
    addr, start, end, sbi = addr[keep], start[keep], end[keep], sbi[keep]
    order = np.lexsort((start, addr))
    addr, start, end, sbi = addr[order], start[order], end[order], sbi[order]
    return Businesses(np.arange(len(addr), dtype="int64"), addr, start, end, sbi)
