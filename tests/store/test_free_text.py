"""The person-data check of free-text reasons: a table of what it must refuse and let through."""

from __future__ import annotations

import pytest

from stratum_ml.store.free_text import reason_problems

REFUSED = [
    # a BSN in any common notation
    ("111222333", "BSN"),
    ("bsn 111.222.333", "BSN"),
    ("111 222 333 woont hier", "BSN"),
    ("nummer 111-22-2333", "BSN"),
    ("BSN １１１２２２３３３", "BSN"),  # full-width digits
    ("bsn 1112 22 333", "BSN"),
    ("bsn 111/222/333", "BSN"),
    # phone numbers
    ("bel 06.1234.5678", "phone"),
    ("bel 0612345678", "phone"),
    ("bel 06-12345678", "phone"),
    ("tel +31 6 1234 5678", "phone"),
    ("tel 0031612345678", "phone"),
    ("tel 020 123 4567", "phone"),
    ("tel +31 (0)20 123 4567", "phone"),
    # e-mail
    ("mail j.jansen@example.nl", "e-mail"),
    ("mail J.Jansen＠example.nl", "e-mail"),  # full-width at sign
    # dates of birth
    ("Jan de Vries woont hier, geboren 12-03-1980", "date"),
    ("born 1980-03-12", "date"),
    ("12 maart 1980 ingeschreven", "date"),
    ("dob 3/12/1980", "date"),
    ("12.03.1980", "date"),
    ("geboren in Rotterdam", "date of birth"),
    # an IBAN, with or without spaces
    ("rekening NL91ABNA0417164300", "IBAN"),
    ("rekening NL91 ABNA 0417 1643 00", "IBAN"),
    ("account DE89 3704 0044 0532 0130 00", "IBAN"),
    # spreadsheet formulas, also after leading whitespace
    ("=HYPERLINK(1)", "formula"),
    ("\t=HYPERLINK(1)", "formula"),
    ("   +cmd|' /C calc'!A0", "formula"),
    ("\u3000@SUM(A1)", "formula"),  # an ideographic space first
    ("-2+3", "formula"),
    ("＝1+1", "formula"),  # full-width equals sign
    # control characters
    ("water\x1b[31m", "control"),
]

ALLOWED = [
    "water use far above the household's size",
    "12 registered residents in a 40 m2 dwelling",
    "reports in March 2026 and April 2026; water 1.5/2.0 m3",
    "energy use 3x the neighbourhood median since 2025",
    "owner holds 14 dwellings in WK047901",
    "bouwjaar 1931, BU04790101",
    "visit in 2026-11 showed nothing",
    "score 0.93, rank 12 of 4000",
    "multi-line\nreason with\ttabs",
    "NL12 then water use over the limit",
]


@pytest.mark.parametrize(("reason", "kind"), REFUSED)
def test_person_data_and_formulas_are_refused_without_echo(reason: str, kind: str) -> None:
    problems = reason_problems(reason)
    assert problems, reason
    text = "; ".join(problems)
    assert kind in text, text
    for word in reason.split():
        if sum(c.isdigit() for c in word) >= 4 or "@" in word:
            assert word not in text  # the refusal names the kind, never the value


@pytest.mark.parametrize("reason", ALLOWED)
def test_address_level_reasons_pass(reason: str) -> None:
    assert reason_problems(reason) == []
