"""Normalise raw identifiers before they are hashed, so that one identity has one pseudonym.

Three kinds of raw identifier are normalised here, one per identifier domain
(:data:`stratum_ml.pseudonymise.pseudonym.DOMAINS`):

* **BSN** (``person``): digits only (spaces, dots and dashes go); an 8-digit
  value gets its leading zero back (a BSN read as a number loses it); the
  result must be 9 digits passing the elfproef, else the row is an error.
* **family name** (``family_name``): Unicode NFKD with the combining marks
  dropped (``ü`` -> ``u``; also ``ı ł ø đ æ œ``, which NFKD leaves), case-folded,
  apostrophes unified, whitespace collapsed; the Dutch prefix (*voorvoegsel*:
  "van der", "de", "van 't", ...) is split off and written after the name, so that "van der Berg",
  "Berg, van der" and "VAN DER BERG" give ``"berg, van der"``. The prefix is
  kept: "van den Berg" and "van der Berg" are different names.
* **owner** (``owner``): a Kadaster owner is a natural person (a BSN) or a
  legal person (an 8-digit KvK number). Digits only; 9 digits must pass the
  elfproef (``"bsn:<9 digits>"``), 8 digits are a KvK number (``"kvk:<8 digits>"``);
  anything else is an error. An owner BSN stored as a number loses its leading
  zero and then reads as a KvK number: keep owner columns as text.

Each normaliser takes the distinct raw values of a chunk and returns the
normalised text, with ``None`` where a value is invalid; it never raises with
a value in its message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

_BSN_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)
_NON_DIGITS = re.compile(r"[^0-9]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
#: letters that Unicode does not decompose, written as registers without them write them
_UNDECOMPOSED = str.maketrans(
    {"ı": "i", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "æ": "ae", "Æ": "AE",
     "œ": "oe", "Œ": "OE", "ħ": "h"}
)  # fmt: skip
_SPACE = re.compile(r"\s+")

#: Dutch name prefixes (voorvoegsels) as written after folding, longest first when matched
NAME_PREFIXES: tuple[str, ...] = (
    "van", "van der", "van den", "van de", "van het", "van 't", "van 's", "van ter",
    "de", "den", "der", "des", "het", "'t", "'s", "ter", "ten", "te",
    "in de", "in den", "in het", "in 't", "op de", "op den", "op het", "op 't", "op ten",
    "uit de", "uit den", "uit het", "uit 't", "onder de", "over de", "aan de", "aan den",
    "bij de", "voor de", "voor den", "von", "von der", "zu", "la", "le", "du", "da", "di",
    "del", "della", "dos", "das", "d'", "l'", "el", "al",
)  # fmt: skip
_PREFIX_TOKENS = sorted((tuple(p.split(" ")) for p in NAME_PREFIXES), key=len, reverse=True)


def elfproef(numbers: np.ndarray) -> np.ndarray:
    """Where 9-digit numbers pass the elfproef (and are not zero).

    Parameters
    ----------
    numbers : numpy.ndarray
        Integers in ``[0, 10**9)``.

    Returns
    -------
    numpy.ndarray
        Boolean, aligned with ``numbers``.

    Examples
    --------
    >>> elfproef(np.array([111222333, 123456789, 0])).tolist()
    [True, False, False]
    """
    n = np.asarray(numbers, dtype=np.int64)
    digits = (n[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.int64)) % 10
    passed: np.ndarray = ((digits @ _BSN_WEIGHTS) % 11 == 0) & (n != 0)
    return passed


def _digits_only(values: Sequence[str | None]) -> list[str | None]:
    return [None if v is None else _NON_DIGITS.sub("", str(v)) for v in values]


def normalise_bsn(values: Sequence[str | None]) -> list[str | None]:
    """BSNs as 9 digits; ``None`` where a value is missing or fails the elfproef.

    Examples
    --------
    >>> normalise_bsn(["111.222.333", "11222333", "123456789", None])
    ['111222333', None, None, None]
    >>> normalise_bsn(["13725506"])  # a BSN that lost its leading zero
    ['013725506']
    """
    digits = [
        None if d is None else (d.zfill(9) if len(d) == 8 else d) for d in _digits_only(values)
    ]
    return _checked_bsns(digits)


def _checked_bsns(digits: list[str | None]) -> list[str | None]:
    nine = [i for i, d in enumerate(digits) if d is not None and len(d) == 9]
    ok = elfproef(np.array([int(digits[i]) for i in nine], dtype=np.int64))  # type: ignore[arg-type]
    good = {i for i, passed in zip(nine, ok.tolist(), strict=True) if passed}
    return [d if i in good else None for i, d in enumerate(digits)]


def normalise_owner(values: Sequence[str | None]) -> list[str | None]:
    """Owner ids as ``"bsn:<9 digits>"`` or ``"kvk:<8 digits>"``; ``None`` where invalid.

    Examples
    --------
    >>> normalise_owner(["111222333", "6810 2217", "123456789", "12"])
    ['bsn:111222333', 'kvk:68102217', None, None]
    """
    digits = _digits_only(values)
    bsns = _checked_bsns([d if d is not None and len(d) == 9 else None for d in digits])
    out: list[str | None] = []
    for d, b in zip(digits, bsns, strict=True):
        if b is not None:
            out.append("bsn:" + b)
        elif d is not None and len(d) == 8:
            out.append("kvk:" + d)
        else:
            out.append(None)
    return out


def fold_text(value: str) -> str:
    """Case- and accent-folded text with unified apostrophes and collapsed whitespace.

    Examples
    --------
    >>> fold_text("  Müller\\u2019s  Ŝtraße ")
    "muller's strasse"
    """
    decomposed = unicodedata.normalize(
        "NFKD", value.translate(_APOSTROPHES).translate(_UNDECOMPOSED)
    )
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE.sub(" ", bare.casefold()).strip()


def normalise_family_name(value: str | None) -> str | None:
    """A family name as ``"<name>, <prefix>"`` (or ``"<name>"``); ``None`` when empty.

    The prefix is recognised in front of the name ("van der Berg") or after a
    comma ("Berg, van der"); a leading "d'" or "l'" may be written against the
    name ("d'Ancona"). A name that consists of prefix words only is kept whole.

    Examples
    --------
    >>> normalise_family_name("Van der Berg")
    'berg, van der'
    >>> normalise_family_name("BERG, van der") == normalise_family_name("van  der Berg")
    True
    >>> normalise_family_name("van den Berg")
    'berg, van den'
    >>> normalise_family_name("Çelik")
    'celik'
    """
    if value is None:
        return None
    text = fold_text(str(value))
    if not text:
        return None
    if "," in text:
        name, _, prefix = text.partition(",")
        name, prefix = name.strip(), prefix.strip()
        tokens = prefix.split(" ") if prefix else []
        if tokens and _match_prefix(tokens) != len(tokens):
            return text  # not "name, prefix": keep as written (folded)
        return f"{name}, {prefix}" if prefix else name
    tokens = re.sub(r"^([dl]')(?=\w)", r"\1 ", text).split(" ")
    k = _match_prefix(tokens)
    if k == 0 or k == len(tokens):
        return text
    return f"{' '.join(tokens[k:])}, {' '.join(tokens[:k])}"


def _match_prefix(tokens: list[str]) -> int:
    """The number of leading tokens that form the longest known prefix (0 if none)."""
    for prefix in _PREFIX_TOKENS:
        if tuple(tokens[: len(prefix)]) == prefix:
            return len(prefix)
    return 0


def normalise_family_names(values: Sequence[str | None]) -> list[str | None]:
    """:func:`normalise_family_name` of each value."""
    return [normalise_family_name(v) for v in values]
