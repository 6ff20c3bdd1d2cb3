"""Reports (meldingen) and past visits (huisbezoeken), and what visits change.

Reports come from two processes: a background that has nothing to do with any
violation and is higher where people report more readily (which correlates
with the resident mix), and reports caused by running episodes. Visits follow
the policy of a real municipality: mostly a few weeks after a report,
neighbourhood projects, follow-up checks after a violation, and a small random
sample. Outcomes come from the planted truth on the visit day with imperfect
detection. A visit that finds a violation often ends the episode (address
fraud: the phantom registrations are ended within two months), so every later
fact about that address - registrations, water, reports, later visits - is
generated from the shortened episode. The municipality often files a report of
its own a few days after a visit: a feature that looks past the visit date sees
the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_ml.sources.contract import (
    INSPECTION_REASONS,
    OUTCOMES,
    REPORT_CATEGORIES,
    REPORT_SOURCES,
)
from stratum_ml.sources.contract import VIOLATION_TYPES as VT
from stratum_ml.synthetic._util import OPEN, categorical, day, to_workday, weighted_sample
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes
from stratum_ml.synthetic.world import CROWD, EXPLOIT, FRAUD, PRIVATE, ROOM, SOCIAL, World

RC = {c: i for i, c in enumerate(REPORT_CATEGORIES)}
RS = {s: i for i, s in enumerate(REPORT_SOURCES)}
REASON = {r: i for i, r in enumerate(INSPECTION_REASONS)}
VIOLATION, NO_VIOLATION, INCONCLUSIVE = (OUTCOMES.index(o) for o in OUTCOMES)


def _probs(spec: dict[str, float], domain: dict[str, int]) -> np.ndarray:
    p = np.zeros(len(domain))
    for k, v in spec.items():
        p[domain[k]] = v
    return np.asarray(p / p.sum())


BACKGROUND_CATEGORIES = _probs(
    {
        "nuisance": 0.40,
        "pollution": 0.22,
        "other": 0.15,
        "subletting": 0.08,
        "overcrowding": 0.07,
        "address_fraud": 0.06,
        "exploitation": 0.02,
    },
    RC,
)
SPECIFIC = np.isin(
    np.arange(len(RC)), [RC[c] for c in ("subletting", "overcrowding", "address_fraud")]
)
BACKGROUND_SOURCES = _probs(
    {
        "resident": 0.55,
        "anonymous": 0.20,
        "police": 0.07,
        "housing_association": 0.10,
        "municipality": 0.08,
    },
    RS,
)
# per mechanism: reports per episode-year, category mix, source mix
MECHANISM_REPORTS: dict[int, tuple[float, np.ndarray, np.ndarray]] = {
    FRAUD: (
        0.35,
        _probs({"address_fraud": 0.55, "other": 0.2, "subletting": 0.1, "nuisance": 0.15}, RC),
        _probs(
            {
                "anonymous": 0.3,
                "municipality": 0.25,
                "housing_association": 0.2,
                "resident": 0.2,
                "police": 0.05,
            },
            RS,
        ),
    ),
    ROOM: (
        0.75,
        _probs(
            {
                "subletting": 0.35,
                "nuisance": 0.35,
                "overcrowding": 0.15,
                "pollution": 0.1,
                "other": 0.05,
            },
            RC,
        ),
        _probs(
            {
                "resident": 0.6,
                "anonymous": 0.25,
                "police": 0.05,
                "housing_association": 0.05,
                "municipality": 0.05,
            },
            RS,
        ),
    ),
    CROWD: (
        0.65,
        _probs(
            {
                "overcrowding": 0.45,
                "nuisance": 0.3,
                "pollution": 0.1,
                "subletting": 0.1,
                "other": 0.05,
            },
            RC,
        ),
        _probs(
            {
                "resident": 0.55,
                "anonymous": 0.25,
                "police": 0.05,
                "housing_association": 0.1,
                "municipality": 0.05,
            },
            RS,
        ),
    ),
    EXPLOIT: (
        0.9,
        _probs(
            {
                "exploitation": 0.2,
                "overcrowding": 0.35,
                "nuisance": 0.3,
                "pollution": 0.1,
                "other": 0.05,
            },
            RC,
        ),
        _probs({"police": 0.2, "resident": 0.5, "anonymous": 0.25, "municipality": 0.05}, RS),
    ),
}
# how likely a report leads to a visit, by category and by source
VISIT_WEIGHT_CATEGORY = np.array(
    [
        {
            "overcrowding": 0.5,
            "nuisance": 0.12,
            "pollution": 0.03,
            "subletting": 0.5,
            "address_fraud": 0.45,
            "exploitation": 0.6,
            "other": 0.06,
        }[c]
        for c in REPORT_CATEGORIES
    ]
)
VISIT_WEIGHT_SOURCE = np.array(
    [
        {
            "resident": 1.0,
            "police": 1.5,
            "housing_association": 1.4,
            "municipality": 1.3,
            "anonymous": 0.8,
        }[s]
        for s in REPORT_SOURCES
    ]
)
# violation type recorded when the mechanism is found: (types, probabilities)
FOUND_AS = {
    FRAUD: ([VT.index("address_fraud"), VT.index("other")], [0.95, 0.05]),
    ROOM: ([VT.index("illegal_room_rental"), VT.index("illegal_subletting")], [0.7, 0.3]),
    CROWD: ([VT.index("overcrowding"), VT.index("illegal_room_rental")], [0.9, 0.1]),
    EXPLOIT: ([VT.index("exploitation"), VT.index("overcrowding")], [0.75, 0.25]),
}
FALSE_AS = (
    [VT.index(v) for v in ("illegal_subletting", "address_fraud", "overcrowding", "other")],
    [0.3, 0.3, 0.15, 0.25],
)
# category of the municipality's own report after a visit, by violation type
AFTER_VISIT_CATEGORY = np.array(
    [
        RC[
            {
                "address_fraud": "address_fraud",
                "illegal_subletting": "subletting",
                "overcrowding": "overcrowding",
                "illegal_room_rental": "subletting",
                "exploitation": "exploitation",
                "other": "other",
            }[v]
        ]
        for v in VT
    ]
)


@dataclass
class Reports:
    """Meldingen of one chunk."""

    addr: np.ndarray
    day: np.ndarray
    second: np.ndarray  # seconds after midnight
    category: np.ndarray
    source: np.ndarray
    episode: np.ndarray  # causing episode; -1 background, -2 filed after a visit

    def take(self, idx: np.ndarray) -> Reports:
        return Reports(
            *(
                getattr(self, f)[idx]
                for f in ("addr", "day", "second", "category", "source", "episode")
            )
        )

    @staticmethod
    def concat(parts: list[Reports]) -> Reports:
        return Reports(
            *(
                np.concatenate([getattr(p, f) for p in parts]).astype("int64")
                for f in ("addr", "day", "second", "category", "source", "episode")
            )
        )


@dataclass
class Visits:
    """Huisbezoeken of one chunk."""

    addr: np.ndarray
    day: np.ndarray
    reason: np.ndarray
    outcome: np.ndarray
    violation_type: np.ndarray  # -1 when none


def _times(rng: np.random.Generator, source: np.ndarray) -> np.ndarray:
    office = np.isin(source, [RS["municipality"], RS["housing_association"]])
    evening = 7 * 3600 + rng.integers(0, 16 * 3600, len(source))
    work = 8 * 3600 + 30 * 60 + rng.integers(0, 8 * 3600 + 30 * 60, len(source))
    return np.where(office, work, evening)


def _sources(rng: np.random.Generator, probs: np.ndarray, social: np.ndarray) -> np.ndarray:
    src = categorical(rng, probs, len(social))
    return np.where((src == RS["housing_association"]) & ~social, RS["resident"], src)


def background_reports(cfg: GeneratorConfig, w: World, rng: np.random.Generator) -> Reports:
    """Reports not caused by any violation: nuisance, litter, and suspicion that is wrong."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    lo = np.maximum(t0, w.exists_from)
    years = (t1 - lo) / 365.25
    rate = cfg.background_report_rate * w.nbh_reporting[w.nbh] * np.where(w.residential, 1.0, 0.3)
    k = rng.poisson(rate * years)
    addr = np.repeat(np.arange(w.n), k)
    d = lo[addr] + (rng.random(len(addr)) * (t1 - lo[addr])).astype("int64")
    # where people report readily, more reports voice suspicions of a specific violation
    out_share = w.nbh_residents[w.nbh[addr], 2]
    p = np.broadcast_to(BACKGROUND_CATEGORIES, (len(addr), len(RC))).copy()
    p[:, SPECIFIC] *= (1 + 2.0 * out_share)[:, None]
    cat = categorical(rng, p) if len(addr) else np.zeros(0, dtype="int64")
    src = _sources(rng, BACKGROUND_SOURCES, w.tenure[addr] == SOCIAL)
    return Reports(addr, d, _times(rng, src), cat, src, np.full(len(addr), -1))


def mechanism_reports(
    cfg: GeneratorConfig, w: World, ep: Episodes, rng: np.random.Generator
) -> Reports:
    """Reports caused by running episodes (neighbours notice; the police come across it)."""
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    parts = []
    for m, (rate, cat_p, src_p) in MECHANISM_REPORTS.items():
        idx = np.flatnonzero(ep.mech == m)
        lo = np.maximum(ep.start[idx], t0)
        hi = np.minimum(ep.end[idx], t1)
        ok = hi > lo
        idx, lo, hi = idx[ok], lo[ok], hi[ok]
        prop = np.sqrt(w.nbh_reporting[w.nbh[ep.addr[idx]]])
        k = rng.poisson(rate * cfg.mechanism_report_rate * prop * (hi - lo) / 365.25)
        e = np.repeat(idx, k)
        lo_r, hi_r = np.repeat(lo, k), np.repeat(hi, k)
        d = lo_r + (rng.random(len(e)) * (hi_r - lo_r)).astype("int64")
        cat = categorical(rng, cat_p, len(e))
        src = _sources(rng, src_p, w.tenure[ep.addr[e]] == SOCIAL)
        parts.append(Reports(ep.addr[e], d, _times(rng, src), cat, src, e))
    return Reports.concat(parts)


def _active_episode(ep: Episodes, addr: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Index of the episode running at (addr, day), or -1 (episodes sorted by address, start)."""
    if len(ep) == 0:
        return np.full(len(addr), -1)
    scale = np.int64(1 << 42)
    key = ep.addr * scale + ep.start
    i = np.searchsorted(key, addr * scale + d, side="right") - 1
    ii = np.maximum(i, 0)
    hit = (i >= 0) & (ep.addr[ii] == addr) & (d < ep.end[ii])
    return np.where(hit, ii, -1)


def enforce(
    cfg: GeneratorConfig, w: World, ep: Episodes, rng: np.random.Generator
) -> tuple[Visits, Reports]:
    """Draw the reports and past visits; shorten the episodes that visits ended (in place)."""
    t1 = day(cfg.extract_date)
    vs = t1 - round(cfg.visit_years * 365.25)
    reports = Reports.concat([background_reports(cfg, w, rng), mechanism_reports(cfg, w, ep, rng)])
    res = np.flatnonzero(w.residential)
    n_total = round(cfg.visit_rate * w.n)
    n_rand = round(n_total * cfg.random_sample_share)
    n_proj = round(n_total * cfg.project_share)
    n_rep = n_total - n_rand - n_proj

    addr_l, day_l, reason_l, trig_l = [], [], [], []
    # random sample: uniform over dwellings that exist at the visit date
    if n_rand and len(res):
        a = rng.choice(res, size=n_rand, replace=n_rand > len(res))
        lo = np.maximum(vs, w.exists_from[a] + 30)
        d = lo + (rng.random(n_rand) * (t1 - lo)).astype("int64")
        addr_l.append(a)
        day_l.append(d)
        reason_l.append(np.full(n_rand, REASON["random_sample"]))
        trig_l.append(np.full(n_rand, -1))
    # projects: a sweep through a neighbourhood where reports pile up
    if n_proj and len(res):
        a, d = _projects(w, rng, n_proj, vs, t1)
        addr_l.append(a)
        day_l.append(d)
        reason_l.append(np.full(len(a), REASON["project"]))
        trig_l.append(np.full(len(a), -1))
    # after a report, a few weeks later
    if n_rep:
        cand = np.flatnonzero(
            w.residential[reports.addr] & (reports.day >= vs - 40) & (reports.day < t1 - 5)
        )
        weight = (
            VISIT_WEIGHT_CATEGORY[reports.category[cand]]
            * VISIT_WEIGHT_SOURCE[reports.source[cand]]
        )
        pick = cand[weighted_sample(rng, weight, round(n_rep * 1.15))]
        d = reports.day[pick] + 3 + np.round(rng.gamma(2.0, 10.0, len(pick))).astype("int64")
        ok = (d >= vs) & (d < t1)
        pick, d = pick[ok], d[ok]
        order = np.lexsort((d, reports.addr[pick]))
        pick, d = pick[order], d[order]
        a = reports.addr[pick]
        dup = np.zeros(len(pick), dtype=bool)
        dup[1:] = (a[1:] == a[:-1]) & (d[1:] - d[:-1] < 90)
        pick, d = pick[~dup], d[~dup]
        if len(pick) > n_rep:
            keep = np.sort(rng.choice(len(pick), size=n_rep, replace=False))
            pick, d = pick[keep], d[keep]
        addr_l.append(reports.addr[pick])
        day_l.append(d)
        reason_l.append(np.full(len(pick), REASON["report"]))
        trig_l.append(pick)

    if addr_l:
        v_addr = np.concatenate(addr_l).astype("int64")
        v_day = to_workday(np.concatenate(day_l).astype("int64"), t1)
        v_reason = np.concatenate(reason_l).astype("int64")
        v_trig = np.concatenate(trig_l).astype("int64")
    else:
        v_addr = v_day = v_reason = v_trig = np.zeros(0, dtype="int64")
    visits = _run_visits(cfg, ep, reports, rng, v_addr, v_day, v_reason, v_trig)

    # reports of an episode after it ended never happened
    caused = np.flatnonzero(reports.episode >= 0)
    gone = np.zeros(len(reports.addr), dtype=bool)
    gone[caused] = reports.day[caused] >= ep.end[reports.episode[caused]]
    reports = reports.take(np.flatnonzero(~gone))
    # the municipality files its own report a few days after many visits
    p_after = np.select(
        [visits.outcome == VIOLATION, visits.outcome == NO_VIOLATION], [0.85, 0.35], 0.2
    )
    after = np.flatnonzero(rng.random(len(visits.addr)) < p_after)
    d = visits.day[after] + 1 + rng.integers(0, 10, len(after))
    after, d = after[d < t1], d[d < t1]
    vt = visits.violation_type[after]
    cat = np.where(vt >= 0, AFTER_VISIT_CATEGORY[np.maximum(vt, 0)], RC["other"])
    src = np.full(len(after), RS["municipality"])
    post = Reports(visits.addr[after], d, _times(rng, src), cat, src, np.full(len(after), -2))
    return visits, Reports.concat([reports, post])


def _projects(
    w: World, rng: np.random.Generator, n_proj: int, vs: int, t1: int
) -> tuple[np.ndarray, np.ndarray]:
    res = w.residential
    n_nbh = len(w.nbh_code)
    dwellings = np.bincount(w.nbh[res], minlength=n_nbh)
    private = np.bincount(w.nbh[res & (w.tenure == PRIVATE)], minlength=n_nbh)
    weight = w.nbh_reporting * (1 + 2 * private / np.maximum(dwellings, 1)) * (dwellings >= 20)
    if weight.sum() <= 0:
        weight = dwellings.astype("float64")
    n_sweeps = max(1, round(n_proj / 60))
    sizes = rng.multinomial(n_proj, np.full(n_sweeps, 1 / n_sweeps))
    nbhs = rng.choice(n_nbh, size=n_sweeps, p=weight / weight.sum())
    begin = vs + (rng.random(n_sweeps) * max(t1 - 60 - vs, 1)).astype("int64")
    addr_l, day_l = [], []
    order = np.argsort(w.nbh, kind="stable")
    bounds = np.searchsorted(w.nbh[order], np.arange(n_nbh + 1))
    for nb, size, b in zip(nbhs, sizes, begin, strict=True):
        units = order[bounds[nb] : bounds[nb + 1]]
        units = units[res[units] & (w.exists_from[units] < b)]
        if len(units) == 0:
            continue
        uw = np.where(w.tenure[units] == PRIVATE, 2.0, 1.0)
        a = units[weighted_sample(rng, uw, int(size))]
        addr_l.append(a)
        day_l.append(b + rng.integers(0, 45, len(a)))
    if not addr_l:
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    return np.concatenate(addr_l), np.concatenate(day_l)


def _run_visits(
    cfg: GeneratorConfig,
    ep: Episodes,
    reports: Reports,
    rng: np.random.Generator,
    v_addr: np.ndarray,
    v_day: np.ndarray,
    v_reason: np.ndarray,
    v_trig: np.ndarray,
) -> Visits:
    """Carry out the visits in date order per address; a found violation may end its episode."""
    t1 = day(cfg.extract_date)
    n = len(v_addr)
    outcome = np.full(n, -1, dtype="int64")
    vtype = np.full(n, -1, dtype="int64")
    state = np.zeros(n, dtype="int64")  # 0 pending, 1 done, 2 dropped
    while True:
        pend = np.flatnonzero(state == 0)
        if len(pend) == 0:
            break
        pend = pend[np.lexsort((v_day[pend], v_addr[pend]))]
        first = np.ones(len(pend), dtype=bool)
        first[1:] = v_addr[pend[1:]] != v_addr[pend[:-1]]
        cur = pend[first]
        # a report-driven visit whose report was never made (its episode had already ended)
        void = np.zeros(len(cur), dtype=bool)
        has = np.flatnonzero(v_trig[cur] >= 0)
        trig = v_trig[cur][has]
        trig_ep = reports.episode[trig]
        caused = trig_ep >= 0
        void[has[caused]] = reports.day[trig[caused]] >= ep.end[trig_ep[caused]]
        state[cur[void]] = 2
        cur = cur[~void]
        e = _active_episode(ep, v_addr[cur], v_day[cur])
        truth = e >= 0
        u = rng.random((len(cur), 4))
        inconclusive = u[:, 0] < cfg.inconclusive_rate
        found = ~inconclusive & truth & (u[:, 1] < cfg.detection_rate)
        false = ~inconclusive & ~truth & (u[:, 1] < cfg.false_positive_rate)
        outcome[cur] = np.select(
            [inconclusive, found | false], [INCONCLUSIVE, VIOLATION], NO_VIOLATION
        )
        mech = ep.mech[np.maximum(e, 0)] if len(ep) else np.zeros(len(cur), dtype="int64")
        vt = np.full(len(cur), -1, dtype="int64")
        for m, (types, probs) in FOUND_AS.items():
            sel = found & (mech == m)
            vt[sel] = np.array(types)[categorical(rng, np.array(probs), int(sel.sum()))]
        vt[false] = np.array(FALSE_AS[0])[categorical(rng, np.array(FALSE_AS[1]), int(false.sum()))]
        vtype[cur] = vt
        # what the finding changes
        fe = e[found]
        fd = v_day[cur][found]
        fm = ep.mech[fe]
        k = len(fe)
        delay = np.select(
            [fm == FRAUD, (fm == ROOM) | (fm == CROWD), fm == EXPLOIT],
            [
                1 + rng.integers(0, 61, k),
                14 + np.round(rng.gamma(2.0, 35.0, k)).astype("int64"),
                30 + rng.integers(0, 91, k),
            ],
        )
        ends = (
            np.select([fm == FRAUD, (fm == ROOM) | (fm == CROWD), fm == EXPLOIT], [1.0, 0.75, 0.65])
            > u[found][:, 2]
        )
        new_end = fd + delay
        new_end = np.where(new_end >= t1, OPEN, new_end)
        cut = ends & (new_end < ep.end[fe])
        ep.end[fe[cut]] = new_end[cut]
        ep.cause[fe[cut]] = 1
        state[cur] = 1
        # a follow-up check some months after a violation
        again = (outcome[cur] == VIOLATION) & (u[:, 3] < cfg.follow_up_probability)
        fa = cur[again]
        fday = to_workday(v_day[fa] + rng.integers(60, 181, len(fa)), t1)
        ok = fday < t1
        fa, fday = fa[ok], fday[ok]
        if len(fa):
            v_addr = np.concatenate([v_addr, v_addr[fa]])
            v_day = np.concatenate([v_day, fday])
            v_reason = np.concatenate([v_reason, np.full(len(fa), REASON["other"])])
            v_trig = np.concatenate([v_trig, np.full(len(fa), -1)])
            outcome = np.concatenate([outcome, np.full(len(fa), -1)])
            vtype = np.concatenate([vtype, np.full(len(fa), -1)])
            state = np.concatenate([state, np.zeros(len(fa), dtype="int64")])
    done = np.flatnonzero(state == 1)
    done = done[np.lexsort((v_addr[done], v_day[done]))]
    return Visits(v_addr[done], v_day[done], v_reason[done], outcome[done], vtype[done])
