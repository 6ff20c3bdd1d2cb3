"""People: households and their registrations (BRP), and who actually lives where.

Every dwelling has a sequence of tenancies (one household after another, with
short vacancies). Some new households are households that moved within the
municipality (a *chain* of tenancies), and some are young adults who left their
parents' household, so person ids recur at several addresses. Households grow
by births and shrink as partners, children and room-mates leave.

The planted mechanisms add people: phantom registrations (address fraud),
tenants of rented-out rooms, extra families (overcrowding) and agency workers
moved between one landlord's dwellings (exploitation); many of them never
register. What people *use* (water, energy) follows who actually lives there
(the presence intervals of :class:`People`); what the register *shows* follows the
registrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_ml.sources.contract import BIRTH_COUNTRY_GROUPS, GENDERS
from stratum_ml.synthetic._util import (
    OPEN,
    categorical,
    chain_match,
    chain_roots,
    day,
    group_starts,
    local_index,
    year_of,
    year_start,
)
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes, Operations
from stratum_ml.synthetic.world import (
    CROWD,
    EXPLOIT,
    FRAUD,
    OWNER_OCC,
    PRIVATE,
    ROOM,
    SOCIAL,
    UNKNOWN_TENURE,
    World,
)

YEAR = 365.25
MEAN_TENANCY = {
    OWNER_OCC: 14 * YEAR,
    SOCIAL: 11 * YEAR,
    PRIVATE: 4.5 * YEAR,
    UNKNOWN_TENURE: 7 * YEAR,
}
MEAN_VACANCY = {OWNER_OCC: 50.0, SOCIAL: 40.0, PRIVATE: 30.0, UNKNOWN_TENURE: 45.0}
ROOMMATES = {OWNER_OCC: 0.03, SOCIAL: 0.03, PRIVATE: 0.25, UNKNOWN_TENURE: 0.2}
MOVE_WITHIN = 0.4  # share of new households that moved from elsewhere in the municipality
HEAD, PARTNER, CHILD, ROOMMATE, NEWBORN = range(5)
FEMALE, MALE, OTHER_GENDER, UNKNOWN_GENDER = range(len(GENDERS))
NL, EUROPE, OUTSIDE, UNKNOWN_COUNTRY = range(len(BIRTH_COUNTRY_GROUPS))


@dataclass
class People:
    """Registrations, the persons in them, who is present for usage, and the tenancies."""

    reg_person: np.ndarray
    reg_addr: np.ndarray
    reg_from: np.ndarray
    reg_until: np.ndarray  # OPEN while registered
    person: np.ndarray  # unique person codes that appear in the registrations
    birth_year: np.ndarray
    surname: np.ndarray
    gender: np.ndarray
    country: np.ndarray
    occ_addr: np.ndarray  # presence intervals that drive water and energy use
    occ_from: np.ndarray
    occ_to: np.ndarray
    occ_weight: np.ndarray
    ten_addr: np.ndarray  # regular households (tenancies)
    ten_start: np.ndarray
    ten_end: np.ndarray


class _Ids:
    """Local counters for person and surname codes of one chunk."""

    def __init__(self, chunk: int) -> None:
        self.base = np.int64(chunk) << np.int64(32)
        self.persons = 0
        self.surnames = 0

    def person(self, k: int) -> np.ndarray:
        out = self.base + self.persons + np.arange(k, dtype="int64")
        self.persons += k
        return out

    def surname(self, k: int) -> np.ndarray:
        out = self.base + self.surnames + np.arange(k, dtype="int64")
        self.surnames += k
        return out


def _gender(rng: np.random.Generator, p_male: np.ndarray | float, k: int) -> np.ndarray:
    pm = np.broadcast_to(np.asarray(p_male, dtype="float64"), (k,))
    g = np.where(rng.random(k) < pm, MALE, FEMALE)
    u = rng.random(k)
    return np.where(u < 0.002, OTHER_GENDER, np.where(u < 0.007, UNKNOWN_GENDER, g))


def _country(rng: np.random.Generator, mix: np.ndarray) -> np.ndarray:
    return categorical(rng, mix) if len(mix) else np.zeros(0, dtype="int64")


def _in_day_of_year(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    return year_start(years) + rng.integers(0, 365, len(years))


def simulate_people(
    cfg: GeneratorConfig, w: World, ep: Episodes, ops: Operations, rng: np.random.Generator
) -> People:
    """Households, moves, births and the mechanisms' people, as registrations and presence."""
    ids = _Ids(w.spec.index)
    t_addr, t_start, t_end = _tenancies(cfg, w, ep, rng)
    reg, persons, occ = _households(cfg, w, ep, rng, ids, t_addr, t_start, t_end)
    m_reg, m_persons, m_occ = _mechanism_people(cfg, w, ep, ops, rng, ids)

    regs = [np.concatenate([a, b]).astype("int64") for a, b in zip(reg, m_reg, strict=True)]
    allp = [np.concatenate([a, b]).astype("int64") for a, b in zip(persons, m_persons, strict=True)]
    occs = [np.concatenate([a, b]) for a, b in zip(occ, m_occ, strict=True)]
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    r_person, r_addr, r_from, r_until = regs
    keep = (r_until >= t0) & (r_from < t1) & (r_until > r_from)
    r_person, r_addr, r_from, r_until = (a[keep] for a in regs)
    r_until = np.where(r_until >= t1, OPEN, r_until)
    order = np.lexsort((r_person, r_from, r_addr))
    p_code, first = np.unique(allp[0], return_index=True)
    present = np.isin(p_code, r_person)
    first = first[present]
    by, surname, gender, country = (a[first] for a in allp[1:])
    return People(
        reg_person=r_person[order],
        reg_addr=r_addr[order],
        reg_from=r_from[order],
        reg_until=r_until[order],
        person=p_code[present],
        birth_year=by,
        surname=surname,
        gender=gender,
        country=country,
        occ_addr=occs[0],
        occ_from=occs[1],
        occ_to=occs[2],
        occ_weight=occs[3],
        ten_addr=t_addr,
        ten_start=t_start,
        ten_end=t_end,
    )


# ---------------------------------------------------------------------------- tenancies


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


# ---------------------------------------------------------------------------- households


def _households(
    cfg: GeneratorConfig,
    w: World,
    ep: Episodes,
    rng: np.random.Generator,
    ids: _Ids,
    t_addr: np.ndarray,
    t_start: np.ndarray,
    t_end: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    n_t = len(t_addr)
    # households that moved here from elsewhere in the municipality continue a chain
    wants = (t_start >= t0) & (rng.random(n_t) < MOVE_WITHIN)
    zeros = np.zeros(n_t, dtype="int64")
    parent = chain_match(rng, zeros, t_end, t_addr, zeros, t_start, t_addr, wants, max_gap=45)
    root = chain_roots(parent)
    order = np.lexsort((t_start, root))
    first_in_chain = group_starts(root[order])
    chain_first = np.full(n_t, -1, dtype="int64")
    chain_first[root[order][first_in_chain]] = np.flatnonzero(first_in_chain)
    chain_len = np.bincount(root, minlength=n_t)
    chain_end = np.full(n_t, -1, dtype="int64")
    np.maximum.at(chain_end, root, np.minimum(t_end, t1))

    roots = np.flatnonzero(parent < 0)
    R = len(roots)
    r_addr, r_start = t_addr[roots], t_start[roots]
    r_year = year_of(r_start)
    nbh = w.nbh[r_addr]
    tenure = w.tenure[r_addr]
    assert w.shared is not None
    shared = w.shared[r_addr]
    lam = np.maximum(0.1, (w.floor_area[r_addr] - 28) / 40) * w.nbh_family[nbh]
    lam = np.where(shared, w.floor_area[r_addr] / 30, lam)
    size = np.minimum(1 + rng.poisson(np.minimum(lam, 6)), 8)
    p_room = np.select([tenure == t for t in ROOMMATES], list(ROOMMATES.values()))
    p_room = np.where(shared, 0.85, p_room)
    roommates = (size >= 2) & (rng.random(R) < p_room)
    partner = ~roommates & (size >= 2) & (rng.random(R) < 0.78)
    kids = np.where(roommates, 0, size - 1 - partner)
    head_age = np.select(
        [kids > 0, roommates, partner],
        [rng.uniform(24, 48, R), rng.uniform(19, 30, R), 20 + 60 * rng.beta(1.2, 1.8, R)],
        19 + 70 * rng.beta(1.1, 1.6, R),
    )
    head_by = np.maximum(r_year - np.round(head_age).astype("int64"), 1905)
    mix = w.nbh_residents[nbh]

    # members of each root household
    n_extra = size - 1
    m_root = np.concatenate([np.arange(R), np.repeat(np.arange(R), n_extra)])
    k_extra = local_index(n_extra)
    rr = np.repeat(np.arange(R), n_extra)
    e_type = np.where(
        roommates[rr], ROOMMATE, np.where(partner[rr] & (k_extra == 0), PARTNER, CHILD)
    )
    m_type = np.concatenate([np.full(R, HEAD), e_type])
    M = len(m_root)
    start_m = r_start[m_root]
    hb = head_by[m_root]
    kid_age = rng.uniform(0, 1, M) * np.clip(r_year[m_root] - hb - 20, 0, 17)
    by = np.select(
        [m_type == HEAD, m_type == PARTNER, m_type == CHILD],
        [
            hb,
            hb + np.round(rng.normal(0, 3, M)).astype("int64"),
            r_year[m_root] - np.round(kid_age).astype("int64"),
        ],
        r_year[m_root] - rng.integers(19, 31, M),
    )
    by = np.clip(by, 1905, cfg.extract_date.year)
    leave = np.select(
        [m_type == HEAD, m_type == PARTNER, m_type == CHILD],
        [
            np.full(M, OPEN),
            start_m + rng.exponential(30 * YEAR, M).astype("int64"),
            _in_day_of_year(rng, by) + (rng.uniform(18, 27, M) * YEAR).astype("int64"),
        ],
        start_m
        + rng.gamma(1.2, np.where(shared[m_root], 0.7, 2.5) * YEAR / 1.2, M).astype("int64"),
    )
    leave = np.maximum(leave, start_m + 30)
    # nobody lives for ever: a death ends the stay (and can leave a dwelling empty)
    death = _in_day_of_year(rng, by) + (np.clip(rng.normal(84, 8, M), 60, 104) * YEAR).astype(
        "int64"
    )
    death = np.maximum(death, start_m + 30)
    moved_out = leave < death
    leave = np.minimum(leave, death)
    join = start_m.copy()
    person = ids.person(M)
    head_surname = ids.surname(R)
    own = ids.surname(M)
    surname = np.select(
        [
            m_type == HEAD,
            (m_type == PARTNER) & (rng.random(M) < 0.2),
            (m_type == CHILD) & (rng.random(M) < 0.85),
        ],
        [head_surname[m_root], head_surname[m_root], head_surname[m_root]],
        own,
    )
    head_gender = _gender(rng, 0.5, R)
    gender = np.where(
        m_type == PARTNER,
        _gender(rng, np.where(head_gender[m_root] == MALE, 0.05, 0.95), M),
        _gender(rng, 0.5, M),
    )
    gender[m_type == HEAD] = head_gender
    head_country = _country(rng, mix)
    country = np.select(
        [
            m_type == HEAD,
            (m_type == PARTNER) & (rng.random(M) < 0.8),
            (m_type == CHILD) & (rng.random(M) < 0.6),
        ],
        [head_country[m_root], head_country[m_root], head_country[m_root]],
        np.where(m_type == CHILD, NL, _country(rng, mix[m_root])),
    )

    # young adults who left home and started a household of their own elsewhere here
    leaver = (
        (m_type != HEAD)
        & moved_out
        & (leave >= t0)
        & (leave < chain_end[roots][m_root])
        & (year_of(np.minimum(leave, t1)) - by >= 18)
    )
    single_root = (size == 1) & (r_start >= t0) & (rng.random(R) < 0.55)
    lv = np.flatnonzero(leaver)
    match = chain_match(
        rng,
        np.zeros(len(lv), dtype="int64"),
        leave[lv],
        r_addr[m_root[lv]],
        np.zeros(R, dtype="int64"),
        r_start,
        r_addr,
        single_root,
        max_gap=90,
    )
    got = np.flatnonzero(match >= 0)
    src = lv[match[got]]  # member rows of the leavers; ``got`` are root numbers (= head rows)
    person[got] = person[src]
    by[got] = by[src]
    surname[got] = surname[src]
    gender[got] = gender[src]
    country[got] = country[src]
    head_by = by[:R]

    # births while the chain lasts
    has_partner = partner
    fert_lo = np.maximum(year_start(head_by + 22), r_start)
    fert_hi = np.minimum(year_start(head_by + 42), chain_end[roots])
    span = np.maximum(fert_hi - fert_lo, 0)
    n_births = np.minimum(rng.poisson(np.where(has_partner, 0.09, 0.015) * span / YEAR), 4)
    b_root = np.repeat(np.arange(R), n_births)
    B = len(b_root)
    b_day = fert_lo[b_root] + (rng.random(B) * span[b_root]).astype("int64")
    b_year = year_of(b_day)
    partner_row = np.full(R, -1, dtype="int64")
    prow = np.flatnonzero(m_type == PARTNER)
    partner_row[m_root[prow]] = prow
    b_surname = np.where(
        (partner_row[b_root] >= 0) & (rng.random(B) < 0.1),
        surname[np.maximum(partner_row[b_root], 0)],
        surname[b_root],
    )
    m_root = np.concatenate([m_root, b_root])
    m_type = np.concatenate([m_type, np.full(B, NEWBORN)])
    person = np.concatenate([person, ids.person(B)])
    by = np.concatenate([by, b_year])
    surname = np.concatenate([surname, b_surname])
    gender = np.concatenate([gender, _gender(rng, 0.51, B)])
    country = np.concatenate([country, np.where(rng.random(B) < 0.98, NL, UNKNOWN_COUNTRY)])
    join = np.concatenate([join, b_day])
    leave = np.concatenate([leave, b_day + (rng.uniform(18, 27, B) * YEAR).astype("int64")])

    # every member at every tenancy of the chain while present
    chain = roots[m_root]
    reps = chain_len[chain]
    m_rep = np.repeat(np.arange(len(m_root)), reps)
    t_idx = order[chain_first[chain][m_rep] + local_index(reps)]
    s_from = np.maximum(t_start[t_idx], join[m_rep])
    s_to = np.minimum(t_end[t_idx], leave[m_rep])
    ok = (s_from < s_to) & (s_from < t1) & (s_to >= t0)
    m_rep, t_idx, s_from, s_to = m_rep[ok], t_idx[ok], s_from[ok], s_to[ok]
    s_addr = t_addr[t_idx]
    s_person = person[m_rep]
    # people use water as a household: a habit factor per chain
    habit = rng.lognormal(-0.03, 0.28, R)
    u = rng.random(R)
    habit *= np.where(
        u < 0.03,
        rng.uniform(0.15, 0.45, R),  # mostly away (work, abroad)
        np.where(u > 0.98, rng.uniform(1.6, 2.5, R), 1.0),
    )  # garden, home salon
    habit = habit[m_root[m_rep]]
    weight = habit.copy()

    # absent households (address fraud, variant 1): registered here, living elsewhere
    ab = np.flatnonzero((ep.mech == FRAUD) & (ep.variant == 1))
    o_addr, o_from, o_to, o_w = [s_addr], [s_from], [s_to], [weight]
    if len(ab):
        at = np.flatnonzero(np.isin(s_addr, ep.addr[ab]))
        # episodes at one address do not overlap: join each stay with every episode there
        e_sorted = ab[np.argsort(ep.addr[ab], kind="stable")]
        lo = np.searchsorted(ep.addr[e_sorted], s_addr[at], side="left")
        hi = np.searchsorted(ep.addr[e_sorted], s_addr[at], side="right")
        cnt = hi - lo
        st = np.repeat(at, cnt)
        ee = e_sorted[np.repeat(lo, cnt) + local_index(cnt)]
        a_from = np.maximum(s_from[st], ep.start[ee])
        a_to = np.minimum(s_to[st], ep.end[ee])
        ok = a_from < a_to
        o_addr.append(s_addr[st][ok])
        o_from.append(a_from[ok])
        o_to.append(a_to[ok])
        o_w.append(-weight[st][ok])
    reg = [s_person, s_addr, s_from, s_to]
    persons = [person, by, surname, gender, country]
    occ = [
        np.concatenate(o_addr),
        np.concatenate(o_from),
        np.concatenate(o_to),
        np.concatenate(o_w),
    ]
    return reg, persons, occ


# ---------------------------------------------------------------------------- mechanisms


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
    ops: Operations,
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
