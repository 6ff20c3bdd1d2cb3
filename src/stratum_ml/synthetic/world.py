"""The built environment: chunks, neighbourhoods, buildings, addresses and their first owners.

A chunk is a run of whole neighbourhoods (and districts); everything that links
addresses (moves, landlords, projects) stays inside one chunk, so chunks are
generated independently and memory is bounded by ``chunk_size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stratum_ml.sources.contract import OWNER_TYPES, TENURES, USE_PURPOSES
from stratum_ml.synthetic._util import categorical, day, group_starts, local_index, year_start
from stratum_ml.synthetic.config import GeneratorConfig

# code of each category value: index into the contract's domain
WOON = USE_PURPOSES.index("woonfunctie")
OWNER_OCC, SOCIAL, PRIVATE, UNKNOWN_TENURE = (TENURES.index(t) for t in TENURES)
NATURAL, COMPANY, ASSOCIATION, MUNICIPALITY = (OWNER_TYPES.index(t) for t in OWNER_TYPES)
MECHANISMS = ("address_fraud", "illegal_room_rental", "overcrowding", "exploitation")
FRAUD, ROOM, CROWD, EXPLOIT = range(4)

#: high code bits of owners that span the whole municipality (associations, the municipality)
GLOBAL_OWNER = np.int64(0x7FFF) << np.int64(32)
N_ASSOCIATIONS = 4


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A kind of neighbourhood; each neighbourhood varies around its profile.

    Attributes
    ----------
    name : str
        The profile's name.
    weight : float
        Probability that a neighbourhood has this profile.
    tenure : tuple of float
        Mean shares of owner_occupied, social_rent and private_rent dwellings.
    area : float
        Mean dwelling floor area (m2).
    years : tuple of int
        Range of construction years of its buildings (first, last).
    non_residential : float
        Share of units that are not dwellings.
    apartments : float
        Share of dwellings in multi-unit buildings.
    block_size : float
        Mean units per multi-unit building.
    residents : tuple of float
        Mean shares of residents by birth country group: netherlands,
        europe_other, outside_europe, unknown.
    reporting : float
        How readily people here report (meldingsbereidheid).
    family : float
        Household size factor.
    mechanisms : tuple of float
        Relative prevalence of each mechanism, in the order of ``MECHANISMS``.
    """

    name: str
    weight: float
    tenure: tuple[float, float, float]
    area: float
    years: tuple[int, int]
    non_residential: float
    apartments: float
    block_size: float
    residents: tuple[float, float, float, float]
    reporting: float
    family: float
    mechanisms: tuple[float, float, float, float]


PROFILES: tuple[Profile, ...] = (
    Profile(
        name="old_centre",
        weight=0.12,
        tenure=(0.35, 0.25, 0.40),
        area=72,
        years=(1880, 1940),
        non_residential=0.22,
        apartments=0.65,
        block_size=4,
        residents=(0.62, 0.14, 0.20, 0.04),
        reporting=1.2,
        family=0.9,
        mechanisms=(1.0, 2.2, 1.1, 1.2),
    ),
    Profile(
        name="post_war_social",
        weight=0.22,
        tenure=(0.20, 0.66, 0.14),
        area=66,
        years=(1950, 1975),
        non_residential=0.05,
        apartments=0.85,
        block_size=18,
        residents=(0.42, 0.12, 0.43, 0.03),
        reporting=1.5,
        family=1.2,
        mechanisms=(1.4, 0.8, 1.5, 0.6),
    ),
    Profile(
        name="pre_war_private",
        weight=0.13,
        tenure=(0.30, 0.20, 0.50),
        area=62,
        years=(1905, 1940),
        non_residential=0.10,
        apartments=0.55,
        block_size=4,
        residents=(0.48, 0.22, 0.27, 0.03),
        reporting=1.3,
        family=1.1,
        mechanisms=(1.2, 2.2, 1.8, 2.5),
    ),
    Profile(
        name="suburban",
        weight=0.30,
        tenure=(0.74, 0.20, 0.06),
        area=118,
        years=(1970, 2002),
        non_residential=0.03,
        apartments=0.12,
        block_size=10,
        residents=(0.84, 0.06, 0.08, 0.02),
        reporting=0.6,
        family=1.0,
        mechanisms=(0.6, 0.3, 0.4, 0.2),
    ),
    Profile(
        name="new_build",
        weight=0.15,
        tenure=(0.55, 0.25, 0.20),
        area=96,
        years=(2004, 2025),
        non_residential=0.05,
        apartments=0.50,
        block_size=24,
        residents=(0.70, 0.10, 0.17, 0.03),
        reporting=0.7,
        family=0.95,
        mechanisms=(0.8, 0.6, 0.5, 0.5),
    ),
    Profile(
        name="business_park",
        weight=0.08,
        tenure=(0.30, 0.05, 0.65),
        area=82,
        years=(1960, 2015),
        non_residential=0.75,
        apartments=0.30,
        block_size=4,
        residents=(0.58, 0.26, 0.13, 0.03),
        reporting=0.8,
        family=0.9,
        mechanisms=(0.8, 1.5, 1.2, 3.0),
    ),
)

# non-residential use purposes: (use purpose, weight in mixed areas, weight on business parks)
_NONRES = (
    ("winkelfunctie", 0.36, 0.10),
    ("kantoorfunctie", 0.24, 0.30),
    ("industriefunctie", 0.12, 0.45),
    ("bijeenkomstfunctie", 0.09, 0.04),
    ("gezondheidszorgfunctie", 0.05, 0.01),
    ("onderwijsfunctie", 0.03, 0.01),
    ("sportfunctie", 0.03, 0.02),
    ("logiesfunctie", 0.03, 0.01),
    ("overige gebruiksfunctie", 0.05, 0.06),
    ("celfunctie", 0.002, 0.0),
)
NONRES_CODES = np.array([USE_PURPOSES.index(u) for u, _, _ in _NONRES])
_NONRES_P = np.array([[w for _, w, _ in _NONRES], [w for _, _, w in _NONRES]])
_LETTERS = np.array(
    [
        a + b
        for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        if a + b not in ("SA", "SD", "SS")
    ]
)


@dataclass(frozen=True)
class ChunkSpec:
    """Where one chunk sits in the municipality."""

    index: int
    addr_offset: int
    n_addresses: int
    nbh_offset: int
    n_nbh: int
    district_offset: int
    n_districts: int
    total_nbh: int


def plan_chunks(cfg: GeneratorConfig) -> list[ChunkSpec]:
    """Split the municipality into chunks of whole neighbourhoods and districts."""
    n_chunks = max(1, math.ceil(cfg.n_addresses / cfg.chunk_size))
    sizes = [
        cfg.n_addresses // n_chunks + (i < cfg.n_addresses % n_chunks) for i in range(n_chunks)
    ]
    n_nbh = [max(1, round(s / cfg.addresses_per_neighbourhood)) for s in sizes]
    n_dist = [math.ceil(n / cfg.neighbourhoods_per_district) for n in n_nbh]
    specs, a, b, d = [], 0, 0, 0
    for i, (s, nb, nd) in enumerate(zip(sizes, n_nbh, n_dist, strict=True)):
        specs.append(ChunkSpec(i, a, s, b, nb, d, nd, sum(n_nbh)))
        a, b, d = a + s, b + nb, d + nd
    return specs


@dataclass
class World:
    """Neighbourhoods and addresses of one chunk (arrays; codes index the contract domains)."""

    spec: ChunkSpec
    # neighbourhoods
    nbh_profile: np.ndarray
    nbh_residents: np.ndarray  # (n_nbh, 4) birth-country mix
    nbh_reporting: np.ndarray
    nbh_family: np.ndarray
    nbh_mechanisms: np.ndarray  # (n_nbh, 4)
    nbh_association: np.ndarray
    nbh_code: np.ndarray
    district_code: np.ndarray  # of each neighbourhood
    # addresses
    addr_global: np.ndarray
    nbh: np.ndarray
    building: np.ndarray  # global building number
    postcode: np.ndarray
    house_number: np.ndarray
    suffix: np.ndarray  # object, None when absent
    floor_area: np.ndarray
    use_purpose: np.ndarray
    construction_year: np.ndarray
    tenure: np.ndarray
    x_rd: np.ndarray
    y_rd: np.ndarray
    exists_from: np.ndarray  # day the unit was completed (long ago for old stock)
    # ownership at the start of the history
    owner: np.ndarray  # owner code, -1 for owner-occupiers (an owner per household)
    owner_type: np.ndarray
    owner_from: np.ndarray
    portfolio: np.ndarray  # dwellings of the owner in this chunk
    next_owner: int = 0  # first unused local owner number
    #: legal shared housing (rooms let with a permit): high turnover, many surnames, no violation
    shared: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.addr_global)

    @property
    def residential(self) -> np.ndarray:
        return np.asarray(self.use_purpose == WOON)


def _split(rng: np.random.Generator, total: int, parts: int, sigma: float) -> np.ndarray:
    """``total`` split into ``parts`` positive integers of random size."""
    if parts >= total:
        return np.ones(total, dtype="int64")
    w = rng.lognormal(0.0, sigma, parts)
    raw = w / w.sum() * (total - parts)
    counts = np.floor(raw).astype("int64")
    rest = total - parts - counts.sum()
    counts[np.argsort(raw - counts)[::-1][:rest]] += 1
    return np.asarray(counts + 1)


def build_world(cfg: GeneratorConfig, spec: ChunkSpec, rng: np.random.Generator) -> World:
    """Neighbourhoods, buildings and addresses of one chunk, and who owned them at the start."""
    n, n_nbh = spec.n_addresses, spec.n_nbh
    n_nbh = min(n_nbh, n)
    t0, t1 = day(cfg.start_date), day(cfg.extract_date)
    last_year = cfg.extract_date.year - 1

    # --- neighbourhoods
    prof = categorical(rng, np.array([p.weight for p in PROFILES]), n_nbh)
    P = [PROFILES[i] for i in prof]
    ten_mix = np.array([rng.dirichlet(np.array(p.tenure) * 25) for p in P])
    res_mix = np.array([rng.dirichlet(np.array(p.residents) * 12 + 0.05) for p in P])
    area_mean = np.array([p.area for p in P]) * rng.lognormal(0, 0.1, n_nbh)
    nonres = np.clip(
        np.array([p.non_residential for p in P]) * rng.lognormal(0, 0.35, n_nbh), 0.0, 0.95
    )
    reporting = (
        np.array([p.reporting for p in P])
        * np.exp(2.2 * (res_mix[:, 2] - 0.25))
        * rng.lognormal(0, 0.2, n_nbh)
    )
    mech = np.array([p.mechanisms for p in P]) * rng.lognormal(0, 0.45, (n_nbh, 4))
    family = (
        np.array([p.family for p in P]) * (1 + 0.4 * res_mix[:, 2]) * rng.lognormal(0, 0.1, n_nbh)
    )
    g_nbh = spec.nbh_offset + np.arange(n_nbh)
    dist_local = np.arange(n_nbh) // cfg.neighbourhoods_per_district
    dist_num = int(cfg.municipality_code) * 100 + spec.district_offset + dist_local
    in_dist = np.arange(n_nbh) % cfg.neighbourhoods_per_district
    district_code = np.array([f"WK{d:06d}" for d in dist_num])
    nbh_code = np.array([f"BU{d * 100 + j:08d}" for d, j in zip(dist_num, in_dist, strict=True)])
    association = rng.integers(0, N_ASSOCIATIONS, n_nbh)

    # --- addresses per neighbourhood, grouped into buildings
    sizes = _split(rng, n, n_nbh, 0.35)
    nbh = np.repeat(np.arange(n_nbh), sizes)
    j_in_nbh = local_index(sizes)
    apt_share = np.array([p.apartments for p in P])
    block = np.array([p.block_size for p in P])
    cand_nbh = nbh  # one candidate building per address is always enough
    is_block = rng.random(n) < apt_share[cand_nbh] / (
        apt_share[cand_nbh] + (1 - apt_share[cand_nbh]) * block[cand_nbh]
    )
    bsize = np.where(is_block, 2 + rng.poisson(np.maximum(block[cand_nbh] - 2, 0)), 1)
    order_key = cand_nbh.astype("int64") * (1 << 32)
    cum = np.cumsum(bsize)
    first = group_starts(cand_nbh)
    cum_before_nbh = np.maximum.accumulate(np.where(first, cum - bsize, 0))
    cum_in = cum - cum_before_nbh  # cumulative end of each candidate within its neighbourhood
    b_of_addr = np.searchsorted(
        order_key + cum_in, nbh.astype("int64") * (1 << 32) + j_in_nbh, side="right"
    )
    _, building_local = np.unique(b_of_addr, return_inverse=True)
    building_local = building_local.astype("int64")
    n_b = int(building_local.max()) + 1
    b_first = group_starts(building_local)
    b_start_idx = np.flatnonzero(b_first)
    b_size = np.diff(np.append(b_start_idx, n))
    unit = local_index(b_size)
    b_nbh = nbh[b_start_idx]

    # --- building attributes
    lo = np.array([p.years[0] for p in P])[b_nbh]
    hi = np.minimum(np.array([p.years[1] for p in P])[b_nbh], last_year)
    b_year = rng.integers(np.minimum(lo, hi), hi + 1)
    infill = rng.random(n_b) < 0.08
    b_year = np.where(infill, rng.integers(1900, last_year + 1, n_b), b_year)
    b_block = b_size > 1
    b_tenure = categorical(rng, ten_mix[b_nbh])
    rows = int(math.isqrt(spec.total_nbh - 1)) + 1
    cx = 115_000 + (g_nbh % rows - rows / 2) * 650 + rng.normal(0, 150, n_nbh)
    cy = 495_000 + (g_nbh // rows - rows / 2) * 650 + rng.normal(0, 150, n_nbh)
    bx = cx[b_nbh] + rng.normal(0, 170, n_b)
    by = cy[b_nbh] + rng.normal(0, 170, n_b)

    # --- units
    is_nonres = rng.random(n) < nonres[nbh]
    park = (prof[nbh] == 5).astype("int64")
    use = np.where(is_nonres, NONRES_CODES[categorical(rng, _NONRES_P[park])], WOON)
    b_of = building_local
    area_res = area_mean[nbh] * np.where(b_block[b_of], 0.82, 1.15) * rng.lognormal(-0.03, 0.25, n)
    area_non = rng.lognormal(np.log(180), 1.0, n)
    floor_area = np.clip(np.round(np.where(is_nonres, area_non, area_res)), 12, 50_000).astype(
        "int64"
    )
    tenure = np.where(
        rng.random(n) < np.where(b_block[b_of], 0.2, 1.0),
        categorical(rng, ten_mix[nbh]),
        b_tenure[b_of],
    )
    tenure = np.where(rng.random(n) < 0.015, UNKNOWN_TENURE, tenure)
    nr_tenure = categorical(rng, np.array([0.10, 0.0, 0.15, 0.75]), n)
    tenure = np.where(is_nonres, nr_tenure, tenure)
    year = b_year[b_of]
    built = year_start(year) + rng.integers(0, 365, n)
    exists_from = np.where(
        year >= cfg.start_date.year - 1, np.minimum(built, t1 - 60), t0 - 40 * 365
    )

    # --- postcode and house number: a PC6 per ~20 addresses of a neighbourhood
    first_unit = b_start_idx[b_of]
    j_first = j_in_nbh[first_unit]
    block20 = j_first // 20
    pc4 = 1000 + (500 + g_nbh[nbh] // 2) % 9000
    pair = ((g_nbh[nbh] % 2) * 336 + (g_nbh[nbh] // 18_000) * 37 + block20) % len(_LETTERS)
    postcode = np.char.add(pc4.astype("U4"), _LETTERS[pair])
    with_suffix = b_block[b_of] & (b_size[b_of] <= 26) & (rng.random(n_b) < 0.4)[b_of]
    house_number = np.where(with_suffix, 1 + j_first - block20 * 20, 1 + j_in_nbh - block20 * 20)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))[np.minimum(unit, 25)]
    suffix = np.asarray(np.where(with_suffix, letters, None), dtype=object)
    suffix[~with_suffix] = None

    x_rd = np.round(bx[b_of] + rng.normal(0, 3, n), 3)
    y_rd = np.round(by[b_of] + rng.normal(0, 3, n), 3)
    no_xy = rng.random(n) < 0.003
    x_rd[no_xy] = np.nan
    y_rd[no_xy] = np.nan

    w = World(
        spec=spec,
        nbh_profile=prof,
        nbh_residents=res_mix,
        nbh_reporting=reporting,
        nbh_family=family,
        nbh_mechanisms=mech,
        nbh_association=association,
        nbh_code=nbh_code,
        district_code=district_code,
        addr_global=spec.addr_offset + np.arange(n, dtype="int64"),
        nbh=nbh,
        building=spec.addr_offset + building_local,
        postcode=postcode,
        house_number=house_number.astype("int64"),
        suffix=suffix,
        floor_area=floor_area,
        use_purpose=use,
        construction_year=year.astype("int64"),
        tenure=tenure,
        x_rd=x_rd,
        y_rd=y_rd,
        exists_from=exists_from.astype("int64"),
        owner=np.full(n, -1, dtype="int64"),
        owner_type=np.full(n, NATURAL, dtype="int64"),
        owner_from=np.zeros(n, dtype="int64"),
        portfolio=np.ones(n, dtype="int64"),
    )
    _assign_owners(cfg, w, rng, b_of)
    w.shared = (
        w.residential
        & (w.tenure == PRIVATE)
        & (rng.random(n) < np.where(w.portfolio >= 4, 0.08, 0.02))
    )
    return w


def _assign_owners(
    cfg: GeneratorConfig, w: World, rng: np.random.Generator, b_of: np.ndarray
) -> None:
    """Owners at the start: associations, the municipality, landlords big and small, companies."""
    n = w.n
    t0 = day(cfg.start_date)
    chunk = np.int64(w.spec.index) << np.int64(32)
    next_id = 0

    def new_ids(k: int) -> np.ndarray:
        nonlocal next_id
        ids = chunk + next_id + np.arange(k, dtype="int64")
        next_id += k
        return ids

    res = w.residential
    # social rent: the neighbourhood's association, or another for a minority of buildings
    other = rng.integers(0, N_ASSOCIATIONS, n)
    assoc = np.where(
        (rng.random(n) < 0.25)[b_of] if len(b_of) else False, other[b_of], w.nbh_association[w.nbh]
    )
    social = res & (w.tenure == SOCIAL)
    w.owner[social] = GLOBAL_OWNER + assoc[social]
    w.owner_type[social] = ASSOCIATION

    # the municipality: some dwellings, most schools and sports halls, the cells
    muni_p = np.where(
        np.isin(
            w.use_purpose,
            [
                USE_PURPOSES.index("onderwijsfunctie"),
                USE_PURPOSES.index("sportfunctie"),
                USE_PURPOSES.index("celfunctie"),
            ],
        ),
        0.6,
        np.where(res & (w.tenure != OWNER_OCC) & ~social, 0.01, 0.03),
    )
    muni = (rng.random(n) < muni_p) & ~social & ~(res & (w.tenure == OWNER_OCC))
    w.owner[muni] = GLOBAL_OWNER + 1000
    w.owner_type[muni] = MUNICIPALITY

    # private rent and unknown dwellings: a few big landlords, many small ones
    rent = np.flatnonzero(res & np.isin(w.tenure, [PRIVATE, UNKNOWN_TENURE]) & ~muni)
    big_p = 0.25 + 0.12 * np.minimum(w.nbh_mechanisms[w.nbh[rent], EXPLOIT], 3.0)
    big = rng.random(len(rent)) < np.clip(big_p, 0, 0.8)
    for sel, portfolio_draw, company_p in (
        (rent[big], lambda k: np.clip(np.round(4 * rng.pareto(1.2, k) + 4), 4, 150), 0.7),
        (rent[~big], lambda k: 1 + rng.poisson(0.5, k), 0.15),
    ):
        if len(sel) == 0:
            continue
        # spatially clustered portfolios: order by district, then at random
        dist = w.nbh[sel] // cfg.neighbourhoods_per_district
        sel = sel[np.lexsort((rng.random(len(sel)), dist))]
        sizes = np.asarray(portfolio_draw(len(sel)), dtype="int64")
        ends = np.cumsum(sizes)
        k = int(np.searchsorted(ends, len(sel))) + 1
        sizes = sizes[:k]
        sizes[-1] -= ends[k - 1] - len(sel)
        ids = new_ids(k)
        types = np.where(rng.random(k) < company_p, COMPANY, NATURAL)
        w.owner[sel] = np.repeat(ids, sizes)
        w.owner_type[sel] = np.repeat(types, sizes)
        w.portfolio[sel] = np.repeat(sizes, sizes)

    # non-residential units: companies (some with several units) and natural persons
    nonres = np.flatnonzero(~res & ~muni)
    if len(nonres):
        sizes = 1 + rng.poisson(0.6, len(nonres))
        ends = np.cumsum(sizes)
        k = int(np.searchsorted(ends, len(nonres))) + 1
        sizes = sizes[:k]
        sizes[-1] -= ends[k - 1] - len(nonres)
        ids = new_ids(k)
        types = np.where(rng.random(k) < 0.78, COMPANY, NATURAL)
        w.owner[nonres] = np.repeat(ids, sizes)
        w.owner_type[nonres] = np.repeat(types, sizes)
        w.portfolio[nonres] = np.repeat(sizes, sizes)

    # owned since: construction, or some years before the history starts
    since = t0 - rng.integers(30, 25 * 365, n)
    w.owner_from = np.maximum(since, w.exists_from)
    w.next_owner = next_id
