"""Pseudonymising the generated raw extracts: links, validity, no identity left, bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.pseudonymise.keys import PseudonymKey
from stratum_ml.pseudonymise.normalise import fold_text
from stratum_ml.pseudonymise.run import PseudonymisationError, pseudonymise
from stratum_ml.sources import load_sources, validate_source_dir
from stratum_ml.sources.schemas import looks_like_bsn

from .conftest import Town

_NAME_WORDS = {"van", "der", "den", "de", "ter", "te", "in", "op", "t"}


def _raw(town: Town, file: str) -> pd.DataFrame:
    return pd.read_csv(town.raw / f"{file}.csv", dtype=str, keep_default_na=False)


def _out(folder: Path, table: str) -> pd.DataFrame:
    path = next(folder.glob(f"{table}.*"))
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path).astype(str)


def test_output_validates_and_says_what_it_dropped(town: Town) -> None:
    report = validate_source_dir(town.out)
    assert report.ok, [f.message for f in report.findings]
    assert not [f for f in report.findings if f.severity != "note"]
    assert (town.out / "extract.json").read_text() == (town.raw / "extract.json").read_text()


def test_summary_names_dropped_columns(town: Town, tmp_path: Path) -> None:
    report = pseudonymise(town.raw, town.mapping, tmp_path / "src", town.key)
    dropped = {t.table: t.dropped for t in report.tables}
    assert dropped["registrations"] == ["voorletters"]
    assert dropped["businesses"] == ["kvk_nummer", "rechtsvorm"]
    assert "dropped (not mapped): kvk_nummer, rechtsvorm" in report.summary()
    assert town.key.key_id in report.summary()
    assert town.key.secret.hex() not in report.summary()
    assert validate_source_dir(tmp_path / "src").ok  # parquet too


def test_same_bsn_same_pseudonym_across_tables(town: Town) -> None:
    regs_raw, regs = _raw(town, "brp_verblijfplaatsen"), _out(town.out, "registrations")
    attrs_raw, attrs = _raw(town, "brp_kenmerken"), _out(town.out, "audit_attributes")
    pairs = pd.concat(
        [
            pd.DataFrame({"bsn": regs_raw["bsn"], "p": regs["person_id"]}),
            pd.DataFrame({"bsn": attrs_raw["bsn"], "p": attrs["person_id"]}),
        ]
    ).drop_duplicates()
    # one pseudonym per BSN and one BSN per pseudonym, across both tables
    assert pairs["bsn"].is_unique and pairs["p"].is_unique
    assert set(regs["person_id"]) <= set(attrs["person_id"])


def test_pseudonyms_link_exactly_as_the_generators_own(town: Town) -> None:
    """The pseudonymised folder has the generator's rows, with the same links (a bijection)."""
    direct = load_sources(town.sources)
    made = load_sources(town.out)
    for table, column in [("registrations", "person_id"), ("ownership", "owner_id")]:
        a, b = getattr(direct, table)[column], getattr(made, table)[column]
        pairs = pd.DataFrame({"a": a.to_numpy(), "b": b.to_numpy()}).drop_duplicates()
        assert pairs["a"].is_unique and pairs["b"].is_unique, (table, column)
    # family names: one name per family; different families may share a name
    a, b = direct.registrations["surname_key"], made.registrations["surname_key"]
    pairs = pd.DataFrame({"a": a.to_numpy(), "b": b.to_numpy()}).drop_duplicates()
    assert pairs["a"].is_unique
    assert pairs["b"].nunique() > 0.5 * pairs["a"].nunique()
    pd.testing.assert_frame_equal(
        direct.addresses.reset_index(drop=True), made.addresses.reset_index(drop=True)
    )


def test_family_names_written_differently_get_one_pseudonym(town: Town) -> None:
    raw, out = _raw(town, "brp_verblijfplaatsen"), _out(town.out, "registrations")
    styles = raw["geslachtsnaam"].str.contains(",") | raw["geslachtsnaam"].str.isupper()
    assert styles.mean() > 0.1  # the generator writes names in several ways
    key = raw["geslachtsnaam"].map(lambda n: fold_text(n))
    both = pd.DataFrame({"written": raw["geslachtsnaam"], "p": out["surname_key"]})
    upper = both[raw["geslachtsnaam"].str.isupper()]
    plain = both[~raw["geslachtsnaam"].str.isupper() & ~raw["geslachtsnaam"].str.contains(",")]
    folded_p = dict(zip(key[plain.index], plain["p"], strict=True))
    matched = [
        folded_p[k] == p for k, p in zip(key[upper.index], upper["p"], strict=True) if k in folded_p
    ]
    assert matched and all(matched)


def test_no_raw_identifier_or_name_anywhere_in_the_output(town: Town) -> None:
    bsns = set(_raw(town, "brp_verblijfplaatsen")["bsn"]) | set(_raw(town, "brp_kenmerken")["bsn"])
    owners = set(_raw(town, "kadaster_eigendom")["eigenaar"])
    kvks = set(_raw(town, "hr_vestigingen")["kvk_nummer"])
    numbers = bsns | owners | kvks
    numbers |= {n.lstrip("0") for n in numbers}
    names = set()
    for written in _raw(town, "brp_verblijfplaatsen")["geslachtsnaam"]:
        names |= {w for w in re.findall(r"[a-z]+", fold_text(written)) if len(w) > 2}
    names -= _NAME_WORDS
    initials = set(_raw(town, "brp_verblijfplaatsen")["voorletters"])
    assert len(numbers) > 1000 and len(names) > 50
    for path in sorted(town.out.iterdir()):
        data = path.read_bytes()
        digit_runs = set(re.findall(rb"(?<![0-9])[0-9]{7,9}(?![0-9])", data))
        assert not {d.decode() for d in digit_runs} & numbers, path.name
        words = {w.decode().lower() for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", data)}
        assert not words & names, (path.name, sorted(words & names)[:5])
        assert not any(i.encode() in data for i in initials if len(i) > 4), path.name


def test_no_value_passing_the_elfproef_survives_in_any_column(town: Town) -> None:
    for path in sorted(town.out.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in frame.columns:
            assert not looks_like_bsn(frame[column]).any(), (path.name, column)


def test_other_key_other_pseudonyms(town: Town, tmp_path: Path) -> None:
    pseudonymise(town.raw, town.mapping, tmp_path / "other", PseudonymKey.new(), fmt="csv")
    for table, column in [("registrations", "person_id"), ("registrations", "surname_key"),
                          ("ownership", "owner_id")]:  # fmt: skip
        mine, theirs = _out(town.out, table)[column], _out(tmp_path / "other", table)[column]
        assert not set(mine) & set(theirs)
        assert mine.nunique() == theirs.nunique()
    assert (tmp_path / "other" / "addresses.csv").read_bytes() == (
        town.out / "addresses.csv"
    ).read_bytes()


def _second_extract(town: Town, folder: Path) -> Path:
    """A later extract: other row order, family names written otherwise, a row less."""
    shutil.copytree(town.raw, folder)
    regs = _raw(town, "brp_verblijfplaatsen").iloc[1:].iloc[::-1]
    regs["geslachtsnaam"] = regs["geslachtsnaam"].str.upper()
    regs.to_csv(folder / "brp_verblijfplaatsen.csv", index=False)
    return folder


def test_same_bsn_same_pseudonym_across_extracts(town: Town, tmp_path: Path) -> None:
    raw2 = _second_extract(town, tmp_path / "raw2")
    pseudonymise(raw2, town.mapping, tmp_path / "out2", town.key, fmt="parquet", chunk_rows=2_000)
    first = pd.DataFrame(
        {"bsn": _raw(town, "brp_verblijfplaatsen")["bsn"],
         "p": _out(town.out, "registrations")["person_id"],
         "s": _out(town.out, "registrations")["surname_key"]}
    )  # fmt: skip
    raw2_regs = pd.read_csv(raw2 / "brp_verblijfplaatsen.csv", dtype=str, keep_default_na=False)
    second = pd.DataFrame(
        {"bsn": raw2_regs["bsn"].to_numpy(),
         "p": _out(tmp_path / "out2", "registrations")["person_id"].to_numpy(),
         "s": _out(tmp_path / "out2", "registrations")["surname_key"].to_numpy()}
    )  # fmt: skip
    merged = first.drop_duplicates().merge(second.drop_duplicates(), on="bsn")
    assert len(merged) > 1000
    assert (merged["p_x"] == merged["p_y"]).all()
    assert set(second["s"]) <= set(first["s"])  # upper-cased names: the same pseudonyms


def test_chunk_size_does_not_change_the_output(town: Town, tmp_path: Path) -> None:
    pseudonymise(town.raw, town.mapping, tmp_path / "big", town.key, fmt="csv", chunk_rows=10**6)
    for path in sorted(town.out.iterdir()):
        assert path.read_bytes() == (tmp_path / "big" / path.name).read_bytes(), path.name


# ---------------------------------------------------------------------------- bad input


def _broken_raw(town: Town, folder: Path, rows: dict[int, str], column: str = "bsn") -> Path:
    shutil.copytree(town.raw, folder)
    regs = _raw(town, "brp_verblijfplaatsen")
    for row, value in rows.items():
        regs.loc[row - 1, column] = value
    regs.to_csv(folder / "brp_verblijfplaatsen.csv", index=False)
    return folder


def _nothing_written(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_bad_bsn_reported_by_table_column_and_row_never_by_value(
    town: Town, tmp_path: Path
) -> None:
    bad = {3: "123456789", 7: "11122233", 10: ""}
    raw = _broken_raw(town, tmp_path / "raw", bad)
    with pytest.raises(PseudonymisationError) as err:
        pseudonymise(raw, town.mapping, tmp_path / "out", town.key, chunk_rows=1_000)
    text = str(err.value)
    assert "registrations.person_id: 3 row(s) with not a BSN" in text
    assert "rows 3, 7, 10" in text
    assert "123456789" not in text and "11122233" not in text
    _nothing_written(tmp_path, "out")


def test_a_bsn_in_a_plain_column_is_refused(town: Town, tmp_path: Path) -> None:
    raw = _broken_raw(town, tmp_path / "raw", {5: "111222333"}, column="geboortejaar")
    with pytest.raises(PseudonymisationError) as err:
        pseudonymise(raw, town.mapping, tmp_path / "out", town.key)
    assert "registrations.birth_year: 1 row(s) with a BSN" in str(err.value)
    assert "rows 5" in str(err.value) and "111222333" not in str(err.value)
    _nothing_written(tmp_path, "out")


def test_missing_mapped_column_or_file_is_an_error(town: Town, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(town.raw, raw)
    _raw(town, "kadaster_eigendom").drop(columns="eigenaar").to_csv(
        raw / "kadaster_eigendom.csv", index=False
    )
    with pytest.raises(PseudonymisationError, match=r"kadaster_eigendom.csv \(table ownership\) "
                       r"has no column 'eigenaar'"):  # fmt: skip
        pseudonymise(raw, town.mapping, tmp_path / "out", town.key)
    _nothing_written(tmp_path, "out")
    (raw / "kadaster_eigendom.csv").unlink()
    with pytest.raises(PseudonymisationError, match="no raw file kadaster_eigendom.csv or"):
        pseudonymise(raw, town.mapping, tmp_path / "out", town.key)
    _nothing_written(tmp_path, "out")


def test_existing_output_and_key_inside_output_refused(town: Town, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError):
        pseudonymise(town.raw, town.mapping, town.out, town.key)
    from stratum_ml.pseudonymise.keys import KeyFileError, load_key_file, write_key_file

    out = tmp_path / "out"
    path = write_key_file(PseudonymKey.new(), out / "k.key")
    with pytest.raises(KeyFileError, match="inside"):
        pseudonymise(town.raw, town.mapping, out, load_key_file(path))


def test_a_full_cache_is_emptied_without_losing_values(town: Town) -> None:
    """Regression: the bounded cache, once full, must not drop values a chunk still needs."""
    import pyarrow as pa

    from stratum_ml.pseudonymise.run import _TablePseudonymiser

    tm = town.mapping.tables["registrations"]
    bsns = _raw(town, "brp_verblijfplaatsen")["bsn"]
    small, large = (
        _TablePseudonymiser(town.key, tm, cache_max=50),
        _TablePseudonymiser(town.key, tm),
    )
    for start in range(0, 600, 100):
        batch = pa.array(bsns[start : start + 200].tolist())
        a, _ = small.column("person_id", "person", batch)
        b, _ = large.column("person_id", "person", batch)
        assert a.equals(b)
        assert len(small.caches["person_id"]) <= 200


def test_street_names_city_and_areas_pass_through_unchanged(town: Town) -> None:
    sources = load_sources(town.sources)
    out = load_sources(town.out)
    for column in ("street_name", "city"):
        assert out.addresses[column].tolist() == sources.addresses[column].tolist()
    assert sources.areas is not None and out.areas is not None
    pd.testing.assert_frame_equal(out.areas, sources.areas)
