"""Words for numbers in reason sentences: durations, singular or plural, chances in percent.

Reason templates in ``catalogue.yaml`` may hold a choice ``((singular|plural))``,
resolved by the feature's value as it is shown (``1`` takes the singular), and a
duration field ``{duration}`` that a number of days fills in as years and months
("3 jaar en 2 maanden"). Chances are shown in percent and contributions in
percentage points of the chance, never in log-odds.
"""

from __future__ import annotations

import math
import re
from typing import Literal

__all__ = [
    "choose_number",
    "format_chance",
    "format_duration",
    "format_points",
]

Language = Literal["en", "nl"]

_CHOICE = re.compile(r"\(\(([^()|]*)\|([^()|]*)\)\)")
_DAYS_PER_MONTH = 365.25 / 12
_UNITS: dict[Language, dict[str, tuple[str, str]]] = {
    "en": {"day": ("day", "days"), "month": ("month", "months"), "year": ("year", "years")},
    "nl": {"day": ("dag", "dagen"), "month": ("maand", "maanden"), "year": ("jaar", "jaar")},
}
_AND: dict[Language, str] = {"en": "and", "nl": "en"}


def choose_number(text: str, count: float) -> str:
    """Resolve every ``((singular|plural))`` in ``text`` by ``count`` as shown (``.0f``).

    Examples
    --------
    >>> choose_number("{n} ((person is|persons are)) registered", 1)
    '{n} person is registered'
    >>> choose_number("er ((staat|staan)) 3 ((persoon|personen))", 3.2)
    'er staan 3 personen'
    """
    singular = f"{abs(count):.0f}" == "1"
    return _CHOICE.sub(lambda m: m.group(1) if singular else m.group(2), text)


def _count(n: int, unit: str, language: Language) -> str:
    one, many = _UNITS[language][unit]
    return f"{n} {one if n == 1 else many}"


def format_duration(days: float, language: Language = "en") -> str:
    """A number of days in words: days under a month, months under a year, else years and months.

    Examples
    --------
    >>> format_duration(1157, "nl")
    '3 jaar en 2 maanden'
    >>> format_duration(400, "en"), format_duration(1, "en"), format_duration(70, "nl")
    ('1 year and 1 month', '1 day', '2 maanden')
    >>> format_duration(730.5, "en")
    '2 years'
    """
    total = abs(float(days))
    if total < 31:
        return _count(int(round(total)), "day", language)
    months = int(total // _DAYS_PER_MONTH)
    if months < 12:
        return _count(months, "month", language)
    years, rest = divmod(months, 12)
    text = _count(years, "year", language)
    return f"{text} {_AND[language]} {_count(rest, 'month', language)}" if rest else text


def _decimal(value: float, digits: int, language: Language) -> str:
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if language == "nl" else text


def format_chance(probability: float, language: Language = "en") -> str:
    """A probability as a percentage, whole below 99.5% and above 0.5%, else with a decimal.

    Examples
    --------
    >>> format_chance(0.9432405105428384, "nl"), format_chance(0.0031, "en")
    ('94%', '0.3%')
    """
    percent = 100.0 * float(probability)
    if math.isnan(percent):
        return "?"
    digits = 0 if 0.5 <= percent < 99.5 else 1
    return f"{_decimal(percent, digits, language)}%"


def format_points(points: float, language: Language = "en") -> str:
    """A contribution in percentage points of the chance, with its sign.

    Examples
    --------
    >>> format_points(3.24, "nl"), format_points(-0.5, "en")
    ('+3,2 procentpunt', '-0.5 percentage points')
    """
    word = "procentpunt" if language == "nl" else "percentage points"
    sign = "+" if points >= 0 else "-"
    return f"{sign}{_decimal(abs(points), 1, language)} {word}"
