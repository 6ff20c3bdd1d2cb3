"""Simulate the people of a chunk: the steps in order, as one :class:`People`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_ml.synthetic._util import OPEN, day
from stratum_ml.synthetic.config import GeneratorConfig
from stratum_ml.synthetic.mechanisms import Episodes
from stratum_ml.synthetic.population._common import _Ids
from stratum_ml.synthetic.population._households import _households
from stratum_ml.synthetic.population._mechanism_people import _mechanism_people
from stratum_ml.synthetic.population._tenancies import _tenancies
from stratum_ml.synthetic.world import World


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


def simulate_people(
    cfg: GeneratorConfig, w: World, ep: Episodes, rng: np.random.Generator
) -> People:
    """Households, moves, births and the mechanisms' people, as registrations and presence."""
    ids = _Ids(w.spec.index)
    t_addr, t_start, t_end = _tenancies(cfg, w, ep, rng)
    reg, persons, occ = _households(cfg, w, ep, rng, ids, t_addr, t_start, t_end)
    m_reg, m_persons, m_occ = _mechanism_people(cfg, w, ep, rng, ids)

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
