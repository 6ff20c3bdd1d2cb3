"""Tenancies: one household after another in every dwelling, around exclusive episodes."""

from __future__ import annotations

import numpy as np

from stratum_ml.synthetic._util import OPEN, day
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes
from stratum_ml.synthetic.population._common import YEAR
from stratum_ml.synthetic.world import (
    EXPLOIT,
    FRAUD,
    OWNER_OCC,
    PRIVATE,
    ROOM,
    SOCIAL,
    UNKNOWN_TENURE,
    World,
)

MEAN_TENANCY = {
    OWNER_OCC: 14 * YEAR,
    SOCIAL: 11 * YEAR,
    PRIVATE: 4.5 * YEAR,
    UNKNOWN_TENURE: 7 * YEAR,
}
MEAN_VACANCY = {OWNER_OCC: 50.0, SOCIAL: 40.0, PRIVATE: 30.0, UNKNOWN_TENURE: 45.0}


def _tenancies(
    cfg: GeneratorConfig, w: World, ep: Episodes, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One household after another in every dwelling, leaving room for exclusive episodes."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    res = np.flatnonzero(w.residential)
    ten = w.tenure[res]
    mean = np.select([ten == t for t in MEAN_TENANCY], list(MEAN_TENANCY.values()))
    assert w.shared is not None
    mean = np.where(w.shared[res], 300.0, mean)
    gap_mean = np.select([ten == t for t in MEAN_VACANCY], list(MEAN_VACANCY.values()))
    shape = 1.3
    old = w.exists_from[res] < t0
    k = len(res)
    start = np.where(
        old, t0 - rng.gamma(shape, mean / shape, k), w.exists_from[res] + rng.integers(0, 60, k)
    ).astype("int64")
    start = np.maximum(start, np.maximum(w.exists_from[res], t0 - 60 * 365))
    vacant = old & (rng.random(k) < 0.03)
    start = np.where(vacant, t0 + rng.exponential(150, k).astype("int64"), start)
    end = np.where(
        old & ~vacant,
        t0 + rng.gamma(shape, mean / shape, k),
        start + np.maximum(rng.gamma(shape, mean / shape, k), 30),
    ).astype("int64")
    addr_l, start_l, end_l = [res], [start], [end]
    cur_end, idx = end, np.arange(k)
    while True:
        live = cur_end < t1
        idx, cur_end = idx[live], cur_end[live]
        if len(idx) == 0:
            break
        s = cur_end + 3 + rng.exponential(gap_mean[idx]).astype("int64")
        e = s + np.maximum(rng.gamma(shape, mean[idx] / shape), 30).astype("int64")
        ok = s < t1
        addr_l.append(res[idx[ok]])
        start_l.append(s[ok])
        end_l.append(e[ok])
        idx, cur_end = idx[ok], e[ok]
    t_addr = np.concatenate(addr_l)
    t_start = np.concatenate(start_l)
    t_end = np.concatenate(end_l)

    # exclusive episodes (a dwelling let by the room, workers' housing) push households out
    excl = np.flatnonzero((ep.mech == EXPLOIT) | ((ep.mech == ROOM) & (ep.variant == 1)))
    xa, xs, xe = ep.addr[excl], ep.start[excl], ep.end[excl]  # sorted by address, start
    scale = np.int64(1 << 42)
    xkey = xa * scale + xs
    if len(excl):
        for _ in range(2):
            i = np.searchsorted(xkey, t_addr * scale + t_start, side="right") - 1
            ii = np.maximum(i, 0)
            inside = (i >= 0) & (xa[ii] == t_addr) & (t_start < xe[ii])
            t_start = np.where(
                inside,
                np.where(xe[ii] >= OPEN, OPEN, xe[ii] + rng.integers(10, 61, len(t_start))),
                t_start,
            )
        j = np.searchsorted(xkey, t_addr * scale + t_start, side="right")
        jj = np.minimum(j, len(xkey) - 1)
        nxt = (j < len(xkey)) & (xa[jj] == t_addr)
        t_end = np.where(nxt & (xs[jj] < t_end), xs[jj], t_end)
    t_end = np.where(t_end >= t1, OPEN, t_end)
    ok = (t_start < t_end) & (t_start < t1)
    t_addr, t_start, t_end = t_addr[ok], t_start[ok], t_end[ok]
    order = np.lexsort((t_start, t_addr))
    t_addr, t_start, t_end = t_addr[order], t_start[order], t_end[order]

    # an absent household found out (address fraud, variant 1) is deregistered
    gone = np.flatnonzero((ep.mech == FRAUD) & (ep.variant == 1) & (ep.cause == 1))
    if len(gone) and len(t_addr):
        key = t_addr * scale + t_start
        i = np.searchsorted(key, ep.addr[gone] * scale + ep.end[gone] - 1, side="right") - 1
        ii = np.maximum(i, 0)
        hit = (i >= 0) & (t_addr[ii] == ep.addr[gone]) & (t_end[ii] > ep.end[gone])
        t_end[ii[hit]] = ep.end[gone][hit]
    return t_addr, t_start, t_end
