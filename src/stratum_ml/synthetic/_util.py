"""Vectorised building blocks of the generator: days, ids, sampling, matching, integrals.

Time is an ``int64`` day number (days since 1970-01-01) everywhere inside the
generator; :data:`OPEN` marks an interval that has not ended.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

OPEN = np.int64(1 << 40)  #: end day of an interval that is still running
_EPOCH = dt.date(1970, 1, 1)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DEC = np.frombuffer(b"0123456789", dtype=np.uint8)


def day(d: dt.date) -> int:
    """Day number of a date."""
    return (d - _EPOCH).days


def year_start(year: np.ndarray | int) -> np.ndarray:
    """Day number of 1 January of each year."""
    y = np.asarray(year, dtype="int64")
    return (y - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype("int64")


def year_of(days: np.ndarray) -> np.ndarray:
    """Calendar year of each day number."""
    return (
        np.asarray(days, dtype="int64")
        .astype("datetime64[D]")
        .astype("datetime64[Y]")
        .astype("int64")
        + 1970
    )


def to_datetime64(days: np.ndarray, end: int | None = None) -> np.ndarray:
    """``datetime64[ns]`` of day numbers; days at or after ``end`` (or OPEN) become NaT."""
    days = np.asarray(days, dtype="int64")
    out = days.astype("datetime64[D]").astype("datetime64[ns]")
    bad = days >= (OPEN if end is None else end)
    if bad.any():
        out[bad] = np.datetime64("NaT")
    return out


def weekday(days: np.ndarray) -> np.ndarray:
    """0 = Monday ... 6 = Sunday."""
    return (np.asarray(days, dtype="int64") + 3) % 7


def to_workday(days: np.ndarray, end: int) -> np.ndarray:
    """Move weekend days to the next Monday, or to the Friday before when that is ``>= end``."""
    days = np.asarray(days, dtype="int64").copy()
    wd = weekday(days)
    fwd = np.where(wd == 5, 2, np.where(wd == 6, 1, 0))
    back = np.where(wd == 5, -1, np.where(wd == 6, -2, 0))
    return np.where(days + fwd < end, days + fwd, days + back)


# ---------------------------------------------------------------------------- ids


def scramble(x: np.ndarray, bits: int, key: int) -> np.ndarray:
    """A keyed bijection of ``[0, 2**bits)``: unique inputs give unique, random-looking outputs."""
    mask = np.uint64((1 << bits) - 1)
    half = np.uint64(bits // 2)
    v = np.asarray(x, dtype=np.uint64) & mask
    k = np.uint64(key) & mask
    for mult in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB):
        v = (v * np.uint64(mult | 1)) & mask  # odd multiplier: bijective mod 2**bits
        v ^= v >> half  # xor-shift: bijective
        v = (v + k) & mask
    return v


def _digits(values: np.ndarray, width: int, base: int) -> np.ndarray:
    table = _HEX if base == 16 else _DEC
    v = np.asarray(values, dtype=np.uint64)
    powers = np.uint64(base) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return table[(v[:, None] // powers[None, :]) % np.uint64(base)]


def format_ids(prefix: str, values: np.ndarray, width: int, base: int = 10) -> np.ndarray:
    """``prefix`` + ``values`` zero-padded to ``width`` digits (decimal or hex), as ``str``."""
    values = np.asarray(values)
    n = len(values)
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    buf = np.empty((n, len(pre) + width), dtype=np.uint8)
    buf[:, : len(pre)] = pre
    if n:
        buf[:, len(pre) :] = _digits(values, width, base)
    total = len(pre) + width
    return buf.view(f"S{total}").ravel().astype(f"U{total}")


# ---------------------------------------------------------------------------- groups


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Boolean mask: True at the first row of each run of equal keys."""
    k = np.asarray(sorted_keys)
    first = np.ones(len(k), dtype=bool)
    if len(k) > 1:
        first[1:] = k[1:] != k[:-1]
    return first


def rank_in_group(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal keys of a sorted array."""
    first = group_starts(sorted_keys)
    idx = np.arange(len(first))
    start = np.maximum.accumulate(np.where(first, idx, 0))
    return idx - start


def local_index(counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(c)`` for every count ``c``."""
    counts = np.asarray(counts, dtype="int64")
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype="int64")
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.asarray(np.arange(total, dtype="int64") - starts)


def weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices drawn without replacement, proportional to ``weights``."""
    w = np.asarray(weights, dtype="float64")
    pos = np.flatnonzero(w > 0)
    k = min(k, len(pos))
    if k <= 0:
        return np.zeros(0, dtype="int64")
    keys = rng.exponential(size=len(pos)) / w[pos]  # Efraimidis-Spirakis, exponential form
    return np.sort(pos[np.argpartition(keys, k - 1)[:k]])


def categorical(rng: np.random.Generator, probs: np.ndarray, size: int | None = None) -> np.ndarray:
    """Draw category indices; ``probs`` is one row of probabilities or one row per draw."""
    p = np.asarray(probs, dtype="float64")
    if p.ndim == 1:
        n = int(size if size is not None else 1)
        cum = np.cumsum(p / p.sum())
        return np.asarray(np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(p) - 1))
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(p))[:, None]
    return np.asarray(np.minimum((u >= cum).sum(axis=1), p.shape[1] - 1))


def chain_match(
    rng: np.random.Generator,
    dep_group: np.ndarray,
    dep_day: np.ndarray,
    dep_place: np.ndarray,
    arr_group: np.ndarray,
    arr_day: np.ndarray,
    arr_place: np.ndarray,
    arr_wants: np.ndarray,
    max_gap: int,
    rounds: int = 3,
) -> np.ndarray:
    """Pair arrivals with earlier departures of the same group (people who move on).

    An arrival that ``wants`` a partner gets a departure of its group that ended at
    most ``max_gap`` days before it and at a different place; each departure is
    used once. Returns the departure index per arrival, or -1.
    """
    n_arr = len(arr_day)
    match = np.full(n_arr, -1, dtype="int64")
    if n_arr == 0 or len(dep_day) == 0:
        return match
    scale = np.int64(1 << 42)
    dep_key = dep_group.astype("int64") * scale + dep_day.astype("int64")
    order = np.argsort(dep_key, kind="stable")
    sorted_key = dep_key[order]
    used = np.zeros(len(dep_day), dtype=bool)
    want = np.flatnonzero(arr_wants)
    arr_key = arr_group[want].astype("int64") * scale + arr_day[want].astype("int64")
    hi = np.searchsorted(sorted_key, arr_key, side="right")
    lo = np.searchsorted(sorted_key, arr_key - max_gap, side="left")
    todo = np.flatnonzero(hi > lo)
    for _ in range(rounds):
        if len(todo) == 0:
            break
        span = hi[todo] - lo[todo]
        pick = order[lo[todo] + (rng.random(len(todo)) * span).astype("int64")]
        ok = ~used[pick] & (dep_place[pick] != arr_place[want[todo]])
        cand_arr, cand_dep = todo[ok], pick[ok]
        perm = rng.permutation(len(cand_dep))
        _, first = np.unique(cand_dep[perm], return_index=True)
        win = perm[first]
        match[want[cand_arr[win]]] = cand_dep[win]
        used[cand_dep[win]] = True
        done = np.zeros(len(todo), dtype=bool)
        done[np.flatnonzero(ok)[win]] = True
        todo = todo[~done]
    return match


def chain_roots(parent: np.ndarray) -> np.ndarray:
    """Root of every node of a forest given as parent pointers (-1 at roots)."""
    root = np.where(parent >= 0, parent, np.arange(len(parent)))
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt


def occupancy_integral(
    place: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    weight: np.ndarray,
    q_place: np.ndarray,
    q_from: np.ndarray,
    q_to: np.ndarray,
) -> np.ndarray:
    """Weighted person-days present at ``q_place`` between ``q_from`` and ``q_to``.

    Each interval ``[start, end)`` at ``place`` contributes ``weight`` per day.
    """
    if len(q_place) == 0:
        return np.zeros(0)
    if len(place) == 0:
        return np.zeros(len(q_place))
    scale = np.int64(1 << 42)
    ev_place = np.concatenate([place, place]).astype("int64")
    ev_day = np.concatenate([start, np.minimum(end, OPEN - 1)]).astype("int64")
    ev_w = np.concatenate([weight, -weight]).astype("float64")
    key = ev_place * scale + ev_day
    order = np.argsort(key, kind="stable")
    key, ev_day, ev_w, ev_place = key[order], ev_day[order], ev_w[order], ev_place[order]
    level = np.cumsum(ev_w)  # occupancy right after each event (resets per place below)
    first = group_starts(ev_place)
    level_before_group = np.where(first, level - ev_w, 0.0)
    base = np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))
    level = level - level_before_group[base]
    # integral up to each event: sum of level(prev) * (day - prev day) within the place
    gap = np.zeros(len(ev_day), dtype="float64")
    gap[1:] = (ev_day[1:] - ev_day[:-1]) * level[:-1]
    gap[first] = 0.0
    cum = np.cumsum(gap)
    cum = cum - cum[base]

    def integral(qp: np.ndarray, qd: np.ndarray) -> np.ndarray:
        qk = qp.astype("int64") * scale + qd.astype("int64")
        i = np.searchsorted(key, qk, side="right") - 1
        valid = i >= 0
        i = np.maximum(i, 0)
        same = valid & (ev_place[i] == qp)
        val = cum[i] + level[i] * (qd - ev_day[i])
        return np.where(same, val, 0.0)

    return np.asarray(integral(q_place, q_to) - integral(q_place, q_from))
