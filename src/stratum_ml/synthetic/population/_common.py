"""Codes, id counters and the draws of personal attributes shared by the steps."""

from __future__ import annotations

import numpy as np

from stratum_ml.sources.contract import BIRTH_COUNTRY_GROUPS, GENDERS
from stratum_ml.synthetic._util import categorical, year_start

YEAR = 365.25
HEAD, PARTNER, CHILD, ROOMMATE, NEWBORN = range(5)
FEMALE, MALE, OTHER_GENDER, UNKNOWN_GENDER = range(len(GENDERS))
NL, EUROPE, OUTSIDE, UNKNOWN_COUNTRY = range(len(BIRTH_COUNTRY_GROUPS))


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
