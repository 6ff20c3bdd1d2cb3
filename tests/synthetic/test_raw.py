"""``--raw-out``: the raw extracts are deterministic, hold valid identities, change nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratum_ml.pseudonymise.normalise import elfproef
from stratum_ml.synthetic import GeneratorConfig, generate_municipality
from stratum_ml.synthetic.raw import RAW_FILES, bsn_numbers, kvk_numbers

CFG = GeneratorConfig(n_addresses=900, seed=4, chunk_size=400)


def _generate(base: Path, raw: bool) -> tuple[Path, Path, Path]:
    src, truth, raw_dir = base / "src", base / "truth.parquet", base / "raw"
    generate_municipality(CFG, out_dir=src, truth_file=truth, raw_dir=raw_dir if raw else None)
    return src, truth, raw_dir


def test_raw_out_leaves_the_sources_byte_identical_and_is_deterministic(tmp_path: Path) -> None:
    plain = _generate(tmp_path / "plain", raw=False)
    one, two = _generate(tmp_path / "one", raw=True), _generate(tmp_path / "two", raw=True)
    for a, b in ((plain, one), (one, two)):
        names = sorted(p.name for p in a[0].iterdir())
        assert names == sorted(p.name for p in b[0].iterdir())
        for name in names:
            assert (a[0] / name).read_bytes() == (b[0] / name).read_bytes(), name
        assert a[1].read_bytes() == b[1].read_bytes()
    raw_names = sorted(p.name for p in one[2].iterdir())
    assert raw_names == sorted([f"{f}.csv" for f, _ in RAW_FILES.values()] + ["extract.json"])
    for name in raw_names:
        assert (one[2] / name).read_bytes() == (two[2] / name).read_bytes(), name


def test_raw_identities_are_valid_and_one_per_person(tmp_path: Path) -> None:
    src, _, raw = _generate(tmp_path, raw=True)
    regs = pd.read_csv(raw / "brp_verblijfplaatsen.csv", dtype=str, keep_default_na=False)
    direct = pd.read_parquet(src / "registrations.parquet")
    assert elfproef(regs["bsn"].astype("int64").to_numpy()).all()
    pairs = pd.DataFrame({"bsn": regs["bsn"], "p": direct["person_id"]}).drop_duplicates()
    assert pairs["bsn"].is_unique and pairs["p"].is_unique
    own = pd.read_csv(raw / "kadaster_eigendom.csv", dtype=str, keep_default_na=False)
    natural = own["soort_eigenaar"] == "natural_person"
    assert (own["eigenaar"][natural].str.len() == 9).all()
    assert elfproef(own["eigenaar"][natural].astype("int64").to_numpy()).all()
    assert (own["eigenaar"][~natural].str.len() == 8).all()
    assert not set(own["eigenaar"][natural]) & set(regs["bsn"])  # residents and owners apart
    names = regs["geslachtsnaam"]
    assert names.str.contains(r"\b(?:van|de|ter|VAN|DE)\b").mean() > 0.15  # prefixes
    assert names.str.contains(",").any() and names.str.isupper().any()
    biz = pd.read_csv(raw / "hr_vestigingen.csv", dtype=str, keep_default_na=False)
    assert (biz["kvk_nummer"].str.len() == 8).all()
    assert (biz["rechtsvorm"] == "eenmanszaak").mean() > 0.3


def test_identity_spaces_are_bijective_and_guarded() -> None:
    idx = np.arange(0, 10**7 - 1, 997)
    b = bsn_numbers(idx, seed=1)
    assert len(set(b.tolist())) == len(idx)
    assert elfproef(b.astype(np.int64)).all()
    assert bsn_numbers(idx, seed=1).tolist() != bsn_numbers(idx, seed=2).tolist()
    k = kvk_numbers(np.arange(0, 89_000_000, 4999), seed=1)
    assert len(set(k.tolist())) == len(k) and all(len(x) == 8 for x in k.tolist())
    with pytest.raises(ValueError, match="BSN space"):
        bsn_numbers(np.array([10**7 - 1]), seed=1)


def test_raw_out_refused_inside_the_source_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must not lie"):
        generate_municipality(
            CFG, out_dir=tmp_path / "src", truth_file=tmp_path / "t.parquet",
            raw_dir=tmp_path / "src" / "raw",
        )  # fmt: skip
    assert not (tmp_path / "src").exists()
