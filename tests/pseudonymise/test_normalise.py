"""Normalisation: one identity, one normalised value; invalid values are None."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_ml.pseudonymise.normalise import (
    elfproef,
    normalise_bsn,
    normalise_family_name,
    normalise_owner,
)
from stratum_ml.sources.schemas import looks_like_bsn


@pytest.mark.parametrize(
    "written",
    ["van der Berg", "Berg, van der", "VAN DER BERG", "Van der Berg", "  van  der\tBerg ",
     "BERG, Van Der", "van der Bérg"],
)  # fmt: skip
def test_family_name_prefix_position_case_accents_and_spaces_do_not_matter(written: str) -> None:
    assert normalise_family_name(written) == "berg, van der"


def test_a_different_prefix_is_a_different_name() -> None:
    names = {normalise_family_name(n) for n in ("van den Berg", "van der Berg", "de Berg", "Berg")}
    assert len(names) == 4


@pytest.mark.parametrize(
    ("a", "b"),
    [("van 't Hof", "Hof, van 't"), ("van \u2019t Hof", "van 't Hof"), ("d'Ancona", "Ancona, d'"),
     ("Çelik", "Celik"), ("Müller", "MULLER"), ("Yılmaz", "YILMAZ"), ("Łukasz", "Lukasz"),
     ("in 't Veld", "Veld, in 't")],
)  # fmt: skip
def test_family_name_variants_agree(a: str, b: str) -> None:
    assert normalise_family_name(a) == normalise_family_name(b)


def test_family_name_edge_cases() -> None:
    assert normalise_family_name("") is None
    assert normalise_family_name(None) is None
    assert normalise_family_name("De") == "de"  # prefix words only: kept whole
    assert normalise_family_name("Jansen, Piet") == "jansen, piet"  # not a prefix: as written


def test_bsn_digits_only_and_elfproef() -> None:
    assert normalise_bsn(["111 222 333", "111.222.333", "111-222-333"]) == ["111222333"] * 3
    assert normalise_bsn(["123456789", "1234567890", "", None, "abc"]) == [None] * 5
    assert normalise_bsn(["13725506"]) == ["013725506"]  # lost its leading zero


def test_owner_is_a_bsn_or_a_kvk_number() -> None:
    assert normalise_owner(["111222333", "12345678", "123456789", "1234567"]) == [
        "bsn:111222333",
        "kvk:12345678",
        None,
        None,
    ]


def test_elfproef_agrees_with_the_contract_check() -> None:
    numbers = np.random.default_rng(0).integers(0, 10**9, 20_000)
    text = np.char.zfill(numbers.astype(str), 9)
    import pandas as pd

    assert (elfproef(numbers) == looks_like_bsn(pd.Series(text)).to_numpy()).all()
