"""The check every free-text field of the operational store passes before it is stored.

The store holds address-level facts only. A free-text reason (an analyst's
decision, an admin's pause of the model) is the one place a person could write
person data into, so text that looks like it holds some (a 9-digit number such
as a BSN, an e-mail address, a phone number) is refused, as is text a
spreadsheet would run as a formula, or control characters.
"""

from __future__ import annotations

import re

__all__ = ["reason_problems"]

_PERSON_DATA = (
    (re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])"), "a 9-digit number (a BSN?)"),
    (re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}"), "an e-mail address"),
    (re.compile(r"(?<![0-9])(\+31|0031|0)[ -]?[1-9]([ -]?[0-9]){8}(?![0-9])"), "a phone number"),
)
_FORMULA_START = ("=", "+", "-", "@")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def reason_problems(reason: str) -> list[str]:
    """Why a free-text reason may not be stored (empty when it may).

    Examples
    --------
    >>> reason_problems("water use far above the household's size")
    []
    >>> reason_problems("call 0612345678 first")
    ['it seems to hold a phone number; record no person data']
    """
    problems = [
        f"it seems to hold {what}; record no person data"
        for pattern, what in _PERSON_DATA
        if pattern.search(reason)
    ]
    if reason.startswith(_FORMULA_START):
        problems.append(f"it may not start with {', '.join(_FORMULA_START)} (spreadsheet formulas)")
    if _CONTROL.search(reason):
        problems.append("it holds control characters")
    return problems
