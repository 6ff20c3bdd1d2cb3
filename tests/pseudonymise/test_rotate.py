"""Key rotation: the whole history made again with a new key; links hold within it."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.pseudonymise.keys import KeyFileError, PseudonymKey, load_key_file
from stratum_ml.pseudonymise.rotate import rotate_key
from stratum_ml.pseudonymise.run import PseudonymisationError, pseudonymise
from stratum_ml.sources import validate_source_dir

from .conftest import Town


def _history(town: Town, base: Path) -> list[tuple[Path, Path]]:
    """Two monthly extracts (family names written otherwise in the first) and their folders."""
    raw1, raw2 = base / "raw-10", base / "raw-11"
    shutil.copytree(town.raw, raw1)
    shutil.copytree(town.raw, raw2)
    regs = pd.read_csv(raw1 / "brp_verblijfplaatsen.csv", dtype=str, keep_default_na=False)
    regs["geslachtsnaam"] = regs["geslachtsnaam"].str.upper()
    regs.to_csv(raw1 / "brp_verblijfplaatsen.csv", index=False)
    pairs = []
    for raw in (raw1, raw2):
        src = base / f"sources-{raw.name[4:]}"
        pseudonymise(raw, town.mapping, src, town.key)
        pairs.append((raw, src))
    return pairs


def _persons(src: Path) -> pd.Series:
    return pd.read_parquet(src / "registrations.parquet")["person_id"]


def test_rotation_re_pseudonymises_the_history_and_keeps_links(town: Town, tmp_path: Path) -> None:
    pairs = _history(town, tmp_path)
    before = [_persons(src) for _, src in pairs]
    report = rotate_key(town.key, tmp_path / "keys" / "new.key", town.mapping, pairs)
    new = load_key_file(tmp_path / "keys" / "new.key")
    assert stat.S_IMODE((tmp_path / "keys" / "new.key").stat().st_mode) == 0o600
    assert report.new_key_id == new.key_id != town.key.key_id
    after = [_persons(src) for _, src in pairs]
    for b, a in zip(before, after, strict=True):
        assert not set(a) & set(b)  # every pseudonym changed
        pairs_ = pd.DataFrame({"b": b, "a": a}).drop_duplicates()
        assert pairs_["a"].is_unique and pairs_["b"].is_unique  # the same links
    # links across the two extracts hold within the new key
    assert (after[0] == after[1]).all() and (before[0] == before[1]).all()
    surnames = [pd.read_parquet(src / "registrations.parquet")["surname_key"] for _, src in pairs]
    assert (surnames[0] == surnames[1]).all()
    for _, src in pairs:
        assert validate_source_dir(src).ok
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    assert "re-pseudonymised the whole history in one go" in report.summary()
    assert new.secret.hex() not in report.summary()


def test_rotation_refuses_a_folder_not_made_with_the_old_key(town: Town, tmp_path: Path) -> None:
    pairs = _history(town, tmp_path)
    before = [(src / "registrations.parquet").read_bytes() for _, src in pairs]
    with pytest.raises(PseudonymisationError, match="was not made from"):
        rotate_key(PseudonymKey.new(), tmp_path / "new.key", town.mapping, pairs)
    with pytest.raises(PseudonymisationError, match="was not made from"):
        rotate_key(town.key, tmp_path / "new.key", town.mapping, [(town.raw, town.sources)])
    assert not (tmp_path / "new.key").exists()
    assert before == [(src / "registrations.parquet").read_bytes() for _, src in pairs]


def test_rotation_changes_nothing_when_a_raw_extract_fails(town: Town, tmp_path: Path) -> None:
    pairs = _history(town, tmp_path)
    before = [(src / "registrations.parquet").read_bytes() for _, src in pairs]
    regs = pd.read_csv(pairs[1][0] / "brp_verblijfplaatsen.csv", dtype=str, keep_default_na=False)
    regs.loc[len(regs) - 1, "bsn"] = "123456789"
    regs.to_csv(pairs[1][0] / "brp_verblijfplaatsen.csv", index=False)
    with pytest.raises(PseudonymisationError, match=r"registrations.person_id: 1 row"):
        rotate_key(town.key, tmp_path / "new.key", town.mapping, pairs)
    assert not (tmp_path / "new.key").exists()
    assert before == [(src / "registrations.parquet").read_bytes() for _, src in pairs]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_rotation_new_key_never_inside_a_source_folder_nor_overwritten(
    town: Town, tmp_path: Path
) -> None:
    pairs = _history(town, tmp_path)
    with pytest.raises(KeyFileError, match="inside"):
        rotate_key(town.key, pairs[0][1] / "new.key", town.mapping, pairs)
    with pytest.raises(KeyFileError, match="never overwritten"):
        rotate_key(town.key, town.key.path, town.mapping, pairs)  # type: ignore[arg-type]
