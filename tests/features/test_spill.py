"""Features from a folder split on disk by partition: the in-memory features, bounded memory."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_ml.features import spill
from stratum_ml.features.build import build_feature_table
from stratum_ml.features.spill import (
    SPLIT_PREFIX,
    _routes,
    features_from_folder,
    remove_stale_splits,
)
from stratum_ml.sources import (
    AsOfAfterExtractError,
    SourceStream,
    SourceValidationError,
    guard_as_of,
    load_sources,
    read_extract_date,
)
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
from tests.builders import A, tables_from_frames, tiny_frames
from tests.features.test_partitioned import assert_same_features
from tests.features.test_point_in_time import REFS, future_facts

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("spill")
    generate_municipality(
        GeneratorConfig(n_addresses=2000, seed=11), base / "sources", base / "truth.parquet"
    )
    return base / "sources"


@pytest.fixture(scope="module")
def expected(folder: Path) -> pd.DataFrame:
    return build_feature_table(load_sources(folder), AS_OF)


def test_a_split_folder_gives_the_in_memory_features(
    folder: Path, expected: pd.DataFrame, tmp_path: Path
) -> None:
    """Blocks of 3,000 rows (several per large table), 4 partitions; nothing left on disk."""
    got = features_from_folder(folder, AS_OF, n_partitions=4, batch_rows=3000, tmp_dir=tmp_path)
    assert_same_features(expected, got)
    for name in ("linked_by_residents", "linked_by_owner", "businesses_in_building"):
        assert (expected[name] > 0).any(), name  # features that cross partitions
    assert list(tmp_path.iterdir()) == []


def test_two_worker_processes_give_the_same_features(folder: Path, expected: pd.DataFrame) -> None:
    names = ["units_in_building", "owner_dwellings", "linked_violations", "water_m3_year"]
    got = features_from_folder(folder, AS_OF, features=names, n_partitions=3, workers=2)
    assert_same_features(expected[names], got)


def test_a_csv_folder_gives_the_in_memory_features(tmp_path: Path) -> None:
    generate_municipality(
        GeneratorConfig(n_addresses=400, seed=3), tmp_path / "src", tmp_path / "t.parquet", "csv"
    )
    expected = build_feature_table(load_sources(tmp_path / "src"), AS_OF)
    got = features_from_folder(tmp_path / "src", AS_OF, n_partitions=3, batch_rows=500)
    assert_same_features(expected, got)


def test_the_stream_gives_the_loaded_tables_block_by_block(folder: Path) -> None:
    loaded = load_sources(folder)
    stream = SourceStream.open(folder, batch_rows=2500)
    assert stream.tables[:2] == ["areas", "addresses"]
    for name in stream.tables:
        blocks = list(stream.read(name))
        if name == "registrations":
            assert len(blocks) > 1
        pd.testing.assert_frame_equal(pd.concat(blocks), loaded.get(name))
    assert stream.extract_date() == read_extract_date(folder)


def _broken_copy(folder: Path, tmp_path: Path) -> Path:
    """The folder with an unknown address and a birth year in the future in late rows."""
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    path = broken / "registrations.parquet"
    frame = pq.read_table(path).to_pandas()
    frame.loc[len(frame) - 2, "address_id"] = "0999999999999999"
    frame.loc[len(frame) - 5, "birth_year"] = 2999
    frame.to_parquet(path, index=False)
    return broken


@pytest.mark.parametrize("workers", [1, 2])
def test_a_broken_rule_in_a_late_block_is_reported_as_load_sources_does(
    folder: Path, tmp_path: Path, workers: int
) -> None:
    """Also when the table is split in a worker process (which does not report it itself)."""
    broken = _broken_copy(folder, tmp_path)
    with pytest.raises(SourceValidationError) as whole:
        load_sources(broken)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SourceValidationError) as streamed:
        features_from_folder(
            broken, AS_OF, n_partitions=2, batch_rows=2000, tmp_dir=work, workers=workers
        )
    assert str(streamed.value) == str(whole.value)
    assert "references addresses.address_id" in str(streamed.value)
    assert "0999999999999999" not in str(streamed.value)
    assert list(work.iterdir()) == []


def test_the_guard_sees_the_extract_date_before_any_feature(folder: Path) -> None:
    seen = []

    def guard(extract: object) -> None:
        seen.append(extract)
        guard_as_of(dt.date(2031, 1, 1), extract)  # type: ignore[arg-type]

    with pytest.raises(AsOfAfterExtractError, match="after the extract date"):
        features_from_folder(folder, dt.date(2031, 1, 1), guard=guard)
    assert seen == [read_extract_date(folder)]


def test_a_split_folder_left_by_a_killed_run_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / f"{SPLIT_PREFIX}{_ended_pid()}.abc"
    (stale / "addresses").mkdir(parents=True)
    alive = tmp_path / f"{SPLIT_PREFIX}{os.getpid()}.def"
    alive.mkdir()
    assert remove_stale_splits(tmp_path) == [stale]
    assert not stale.exists() and alive.exists()


def _ended_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_routes_send_a_row_to_every_other_partition_of_its_group() -> None:
    # rows 0..4: groups 0, 0, 1, -1, 2; partitions 0, 1, 1, 0, 2
    group = np.array([0, 0, 1, -1, 2])
    part = np.array([0, 1, 1, 0, 2], dtype=np.int32)
    # members of the groups elsewhere: group 1 also in partition 2, group 2 in 0 and 2
    member_group = np.concatenate([group, [1, 2]])
    member_part = np.concatenate([part, np.array([2, 0], dtype=np.int32)])
    rows, dest = _routes(group, part, member_group, member_part)
    assert sorted(zip(rows.tolist(), dest.tolist(), strict=True)) == [
        (0, 1),
        (1, 0),
        (2, 2),
        (4, 0),
    ]


def _write(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    folder.mkdir()
    for name, frame in frames.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)


@pytest.mark.parametrize("ref_date", REFS, ids=str)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_split_folder_rows_on_or_after_reference_date_change_no_feature(
    ref_date: dt.date, data: st.DataObject
) -> None:
    """The point-in-time property on the split path: a folder with future rows added."""
    ref = pd.Timestamp(ref_date)
    baseline = build_feature_table(tables_from_frames(tiny_frames()), ref_date)
    with tempfile.TemporaryDirectory() as tmp:
        _write(data.draw(future_facts(ref)), Path(tmp) / "src")
        after = features_from_folder(Path(tmp) / "src", ref_date, n_partitions=3, batch_rows=4)
    pd.testing.assert_frame_equal(baseline, after, check_exact=False, rtol=1e-9)


def test_the_split_path_property_can_fail(tmp_path: Path) -> None:
    """The same comparison sees a report made an hour before the reference date."""
    ref = pd.Timestamp("2025-01-01")
    frames = tiny_frames()
    extra = {"report_id": "RX", "address_id": A[3], "category": "overcrowding"}
    extra |= {"reported_at": ref - pd.Timedelta(hours=1), "source": "resident"}
    frames["reports"] = pd.concat([frames["reports"], pd.DataFrame([extra])], ignore_index=True)
    _write(frames, tmp_path / "src")
    after = features_from_folder(tmp_path / "src", ref.date(), n_partitions=3)
    before = build_feature_table(tables_from_frames(tiny_frames()), ref.date())
    assert after.loc[A[3], "reports_all_90d"] == before.loc[A[3], "reports_all_90d"] + 1


def test_a_table_read_ahead_lets_the_tables_that_refer_to_it_be_read_first(folder: Path) -> None:
    """Checked against the ids read ahead, the same rows; the addresses are still checked."""
    loaded = load_sources(folder)
    stream = SourceStream.open(folder, batch_rows=2500)
    ids = stream.read_ahead("addresses", "address_id")
    pd.testing.assert_series_equal(ids, loaded.addresses["address_id"])
    for name in ("registrations", "areas", "addresses"):
        pd.testing.assert_frame_equal(pd.concat(stream.read(name)), loaded.get(name))
    with pytest.raises(ValueError, match="block by block"):
        stream.read_ahead("registrations", "person_id")


def test_the_other_tables_are_split_while_the_addresses_are_checked(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 2 workers the addresses are checked once a worker has split rows of another table."""
    check = spill._split_addresses
    seen: list[list[str]] = []

    def once_a_worker_split(stream: SourceStream, town: spill.SpilledTown) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(town.root.glob("*/own-*.arrow")):
            time.sleep(0.05)
        seen.append(sorted(p.name for p in town.root.iterdir() if p.is_dir()))
        check(stream, town)

    monkeypatch.setattr(spill, "_split_addresses", once_a_worker_split)
    stream = SourceStream.open(folder, batch_rows=2500)
    town = spill.split_sources(stream, tmp_path, 3, workers=2)
    assert len(seen) == 1 and seen[0] and "addresses" not in seen[0], seen
    loaded = load_sources(folder)
    pd.testing.assert_series_equal(town.addresses, loaded.addresses["address_id"])
    assert town.areas is not None and town.inspections is not None
    pd.testing.assert_frame_equal(town.areas, loaded.areas)
    pd.testing.assert_frame_equal(town.inspections, loaded.inspections)
    assert stream.extract_date() == read_extract_date(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(stream.tables) - {"areas"})


def _break_addresses(folder: Path, tmp_path: Path, how: str) -> Path:
    """The folder with its addresses broken ``how``; registrations also break a rule."""
    broken = _broken_copy(folder, tmp_path)
    path = broken / "addresses.parquet"
    if how == "unreadable":
        path.write_bytes(b"not a parquet file")
        return broken
    frame = pq.read_table(path).to_pandas()
    # a rule across all rows (the table is checked whole); a reference to areas
    frame.loc[len(frame) - 3, "address_id"] = frame.loc[len(frame) - 4, "address_id"]
    frame.loc[7, "neighbourhood_code"] = "BU99999999"
    frame.to_parquet(path, index=False)
    return broken


@pytest.mark.parametrize("how", ["duplicate id", "unreadable"])
def test_broken_addresses_checked_beside_the_workers_are_reported_as_load_sources_does(
    folder: Path, tmp_path: Path, how: str
) -> None:
    """Every finding (the workers' tables' too), and nothing left of the split."""
    broken = _break_addresses(folder, tmp_path, how)
    with pytest.raises(SourceValidationError) as whole:
        load_sources(broken)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SourceValidationError) as streamed:
        features_from_folder(broken, AS_OF, n_partitions=2, tmp_dir=work, workers=2)
    assert str(streamed.value) == str(whole.value)
    assert "addresses" in str(streamed.value)
    assert list(work.iterdir()) == []
