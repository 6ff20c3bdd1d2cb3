"""The feature file written a partition at a time, and read back by address for scoring."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from stratum_ml.features import spill
from stratum_ml.features.partitioned import address_partition
from stratum_ml.features.population import dwelling_ids
from stratum_ml.features.spill import features_from_folder, features_to_file
from stratum_ml.features.table_file import read_feature_rows
from stratum_ml.io import write_frame_atomic
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
from stratum_ml.synthetic.truth import read_truth, truth_at

AS_OF = dt.date(2026, 6, 1)
PARTS = 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("feature-file")
    generate_municipality(
        GeneratorConfig(n_addresses=1500, seed=5), base / "sources", base / "truth.parquet"
    )
    return base / "sources"


@pytest.fixture(scope="module")
def table(folder: Path) -> pd.DataFrame:
    """Today's file's frame: the assembled table, in the order of the queries."""
    return features_from_folder(folder, AS_OF, n_partitions=PARTS).reset_index()


@pytest.fixture(scope="module")
def streamed(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("streamed") / "features.parquet"
    written = features_to_file(folder, AS_OF, out, n_partitions=PARTS, workers=2)
    assert written.rows == pq.ParquetFile(out).metadata.num_rows
    return out


def test_the_streamed_file_holds_the_assembled_table_to_the_bit(
    table: pd.DataFrame, streamed: Path, tmp_path: Path
) -> None:
    """Same columns, types and values as ``write_frame_atomic(table.reset_index())``; rows
    partition by partition (one row group each), each partition in address order."""
    today = tmp_path / "today.parquet"
    write_frame_atomic(table, today, spreadsheet_safe=False)
    before, after = pd.read_parquet(today), pd.read_parquet(streamed)
    assert pq.read_schema(streamed).equals(pq.read_schema(today), check_metadata=False)
    assert pq.ParquetFile(streamed).metadata.num_row_groups == PARTS
    part = address_partition(after["address_id"], PARTS)
    assert (np.diff(part) >= 0).all()
    assert not after["address_id"].equals(before["address_id"])  # another order, said so
    aligned = after.set_index("address_id").loc[before["address_id"]].reset_index()
    pd.testing.assert_frame_equal(before, aligned, check_exact=True)
    for p in range(PARTS):  # within a partition, the order of the address table
        rows = before["address_id"][address_partition(before["address_id"], PARTS) == p]
        assert after["address_id"][part == p].tolist() == rows.tolist()


def test_a_csv_file_is_todays_csv_in_partition_order(
    folder: Path, table: pd.DataFrame, tmp_path: Path
) -> None:
    today = tmp_path / "today.csv"
    write_frame_atomic(table, today, spreadsheet_safe=False)
    out = tmp_path / "streamed.csv"
    features_to_file(folder, AS_OF, out, n_partitions=PARTS)
    header, *rows = today.read_text().splitlines()
    got_header, *got = out.read_text().splitlines()
    assert got_header == header and sorted(got) == sorted(rows) and got != rows


def test_a_failed_partition_leaves_no_file(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two partitions written, the third fails: neither the file nor a temporary is left,
    and an earlier file at the target is untouched."""
    compute = spill.compute_spilled
    done: list[int] = []

    def fails_third(task: spill.SpilledTask) -> tuple[int, pd.DataFrame]:
        if len(done) == 2:
            raise RuntimeError("partition failed")
        done.append(task.part)
        return compute(task)

    monkeypatch.setattr(spill, "compute_spilled", fails_third)
    out = tmp_path / "out" / "features.parquet"
    with pytest.raises(RuntimeError, match="partition failed"):
        features_to_file(folder, AS_OF, out, n_partitions=PARTS)
    assert len(done) == 2 and list(out.parent.iterdir()) == []
    out.write_bytes(b"the run before")
    with pytest.raises(RuntimeError, match="partition failed"):
        done.clear()
        features_to_file(folder, AS_OF, out, n_partitions=PARTS)
    assert out.read_bytes() == b"the run before" and list(out.parent.iterdir()) == [out]


def test_rows_read_by_address_are_the_loc_of_the_whole_file(folder: Path, streamed: Path) -> None:
    whole = pd.read_parquet(streamed).set_index("address_id")
    ids = pd.Index(dwelling_ids(pd.read_parquet(folder / "addresses.parquet")).to_numpy())
    columns = ["tenure", "water_m3_year", "units_in_building", "owner_type"]
    got = read_feature_rows(streamed, ids, columns)
    pd.testing.assert_frame_equal(got, whole.loc[ids, columns], check_exact=True)
    with pytest.raises(ValueError, match="1 of the 2 addresses asked for have no row"):
        read_feature_rows(streamed, [ids[0], "not-an-address"], columns)
    with pytest.raises(ValueError, match="no column nope"):
        read_feature_rows(streamed, ids, ["nope"])


def test_the_scorer_from_the_file_scores_as_from_the_whole_table(
    folder: Path, table: pd.DataFrame, streamed: Path, tmp_path: Path
) -> None:
    """The same scores to the bit, ranks and places as ``Scorer`` on today's ``.loc``."""
    X = table.set_index("address_id")
    truth = truth_at(read_truth(folder.parent / "truth.parquet"), X.index, "2026-06-01")
    params = LightGBMParams(n_estimators=30, early_stopping_rounds=5)
    model = RiskModel(params, "sigmoid", seed=0).fit(X, truth.astype(int), X_tune=X, y_tune=truth)
    a = pd.read_parquet(
        folder / "addresses.parquet",
        columns=["address_id", "use_purpose", "district_code", "neighbourhood_code"],
    )
    places = a.set_index("address_id").rename(
        columns={"district_code": "district", "neighbourhood_code": "neighbourhood"}
    )
    before = Scorer(model, X.loc[dwelling_ids(a).to_numpy()], places, AS_OF)
    after = Scorer.from_feature_file(model, streamed, a, AS_OF)
    pd.testing.assert_frame_equal(after.table, before.table, check_exact=True)
    assert np.array_equal(after.matrix, before.matrix, equal_nan=True)
    top = before.table.index[:5].tolist()
    assert after.reasons(top) == before.reasons(top)
    # a frame of exactly the model's columns is not copied again by the scorer
    rows = read_feature_rows(streamed, after.features.index, model.feature_names_in_)
    name = model.feature_names_in_[0]
    shared = Scorer(model, rows, places, AS_OF).features[name].to_numpy()
    assert np.shares_memory(shared, rows[name].to_numpy())
