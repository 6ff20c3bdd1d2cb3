"""Planted violations: episodes of each mechanism, with start and (natural) end dates.

* address fraud: persons registered at a dwelling where they do not live
  (variant 0: extra phantom registrations; variant 1: the registered household
  lives elsewhere);
* illegal room rental: rooms let to a stream of short-stay tenants, few of whom
  register (variant 1: the whole dwelling is let by the room, nobody else lives
  there);
* overcrowding: more people than the dwelling is fit for, half of them unregistered;
* labour exploitation: a landlord with several dwellings houses workers of an
  employment agency, moving them between his dwellings (always variant 1).

Episodes at one address never overlap. Visits (``enforcement``) may later end
an episode early.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_ml.synthetic._util import OPEN, day, local_index, rank_in_group
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.world import (
    ASSOCIATION,
    CROWD,
    EXPLOIT,
    FRAUD,
    MUNICIPALITY,
    OWNER_OCC,
    PRIVATE,
    ROOM,
    SOCIAL,
    UNKNOWN_TENURE,
    WOON,
    World,
)

MEAN_DAYS = np.array([1000.0, 800.0, 900.0, 1300.0])  # natural episode length, by mechanism
LEAD_YEARS = 3  # episodes may have begun this long before the history starts


@dataclass
class Episodes:
    """Violation episodes of one chunk (one row each)."""

    addr: np.ndarray
    mech: np.ndarray
    start: np.ndarray
    end: np.ndarray  # OPEN: still running at the extract date
    variant: np.ndarray
    op: np.ndarray  # exploitation operation, -1 for other mechanisms
    cause: np.ndarray  # 0: natural end (or running), 1: ended after a visit

    def __len__(self) -> int:
        return len(self.addr)

    def take(self, idx: np.ndarray) -> Episodes:
        return Episodes(
            *(
                getattr(self, f)[idx]
                for f in ("addr", "mech", "start", "end", "variant", "op", "cause")
            )
        )


@dataclass
class Operations:
    """Exploitation operations: an owner, a period and the employment agency they work with."""

    owner: np.ndarray
    owner_type: np.ndarray
    start: np.ndarray
    end: np.ndarray
    agency_addr: np.ndarray  # address where the agency (SBI 78) is registered


def _ends(start: np.ndarray, length: np.ndarray, t1: int) -> np.ndarray:
    end = start + np.maximum(length, 45).astype("int64")
    return np.where(end >= t1, OPEN, end)


def non_overlapping(ep: Episodes) -> Episodes:
    """Keep, per address, episodes in order of start that begin after the last kept one ended."""
    if len(ep) == 0:
        return ep
    order = np.lexsort((ep.start, ep.addr))
    ep = ep.take(order)
    rank = rank_in_group(ep.addr)
    keep = np.zeros(len(ep), dtype=bool)
    last_end = np.full(int(ep.addr.max()) + 1, np.iinfo(np.int64).min, dtype="int64")
    for r in range(int(rank.max()) + 1):
        idx = np.flatnonzero(rank == r)
        ok = ep.start[idx] >= last_end[ep.addr[idx]]
        keep[idx[ok]] = True
        last_end[ep.addr[idx[ok]]] = ep.end[idx[ok]]
    return ep.take(np.flatnonzero(keep))


def plant(cfg: GeneratorConfig, w: World, rng: np.random.Generator) -> tuple[Episodes, Operations]:
    """Draw the episodes of every mechanism (before any visit)."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    ws = t0 - LEAD_YEARS * 365
    window = t1 - ws
    res = w.residential
    n_res = int(res.sum())
    prev = np.array(list(cfg.prevalences.values()))

    ex, ops = _exploitation(cfg, w, rng, prev[EXPLOIT] * n_res * window, ws)
    taken = np.zeros(w.n, dtype=bool)
    taken[ex.addr] = True

    area = w.floor_area.astype("float64")
    tenure_f = {
        FRAUD: {OWNER_OCC: 0.5, SOCIAL: 1.8, PRIVATE: 1.3, UNKNOWN_TENURE: 1.0},
        ROOM: {OWNER_OCC: 0.5, SOCIAL: 0.4, PRIVATE: 3.0, UNKNOWN_TENURE: 2.0},
        CROWD: {OWNER_OCC: 0.4, SOCIAL: 1.2, PRIVATE: 2.0, UNKNOWN_TENURE: 1.5},
    }
    shape_f = {
        FRAUD: np.where(area < 80, 1.2, 0.8),
        ROOM: np.clip(area / 70, 0.5, 2.5) * np.where(w.portfolio >= 4, 1.8, 1.0),
        CROWD: np.clip(70 / area, 0.5, 2.0),
    }
    parts = [ex]
    for m in (FRAUD, ROOM, CROWD):
        tf = np.select([w.tenure == t for t in tenure_f[m]], list(tenure_f[m].values()), 1.0)
        weight = np.where(res & ~taken, w.nbh_mechanisms[w.nbh, m] * tf * shape_f[m], 0.0)
        if weight.sum() <= 0:
            continue
        k = rng.poisson(prev[m] * n_res * window / MEAN_DAYS[m])
        addr = rng.choice(w.n, size=k, p=weight / weight.sum())
        lo = np.maximum(ws, w.exists_from[addr])
        start = lo + (rng.random(k) * (t1 - lo)).astype("int64")
        end = _ends(start, rng.gamma(1.5, MEAN_DAYS[m] / 1.5, k), t1)
        if m == FRAUD:
            variant = (rng.random(k) < 0.35).astype("int64")
        elif m == ROOM:
            variant = (rng.random(k) < np.where(w.tenure[addr] == OWNER_OCC, 0.2, 0.55)).astype(
                "int64"
            )
        else:
            variant = np.zeros(k, dtype="int64")
        parts.append(
            Episodes(
                addr, np.full(k, m), start, end, variant, np.full(k, -1), np.zeros(k, dtype="int64")
            )
        )
    ep = Episodes(
        *(
            np.concatenate([getattr(p, f) for p in parts]).astype("int64")
            for f in ("addr", "mech", "start", "end", "variant", "op", "cause")
        )
    )
    ep = non_overlapping(ep)
    return ep.take(np.flatnonzero(ep.end >= t0)), ops


def _exploitation(
    cfg: GeneratorConfig, w: World, rng: np.random.Generator, dwelling_days: float, ws: int
) -> tuple[Episodes, Operations]:
    """Operations of landlords with several dwellings, and an episode per dwelling they use."""
    t1 = day(cfg.extract_date)
    empty_ops = Operations(*(np.zeros(0, dtype="int64") for _ in range(5)))
    empty = Episodes(*(np.zeros(0, dtype="int64") for _ in range(7)))
    cand = np.flatnonzero(
        (w.use_purpose == WOON)
        & (w.portfolio >= 3)
        & (w.owner >= 0)
        & ~np.isin(w.owner_type, [ASSOCIATION, MUNICIPALITY])
        & np.isin(w.tenure, [PRIVATE, UNKNOWN_TENURE])
    )
    if len(cand) == 0 or dwelling_days <= 0:
        return empty, empty_ops
    cand = cand[np.argsort(w.owner[cand], kind="stable")]
    owners, first, size = np.unique(w.owner[cand], return_index=True, return_counts=True)
    pull = np.add.reduceat(w.nbh_mechanisms[w.nbh[cand], EXPLOIT], first) / size * np.sqrt(size)
    per_op = np.minimum(size, 4).mean() * MEAN_DAYS[EXPLOIT] * 0.85
    k = rng.poisson(dwelling_days / per_op)
    if k == 0:
        return empty, empty_ops
    o = rng.choice(len(owners), size=k, p=pull / pull.sum())
    start = ws + (rng.random(k) * (t1 - ws)).astype("int64")
    length = rng.gamma(2.0, MEAN_DAYS[EXPLOIT] / 2.0, k)
    end = _ends(start, length, t1)
    # one operation at a time per owner
    order = np.lexsort((start, o))
    o, start, end, length = o[order], start[order], end[order], length[order]
    keep = np.ones(k, dtype=bool)
    last = np.full(len(owners), np.iinfo(np.int64).min, dtype="int64")
    rank = rank_in_group(o)
    for r in range(int(rank.max()) + 1):
        idx = np.flatnonzero(rank == r)
        ok = start[idx] >= last[o[idx]]
        keep[idx[~ok]] = False
        last[o[idx[ok]]] = end[idx[ok]]
    o, start, end, length = o[keep], start[keep], end[keep], length[keep]
    n_ops = len(o)

    # the dwellings each operation uses: a random subset of the owner's
    used = np.minimum(size[o], 2 + rng.poisson(2.0, n_ops))
    rows_op = np.repeat(np.arange(n_ops), size[o])
    rows_addr = cand[first[o][rows_op] + local_index(size[o])]
    pick = np.lexsort((rng.random(len(rows_op)), rows_op))
    rows_op, rows_addr = rows_op[pick], rows_addr[pick]
    sel = (rank_in_group(rows_op) < used[rows_op]) & (w.exists_from[rows_addr] < start[rows_op])
    e_op, e_addr = rows_op[sel], rows_addr[sel]
    span = length[e_op]
    e_start = start[e_op] + (rng.random(len(e_op)) * 0.25 * span).astype("int64")
    natural_end = start[e_op] + span - (rng.random(len(e_op)) * 0.1 * span)
    e_end = _ends(e_start, np.maximum(natural_end - e_start, 60), t1)
    ok = e_start < t1
    e_op, e_addr, e_start, e_end = e_op[ok], e_addr[ok], e_start[ok], e_end[ok]
    n_e = len(e_op)
    # the landlord owned the dwellings before the operation began
    np.minimum.at(w.owner_from, e_addr, e_start - rng.integers(30, 400, n_e))
    w.owner_from[e_addr] = np.maximum(w.owner_from[e_addr], w.exists_from[e_addr])
    episodes = Episodes(
        e_addr,
        np.full(n_e, EXPLOIT),
        e_start,
        e_end,
        np.ones(n_e, dtype="int64"),
        e_op,
        np.zeros(n_e, dtype="int64"),
    )

    # the employment agency: at one of the dwellings, or at a commercial unit of the same owner
    agency = np.full(n_ops, -1, dtype="int64")
    has = np.unique(e_op)
    first_dwelling = e_addr[np.searchsorted(e_op, has)] if n_e else np.zeros(0, dtype="int64")
    agency[has] = first_dwelling
    offices = np.flatnonzero(~w.residential & (w.owner_type != MUNICIPALITY))
    to_office = has[rng.random(len(has)) < 0.35]
    if len(offices) and len(to_office):
        units = rng.choice(offices, size=min(len(to_office), len(offices)), replace=False)
        to_office = to_office[: len(units)]
        agency[to_office] = units
        w.owner[units] = owners[o[to_office]]
        w.owner_type[units] = w.owner_type[cand[first[o[to_office]]]]
        w.owner_from[units] = np.minimum(w.owner_from[units], start[to_office] - 200)
    ops = Operations(owners[o], w.owner_type[cand[first[o]]], start, end, agency)
    return episodes, ops
