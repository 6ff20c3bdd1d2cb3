"""The generated municipality as the raw extracts a municipality holds, before pseudonymisation.

``stratum generate --raw-out RAW_DIR`` writes, beside the source folder, the
same municipality as CSV extracts with made-up identities in place of the
pseudonyms, so that ``stratum pseudonymise`` with ``examples/mapping.yaml``
can be shown and tested end to end:

========================  ===================  ============================================
raw file                  contract table       identities
========================  ===================  ============================================
brp_verblijfplaatsen      registrations        ``bsn``, ``geslachtsnaam``, ``voorletters``
brp_kenmerken             audit_attributes     ``bsn``
kadaster_eigendom         ownership            ``eigenaar``: a BSN (natural person) or a KvK
                                               number
hr_vestigingen            businesses           ``kvk_nummer`` and ``rechtsvorm`` (sole
                                               traders), not mapped
bag_verblijfsobjecten,    addresses, areas,        none
cbs_wijken_buurten,       ...
water, energie, meldingen,
huisbezoeken
========================  ===================  ============================================

Every BSN passes the elfproef and stands for exactly one generated person
(residents and owners apart); a KvK number stands for one company. Family
names are Dutch-sounding, often with a prefix ("van der", "de", "van 't"),
and are written the way mixed sources write them: "van der Berg",
"Berg, van der", "VAN DER BERG", with or without accents, so that the
normalisation has work to do. Identities follow from the generator's codes in
order, chunk by chunk, so the raw extracts are deterministic per seed, and the
pseudonymised folder has the same rows, in the same order, as the source
folder, with the same links.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from stratum_ml.sources.contract import EXTRACT_DECLARATION, TABLES
from stratum_ml.sources.extract import declaration_text
from stratum_ml.synthetic.generate import _csv_frame

__all__ = ["RAW_FILES", "RawExtractWriter", "bsn_numbers", "family_name", "kvk_numbers"]

#: raw file (without .csv) and the raw name of each renamed contract column, per table
RAW_FILES: dict[str, tuple[str, dict[str, str]]] = {
    "addresses": (
        "bag_verblijfsobjecten",
        {
            "address_id": "identificatie",
            "building_id": "pand_identificatie",
            "house_number": "huisnummer",
            "house_number_suffix": "huisnummertoevoeging",
            "street_name": "openbare_ruimte",
            "city": "woonplaats",
        },
    ),
    "areas": ("cbs_wijken_buurten", {"code": "gebiedscode", "level": "niveau", "name": "naam"}),
    "registrations": (
        "brp_verblijfplaatsen",
        {
            "person_id": "bsn",
            "surname_key": "geslachtsnaam",
            "address_id": "adresseerbaar_object",
            "registered_from": "datum_aanvang",
            "registered_until": "datum_einde",
            "birth_year": "geboortejaar",
        },
    ),
    "audit_attributes": (
        "brp_kenmerken",
        {"person_id": "bsn", "gender": "geslacht", "birth_country_group": "geboorteland_groep"},
    ),
    "ownership": (
        "kadaster_eigendom",
        {
            "address_id": "adresseerbaar_object",
            "owner_id": "eigenaar",
            "owner_type": "soort_eigenaar",
            "owned_from": "datum_van",
            "owned_until": "datum_tot",
        },
    ),
    "businesses": (
        "hr_vestigingen",
        {
            "business_id": "vestigingsnummer",
            "address_id": "adresseerbaar_object",
            "registered_from": "datum_inschrijving",
            "registered_until": "datum_uitschrijving",
        },
    ),
    "water_usage": ("water", {}),
    "energy_usage": ("energie", {}),
    "reports": ("meldingen", {}),
    "inspections": ("huisbezoeken", {}),
}

_BSN_SPACE = 10**7 - 1  # indices 0 .. 10**7 - 2; residents below OWNER_BSN_BASE, owners above
OWNER_BSN_BASE = 8_000_000
_KVK_SPACE = 90_000_000
BUSINESS_KVK_BASE = 40_000_000
_BSN_W7 = np.array([9, 8, 7, 6, 5, 4, 3], dtype=np.int64)

_PREFIXES = ("", "de", "van", "van der", "van den", "van de", "ter", "van 't", "te", "in 't", "op de")  # fmt: skip  # noqa: E501
_PREFIX_P = np.array([60, 11, 8, 6, 5, 4, 2, 1.5, 1, 0.8, 0.7])
_STEMS = (
    "Berg", "Bos", "Dijk", "Hof", "Brink", "Meer", "Veen", "Wal", "Beek", "Bruin", "Groen",
    "Jan", "Peter", "Hendrik", "Willem", "Kok", "Smit", "Vis", "Mol", "Haan", "Kuiper",
    "Bakker", "Leeuw", "Vries", "Graaf", "Laan", "Horst", "Kamp", "Linden", "Heuvel", "Velde",
    "Water", "Steen", "Hout", "Molen", "Akker", "Broek", "Boom", "Wijk", "Zand", "Hoek",
    "Vliet", "Kraai", "Schouten", "Dekker", "Visser", "Meijer", "Mulder", "Boer", "Post",
)  # fmt: skip
_ENDINGS = ("", "", "", "", "ma", "stra", "sen", "s", "ink", "huis", "man", "er", "ing", "es")
_ACCENTED = (
    "Çelik", "Yılmaz", "Öztürk", "Müller", "Gönül", "Şahin", "Demİr", "Nguyễn", "Hoëvenaars",
    "Brönner", "Ramírez", "Sánchez", "Kowalczyk", "Dąbrowski", "Lefèvre", "Ibrahimović",
)  # fmt: skip
_INITIALS = "ABCDEFGHIJKLMNOPRSTVWY"


def _coprime_multiplier(seed: int, modulus: int, label: int) -> int:
    rng = np.random.default_rng([seed, 0xB5, label])
    while True:
        a = int(rng.integers(modulus // 3, modulus - 1))
        if np.gcd(a, modulus) == 1:
            return a


def bsn_numbers(index: np.ndarray, seed: int) -> np.ndarray:
    """Distinct made-up BSNs (9-digit text, elfproef passed) for distinct ``index`` values.

    Seven digits are a seeded permutation of ``index + 1`` in ``[1, 10**7)``; the
    eighth is chosen so that a check digit exists, the ninth is that check digit.

    Examples
    --------
    >>> from stratum_ml.pseudonymise.normalise import elfproef
    >>> b = bsn_numbers(np.arange(5), seed=1)
    >>> bool(elfproef(b.astype(np.int64)).all()), len(set(b.tolist()))
    (True, 5)
    """
    index = np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= _BSN_SPACE):
        raise ValueError("too many made-up people for the BSN space of --raw-out (10 million)")
    a = _coprime_multiplier(seed, 10**7, 1)
    seven = (np.int64(a) * (index + 1)) % 10**7  # never 0: a and 10**7 are coprime
    digits = (seven[:, None] // 10 ** np.arange(6, -1, -1, dtype=np.int64)) % 10
    partial = digits @ _BSN_W7
    d7 = np.zeros(len(index), dtype=np.int64)
    d7 = np.where((partial + 2 * d7) % 11 == 10, 1, d7)  # one d7 at most gives remainder 10
    d8 = (partial + 2 * d7) % 11
    number = seven * 100 + d7 * 10 + d8
    return np.char.zfill(number.astype(str), 9)


def kvk_numbers(index: np.ndarray, seed: int) -> np.ndarray:
    """Distinct made-up 8-digit KvK numbers for distinct ``index`` values (< 90 million)."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) and index.max() >= _KVK_SPACE - 1:
        raise ValueError("too many made-up companies for the KvK space of --raw-out")
    b = _coprime_multiplier(seed, _KVK_SPACE, 2)
    return (10_000_000 + (np.int64(b) * (index + 1)) % _KVK_SPACE).astype(str)


def family_name(index: int, seed: int) -> str:
    """A made-up Dutch-sounding family name, as ``"<prefix> <Name>"``, for a family index.

    Different families may share a name, as they do in life.

    Examples
    --------
    >>> family_name(3, seed=7) == family_name(3, seed=7)
    True
    """
    rng = np.random.default_rng([seed, 0x5A, index])
    prefix = _PREFIXES[int(np.searchsorted(np.cumsum(_PREFIX_P / _PREFIX_P.sum()), rng.random()))]
    if rng.random() < 0.06:
        name = _ACCENTED[int(rng.integers(len(_ACCENTED)))]
        prefix = ""
    else:
        name = _STEMS[int(rng.integers(len(_STEMS)))]
        if rng.random() < 0.6:  # compounds: Bergkamp, Hoekstra-like
            name += _STEMS[int(rng.integers(len(_STEMS)))].lower()
        name += _ENDINGS[int(rng.integers(len(_ENDINGS)))]
    return f"{prefix} {name}" if prefix else name


def _ascii(text: str) -> str:
    table = {"ı": "i", "İ": "I"}
    decomposed = unicodedata.normalize("NFKD", "".join(table.get(c, c) for c in text))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def written_as(name: str, style: int) -> str:
    """``name`` ("van der Berg") written in one of the ways sources write family names.

    Examples
    --------
    >>> [written_as("van der Berg", s) for s in range(4)]
    ['van der Berg', 'Berg, van der', 'VAN DER BERG', 'Van der Berg']
    >>> written_as("Çelik", 4), written_as("van der Berg", 5)
    ('Celik', 'van  der  Berg ')
    """
    parts = name.split(" ")
    stem_at = next((i for i, p in enumerate(parts) if p[:1].isupper()), len(parts) - 1)
    prefix, stem = " ".join(parts[:stem_at]), " ".join(parts[stem_at:])
    if style == 1 and prefix:
        return f"{stem}, {prefix}"
    if style == 2:
        return name.upper()
    if style == 3 and prefix:
        return prefix[:1].upper() + prefix[1:] + " " + stem
    if style == 4:
        return _ascii(name)
    if style == 5:
        return name.replace(" ", "  ") + " "
    return name


class RawExtractWriter:
    """Writes the raw extracts chunk by chunk into a temporary folder; :meth:`finish` renames it.

    Parameters
    ----------
    raw_dir
        The folder to create (it must not exist or be empty).
    seed
        The generator's seed; the identities follow from it.
    """

    def __init__(self, raw_dir: str | os.PathLike[str], seed: int) -> None:
        self.raw_dir = Path(raw_dir)
        if self.raw_dir.exists() and (not self.raw_dir.is_dir() or any(self.raw_dir.iterdir())):
            raise FileExistsError(f"{self.raw_dir} already exists and is not an empty folder")
        self.raw_dir.parent.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self._tmp = Path(
            tempfile.mkdtemp(
                prefix=f".{self.raw_dir.name}.", suffix=".partial", dir=self.raw_dir.parent
            )
        )
        self._started: set[str] = set()
        self._chunk = 0
        self._persons = 0
        self._families = 0
        self._owners = 0
        self._companies = 0
        self._businesses = 0
        self._global_owners: dict[str, str] = {}

    def write(self, tables: dict[str, pd.DataFrame]) -> None:
        """Append one chunk of the generator's (pseudonymised) tables as raw extracts."""
        rng = np.random.default_rng([self.seed, 0x4A3, self._chunk])
        self._chunk += 1
        frames = {
            name: _csv_frame(df, {c.name: c.kind for c in TABLES[name].columns})
            for name, df in tables.items()
        }
        regs, audit = frames["registrations"], frames["audit_attributes"]
        people = np.unique(np.concatenate([audit["person_id"], regs["person_id"]]))
        bsn = dict(
            zip(people, bsn_numbers(self._persons + np.arange(len(people)), self.seed), strict=True)
        )
        self._persons += len(people)
        for df in (regs, audit):
            df["person_id"] = df["person_id"].map(bsn)
        families = np.unique(regs["surname_key"].to_numpy())
        names = {
            f: family_name(self._families + i, self.seed) for i, f in enumerate(families.tolist())
        }
        self._families += len(families)
        styles = rng.choice(6, size=len(regs), p=[0.55, 0.15, 0.1, 0.1, 0.05, 0.05])
        regs["surname_key"] = [
            written_as(names[f], int(s)) for f, s in zip(regs["surname_key"], styles, strict=True)
        ]
        regs.insert(1, "voorletters", _initials(rng, len(regs)))
        frames["ownership"]["owner_id"] = self._owner_ids(frames["ownership"])
        biz = frames["businesses"]
        n = len(biz)
        kvk = kvk_numbers(BUSINESS_KVK_BASE + self._businesses + np.arange(n), self.seed)
        self._businesses += n
        biz.insert(1, "kvk_nummer", kvk)
        biz.insert(
            2, "rechtsvorm", np.where(rng.random(n) < 0.6, "eenmanszaak", "besloten vennootschap")
        )
        for name, df in frames.items():
            self._append(name, df)

    def write_areas(self, areas: pd.DataFrame) -> None:
        """Write the ``areas`` table as a raw extract (it holds no identities: copied as is)."""
        self._append("areas", _csv_frame(areas, {c.name: c.kind for c in TABLES["areas"].columns}))

    def _owner_ids(self, own: pd.DataFrame) -> np.ndarray:
        owner, otype = own["owner_id"].to_numpy(), own["owner_type"].to_numpy()
        out = np.empty(len(own), dtype=object)
        is_global = np.isin(otype, ("housing_association", "municipality"))
        for i in np.flatnonzero(is_global):
            if owner[i] not in self._global_owners:
                idx = np.array([self._companies])
                self._global_owners[owner[i]] = str(kvk_numbers(idx, self.seed)[0])
                self._companies += 1
            out[i] = self._global_owners[owner[i]]
        local = ~is_global
        natural = local & (otype == "natural_person")
        people = np.unique(owner[natural])
        idx = OWNER_BSN_BASE + self._owners + np.searchsorted(people, owner[natural])
        out[natural] = bsn_numbers(idx, self.seed)
        self._owners += len(people)
        firms = np.unique(owner[local & ~natural])
        company = local & ~natural
        out[company] = kvk_numbers(
            self._companies + np.searchsorted(firms, owner[company]), self.seed
        )
        self._companies += len(firms)
        return out

    def _append(self, table: str, df: pd.DataFrame) -> None:
        file, renames = RAW_FILES[table]
        path = self._tmp / f"{file}.csv"
        first = table not in self._started
        self._started.add(table)
        df.rename(columns=renames).to_csv(
            path, mode="w" if first else "a", header=first, index=False, lineterminator="\n"
        )

    def finish(self, extract_date: dt.date) -> Path:
        """Declare the extract date, and rename the complete folder to ``raw_dir``."""
        (self._tmp / EXTRACT_DECLARATION.file).write_text(declaration_text(extract_date), "utf-8")
        if self.raw_dir.exists():
            self.raw_dir.rmdir()
        os.replace(self._tmp, self.raw_dir)
        return self.raw_dir

    def abort(self) -> None:
        """Remove the partial folder."""
        shutil.rmtree(self._tmp, ignore_errors=True)


def _initials(rng: np.random.Generator, n: int) -> list[str]:
    k = rng.integers(1, 4, n)
    letters = rng.integers(0, len(_INITIALS), (n, 3))
    return [
        ".".join(_INITIALS[c] for c in row[:m]) + "." for row, m in zip(letters, k, strict=True)
    ]
