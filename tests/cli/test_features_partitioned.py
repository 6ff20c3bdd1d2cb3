"""``stratum features --engine partitioned``: from the folder, the table of the local engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality

CONFIG = GeneratorConfig(n_addresses=300, seed=2)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("features-partitioned")
    generate_municipality(CONFIG, base / "sources", base / "truth.parquet")
    return base / "sources"


def run(args: list[str], home: Path) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_MLFLOW_URI": "", "STRATUM_AS_OF": None}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, " ".join(result.output.split())


def features(sources: Path, out: Path, *extra: str) -> list[str]:
    return [
        "features",
        "--sources",
        str(sources),
        "--as-of",
        "2026-06-01",
        "--out",
        str(out),
        *extra,
    ]


def test_partitioned_from_the_folder_writes_the_local_table(sources: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, text = run(features(sources, tmp_path / "local.parquet"), home)
    assert code == 0, text
    args = features(sources, tmp_path / "part.parquet", "--engine", "partitioned")
    code, text = run([*args, "--partitions", "3", "--workers", "2"], home)
    assert code == 0, text
    local = pd.read_parquet(tmp_path / "local.parquet")
    parted = pd.read_parquet(tmp_path / "part.parquet")
    # written partition by partition, as each is done: the same rows, read by address
    assert pq.ParquetFile(tmp_path / "part.parquet").metadata.num_row_groups == 3
    parted = parted.set_index("address_id").loc[local["address_id"]].reset_index()
    pd.testing.assert_frame_equal(local, parted, check_exact=False, rtol=1e-9)


def test_partitioned_refuses_a_date_after_the_extract(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    args = ["features", "--sources", str(sources), "--as-of", "2031-01-01", "--out", str(out)]
    code, text = run([*args, "--engine", "partitioned"], tmp_path / "home")
    assert code == 2 and "2031-01-01 is after the extract date of the sources" in text, text
    assert not out.exists()


def test_partitioned_reports_a_broken_folder(sources: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in sources.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    water = pd.read_parquet(broken / "water_usage.parquet")
    water.loc[3, "volume_m3"] = -1.0
    water.to_parquet(broken / "water_usage.parquet", index=False)
    out = tmp_path / "f.parquet"
    code, text = run(features(broken, out, "--engine", "partitioned"), tmp_path / "home")
    assert code == 1 and "water_usage" in text and "volume_m3" in text, text
    assert not out.exists()


def test_workers_need_the_partitioned_engine(sources: Path, tmp_path: Path) -> None:
    code, text = run(features(sources, tmp_path / "f.parquet", "--workers", "2"), tmp_path / "h")
    assert code == 2 and "--workers needs --engine partitioned" in text
