"""Households: members, moves within the municipality, births, and who is present."""

from __future__ import annotations

import numpy as np

from stratum_ml.synthetic._util import (
    OPEN,
    chain_match,
    chain_roots,
    day,
    group_starts,
    local_index,
    year_of,
    year_start,
)
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes
from stratum_ml.synthetic.population._common import (
    CHILD,
    HEAD,
    MALE,
    NEWBORN,
    NL,
    PARTNER,
    ROOMMATE,
    UNKNOWN_COUNTRY,
    YEAR,
    _country,
    _gender,
    _Ids,
    _in_day_of_year,
)
from stratum_ml.synthetic.world import FRAUD, OWNER_OCC, PRIVATE, SOCIAL, UNKNOWN_TENURE, World

ROOMMATES = {OWNER_OCC: 0.03, SOCIAL: 0.03, PRIVATE: 0.25, UNKNOWN_TENURE: 0.2}
MOVE_WITHIN = 0.4  # share of new households that moved from elsewhere in the municipality


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
