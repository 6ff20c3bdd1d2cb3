"""The check every free-text field of the operational store passes before it is stored.

The store holds address-level facts only. A free-text reason (an analyst's
decision, an admin's pause of the model) is the one place a person could write
person data into, so text that looks like it holds some is refused with a plain
sentence that names the kind, never the value:

- a BSN in any common notation: nine digits, with or without separators
  (``111222333``, ``111.222.333``, ``111 222 333``, ``111-22-2333``), also in
  full-width digits; any nine-digit number is refused, since the elfproef
  cannot tell a BSN from a number that happens to pass it;
- a phone number (Dutch: ``0`` and nine digits, ``+31``/``0031`` and nine
  digits, with separators: ``06.1234.5678``, ``+31 6 1234 5678``);
- an e-mail address;
- a date of birth: a full date (day, month and year, in any common notation,
  month names in Dutch and English) or a word for birth (``geboren``,
  ``born``, ...): write an address's dates as month and year;
- an IBAN (a country code, two check digits and the account, with or without
  spaces, whose mod-97 check holds);
- a spreadsheet formula: text whose first character after any leading
  whitespace is ``=``, ``+``, ``-`` or ``@``;
- control characters.

The text is compared in Unicode normal form NFKC, so full-width digits and
letters count as their ASCII twins. The checks are data (:data:`CHECKS`), and
the test holds a table of the notations they must catch and of ordinary
reasons they must let through.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CHECKS", "FORMULA_START", "PersonDataCheck", "reason_problems"]

#: first characters (after leading whitespace) a spreadsheet runs as a formula
FORMULA_START = ("=", "+", "-", "@")

_SEP = r"[\s.\-/]?"  # one optional separator between digits
_MONTHS = (
    "jan|feb|mrt|maa|mar|apr|mei|may|jun|jul|aug|sep|okt|oct|nov|dec|"
    "januari|februari|maart|april|juni|juli|augustus|september|oktober|november|december|"
    "january|february|march|june|july|august|october"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_IBAN_CANDIDATE = re.compile(r"(?<![A-Z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Z0-9])")


def _iban_checks_out(text: str) -> bool:
    """True when ``text`` holds a string that passes the IBAN mod-97 check."""
    for match in _IBAN_CANDIDATE.finditer(text.upper()):
        compact = match.group().replace(" ", "")
        for end in range(len(compact), 14, -1):  # a match may run into the next word
            candidate = compact[:end]
            rearranged = candidate[4:] + candidate[:4]
            digits = "".join(str(int(c, 36)) for c in rearranged)
            if int(digits) % 97 == 1:
                return True
    return False


def _pattern(regex: str) -> Callable[[str], bool]:
    compiled = re.compile(regex, re.IGNORECASE)
    return lambda text: compiled.search(text) is not None


@dataclass(frozen=True)
class PersonDataCheck:
    """One kind of person data: how it is found and how the refusal names it."""

    what: str
    found: Callable[[str], bool]


CHECKS: tuple[PersonDataCheck, ...] = (
    PersonDataCheck(
        "a 9-digit number (a BSN?)", _pattern(rf"(?<![0-9])(?:[0-9]{_SEP}){{8}}[0-9](?![0-9])")
    ),
    PersonDataCheck(
        "a phone number",
        _pattern(r"(?<![0-9])(?:\+31|0031|0)(?:\s?\(0\))?(?:[\s.\-]?[0-9]){9}(?![0-9])"),
    ),
    PersonDataCheck("an e-mail address", _pattern(r"[^\s@]+@[^\s@]+\.[a-z]{2,}")),
    PersonDataCheck(
        "a date (a date of birth?); write dates as month and year",
        _pattern(
            r"(?<![0-9])(?:[0-9]{1,2}(?P<s1>[\s.\-/])[0-9]{1,2}(?P=s1)(?:1[89]|20)[0-9]{2}"
            r"|(?:1[89]|20)[0-9]{2}(?P<s2>[\s.\-/])[0-9]{1,2}(?P=s2)[0-9]{1,2}"
            rf"|[0-9]{{1,2}}\s*(?:{_MONTHS})\.?\s*(?:1[89]|20)[0-9]{{2}})(?![0-9])"
        ),
    ),
    PersonDataCheck(
        "a date of birth",
        _pattern(r"\b(?:geboren|geb\.|geboortedatum|born|birth|date of birth|dob)\b"),
    ),
    PersonDataCheck("an IBAN (a bank account)", _iban_checks_out),
)
"""The kinds of person data a free-text reason is refused for, in the order they are named."""


def reason_problems(reason: str) -> list[str]:
    """Why a free-text reason may not be stored (empty when it may).

    Examples
    --------
    >>> reason_problems("water use far above the household's size")
    []
    >>> reason_problems("call 0612345678 first")
    ['it seems to hold a phone number; record no person data']
    """
    text = unicodedata.normalize("NFKC", reason)
    problems = [
        f"it seems to hold {check.what}; record no person data"
        for check in CHECKS
        if check.found(text)
    ]
    if text.lstrip().startswith(FORMULA_START):
        problems.append(
            f"it may not start with {', '.join(FORMULA_START)}, also after spaces "
            "(spreadsheet formulas)"
        )
    if _CONTROL.search(text):
        problems.append("it holds control characters")
    return problems
