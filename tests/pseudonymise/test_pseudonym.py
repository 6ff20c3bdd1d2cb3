"""Pseudonyms: keyed, per domain, short and fixed-length, never a BSN."""

from __future__ import annotations

import re

import pytest

from stratum_ml.pseudonymise.pseudonym import (
    DOMAINS,
    PSEUDONYM_LENGTH,
    Pseudonymiser,
    derive_domain_key,
    domain_of,
    key_id,
)

SECRET_A, SECRET_B = bytes(range(32)), bytes(range(1, 33))


def test_same_value_same_key_same_pseudonym_other_key_other_pseudonym() -> None:
    values = [f"{i:09d}" for i in range(1000)]
    a1, a2 = Pseudonymiser(SECRET_A, "person")(values), Pseudonymiser(SECRET_A, "person")(values)
    b = Pseudonymiser(SECRET_B, "person")(values)
    assert a1 == a2
    assert len(set(a1)) == 1000
    assert not set(a1) & set(b)


def test_domains_are_unlinkable() -> None:
    person = Pseudonymiser(SECRET_A, "person")(["111222333"])[0]
    owner = Pseudonymiser(SECRET_A, "owner")(["111222333"])[0]
    assert person[1:] != owner[1:]
    assert derive_domain_key(SECRET_A, "person") != derive_domain_key(SECRET_A, "owner")


def test_format_is_fixed_length_base32_with_a_domain_letter() -> None:
    for domain, letter in DOMAINS.items():
        for p in Pseudonymiser(SECRET_A, domain)(["x", "y", "111222333"]):
            assert re.fullmatch(f"{letter}[A-Z2-7]{{16}}", p)
            assert len(p) == PSEUDONYM_LENGTH
            assert domain_of(p) == domain


def test_not_a_pseudonym() -> None:
    for text in ("111222333", "P123", "p" + "A" * 16, "X" + "A" * 16):
        with pytest.raises(ValueError, match="not a pseudonym"):
            domain_of(text)


def test_short_secret_refused_and_nothing_shows_the_key() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        Pseudonymiser(bytes(16), "person")
    p = Pseudonymiser(SECRET_A, "person")
    assert SECRET_A.hex() not in repr(p)
    assert SECRET_A.hex()[:16] != key_id(SECRET_A)
