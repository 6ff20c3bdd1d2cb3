"""Raw CSV files are read in blocks cut at line ends outside quotes, never read ahead."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from stratum_ml.pseudonymise.run import csv_blocks, read_raw_batches

TRICKY = (
    "\ufeffbsn,naam,opmerking\r\n"
    '111222333,"de Vries","een ""citaat"" met\r\neen regeleinde"\r\n'
    "123456782,Jansen,\r\n"
    "\r\n"
    '999999990,"van der Berg","a,b"\r\n'
    "111222333,Bakker,laatste regel zonder regeleinde"
)


def _whole(path: Path) -> pa.Table:
    names = ["bsn", "naam", "opmerking"]
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in names},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )


@pytest.mark.parametrize("block_bytes", [1, 7, 40, 1 << 20])
def test_blocks_join_to_the_file_and_cut_only_outside_quotes(
    tmp_path: Path, block_bytes: int
) -> None:
    path = tmp_path / "raw.csv"
    path.write_bytes(TRICKY.encode())
    blocks = list(csv_blocks(path, block_bytes))
    headers = {h for h, _ in blocks}
    assert headers == {b"bsn,naam,opmerking\r\n"}  # the byte order mark is gone
    body = b"".join(b for _, b in blocks)
    assert TRICKY.encode().endswith(body)
    for _, block in blocks:
        assert block.count(b'"') % 2 == 0, "a block was cut inside a quoted field"


@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_batches_hold_the_same_rows_as_one_whole_read(tmp_path: Path, chunk_rows: int) -> None:
    path = tmp_path / "raw.csv"
    head, body = TRICKY.split("\r\n", 1)
    path.write_bytes((head + "\r\n" + (body + "\r\n") * 3000).encode())  # about 400 KiB
    whole = _whole(path).select(["bsn", "opmerking"])
    batches = list(read_raw_batches(path, ["bsn", "opmerking"], chunk_rows=chunk_rows))
    read = pa.Table.from_batches(batches).select(["bsn", "opmerking"])
    if chunk_rows < 1000:  # 64 KiB blocks at the least: a 400 KiB file is cut
        assert len(batches) > 1
    assert read.to_pylist() == whole.to_pylist()
    assert read.column("opmerking")[0].as_py() == 'een "citaat" met\r\neen regeleinde'
