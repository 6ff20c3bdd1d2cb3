"""The people the planted mechanisms add: phantoms, room tenants, extra families, workers."""

from __future__ import annotations

import numpy as np

from stratum_ml.synthetic._util import (
    OPEN,
    categorical,
    chain_match,
    chain_roots,
    day,
    local_index,
    year_of,
)
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes
from stratum_ml.synthetic.population._common import _country, _gender, _Ids
from stratum_ml.synthetic.world import CROWD, EXPLOIT, FRAUD, ROOM, World


def _slot_stays(
    rng: np.random.Generator,
    start: np.ndarray,
    end: np.ndarray,
    capacity: np.ndarray,
    mean_days: float,
    shape: float,
    max_gap: int,
    t1: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Back-to-back stays filling ``capacity`` places during each episode.

    Returns (episode position, slot number within the episode, from, to).
    """
    slot_ep = np.repeat(np.arange(len(start)), capacity)
    slot_no = local_index(capacity)
    hi = np.minimum(end, t1)[slot_ep]
    cur = start[slot_ep] + rng.integers(0, 30, len(slot_ep))
    out_ep, out_slot, out_from, out_to = [], [], [], []
    idx = np.arange(len(slot_ep))
    while True:
        idx = idx[cur[idx] < hi[idx]]
        if len(idx) == 0:
            break
        s = cur[idx]
        e = np.minimum(
            s + np.maximum(rng.gamma(shape, mean_days / shape, len(idx)), 14).astype("int64"),
            hi[idx],
        )
        out_ep.append(slot_ep[idx])
        out_slot.append(slot_no[idx])
        out_from.append(s)
        out_to.append(e)
        cur[idx] = e + rng.integers(0, max_gap + 1, len(idx))
    if not out_ep:
        z = np.zeros(0, dtype="int64")
        return z, z, z, z
    to = np.concatenate(out_to)
    ep_pos = np.concatenate(out_ep)
    to = np.where((to >= t1) & (end[ep_pos] >= t1), OPEN, to)
    return ep_pos, np.concatenate(out_slot), np.concatenate(out_from), to


def _mechanism_people(
    cfg: GeneratorConfig,
    w: World,
    ep: Episodes,
    rng: np.random.Generator,
    ids: _Ids,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    t1 = day(cfg.extract_date)
    reg: list[list[np.ndarray]] = [[], [], [], []]
    persons: list[list[np.ndarray]] = [[], [], [], [], []]
    occ: list[list[np.ndarray]] = [[], [], [], []]

    def add_reg(p: np.ndarray, a: np.ndarray, f: np.ndarray, u: np.ndarray) -> None:
        for lst, v in zip(reg, (p, a, f, u), strict=True):
            lst.append(v)

    def add_persons(*cols: np.ndarray) -> None:
        for lst, v in zip(persons, cols, strict=True):
            lst.append(v)

    def add_occ(a: np.ndarray, f: np.ndarray, u: np.ndarray, wt: np.ndarray) -> None:
        for lst, v in zip(occ, (a, f, u, wt), strict=True):
            lst.append(v)

    def registered(s: np.ndarray, e: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
        f = s + rng.integers(0, 15, len(s))
        ok = (rng.random(len(s)) < p) & (f < np.minimum(e, t1))
        return ok, f

    # address fraud, variant 0: phantom registrations, nobody extra lives there
    ph = np.flatnonzero((ep.mech == FRAUD) & (ep.variant == 0))
    k = np.minimum(1 + rng.poisson(0.6, len(ph)), 4)
    pe = np.repeat(ph, k)
    n = len(pe)
    f = ep.start[pe] + rng.integers(0, 31, n)
    e = np.where(ep.end[pe] >= t1, OPEN, ep.end[pe])
    ok = f < np.minimum(e, t1)
    pe, f, e = pe[ok], f[ok], e[ok]
    n = len(pe)
    p = ids.person(n)
    shared = ids.surname(len(ph))[np.searchsorted(ph, pe)]
    sn = np.where(rng.random(n) < 0.3, shared, ids.surname(n))
    mix = w.nbh_residents[w.nbh[ep.addr[pe]]] * np.array([1.0, 1.3, 1.5, 1.0])
    add_reg(p, ep.addr[pe], f, e)
    add_persons(
        p,
        year_of(ep.start[pe]) - rng.integers(20, 61, n),
        sn,
        _gender(rng, 0.55, n),
        _country(rng, mix),
    )

    # illegal room rental: a stream of short-stay tenants, a minority registered
    for variant, cap_fn, p_reg in (
        (1, lambda a: np.clip(np.round(w.floor_area[a] / 16), 3, 8), 0.4),
        (0, lambda a: np.minimum(1 + rng.poisson(0.8, len(a)), 3), 0.35),
    ):
        sel = np.flatnonzero((ep.mech == ROOM) & (ep.variant == variant))
        cap = cap_fn(ep.addr[sel]).astype("int64")
        pos, _, s, e = _slot_stays(rng, ep.start[sel], ep.end[sel], cap, 210, 1.5, 30, t1)
        a = ep.addr[sel][pos]
        n = len(pos)
        p = ids.person(n)
        add_occ(a, s, e, rng.lognormal(0, 0.2, n))
        ok, f = registered(s, e, p_reg)
        add_reg(p[ok], a[ok], f[ok], e[ok])
        mix = 0.5 * w.nbh_residents[w.nbh[a]] + 0.5 * np.array([0.3, 0.35, 0.3, 0.05])
        add_persons(
            p,
            year_of(s) - rng.integers(19, 39, n),
            ids.surname(n),
            _gender(rng, 0.55, n),
            _country(rng, mix),
        )

    # overcrowding: one or two extra families, about half of them registered
    sel = np.flatnonzero(ep.mech == CROWD)
    cap = np.minimum(3 + rng.poisson(1.5, len(sel)), 9)
    two = (cap >= 5) & (rng.random(len(sel)) < 0.5)
    fam = ids.surname(2 * len(sel)).reshape(-1, 2) if len(sel) else np.zeros((0, 2), dtype="int64")
    pos, slot, s, e = _slot_stays(rng, ep.start[sel], ep.end[sel], cap, 450, 2.0, 60, t1)
    a = ep.addr[sel][pos]
    n = len(pos)
    p = ids.person(n)
    which = (two[pos] & (slot >= cap[pos] // 2)).astype("int64")
    sn = fam[pos, which] if n else np.zeros(0, dtype="int64")
    child = rng.random(n) < 0.4
    by = year_of(s) - np.where(child, rng.integers(0, 18, n), rng.integers(20, 61, n))
    add_occ(a, s, e, rng.lognormal(0, 0.2, n))
    ok, f = registered(s, e, 0.5)
    add_reg(p[ok], a[ok], f[ok], e[ok])
    mix = w.nbh_residents[w.nbh[a]] * np.array([1.0, 1.5, 2.5, 1.0])
    add_persons(p, by, sn, _gender(rng, 0.5, n), _country(rng, mix))

    # exploitation: workers moved between the dwellings of one landlord
    sel = np.flatnonzero(ep.mech == EXPLOIT)
    cap = np.clip(np.round(w.floor_area[ep.addr[sel]] / 11), 4, 12).astype("int64")
    pos, _, s, e = _slot_stays(rng, ep.start[sel], ep.end[sel], cap, 150, 2.0, 20, t1)
    a = ep.addr[sel][pos]
    op = ep.op[sel][pos]
    n = len(pos)
    parent = chain_match(
        rng, op, np.where(e >= t1, OPEN, e), a, op, s, a, rng.random(n) < 0.75, max_gap=21
    )
    worker = chain_roots(parent)
    roots = np.flatnonzero(parent < 0)
    code = np.zeros(n, dtype="int64")
    code[roots] = ids.person(len(roots))
    p = code[worker]
    add_occ(a, s, e, rng.lognormal(0, 0.2, n))
    ok, f = registered(s, e, 0.5)
    add_reg(p[ok], a[ok], f[ok], e[ok])
    nr = len(roots)
    add_persons(
        code[roots],
        year_of(s[roots]) - rng.integers(19, 51, nr),
        ids.surname(nr),
        _gender(rng, 0.75, nr),
        categorical(rng, np.array([0.05, 0.72, 0.18, 0.05]), nr),
    )

    def cat(lists: list[list[np.ndarray]]) -> list[np.ndarray]:
        return [np.concatenate(x) if x else np.zeros(0) for x in lists]

    return cat(reg), cat(persons), cat(occ)
