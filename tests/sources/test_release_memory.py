"""Handing freed memory back to the system leaves Arrow and numpy working."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from stratum_ml.io import release_free_memory


def test_memory_freed_and_released_can_be_allocated_again() -> None:
    strings = pa.array([f"{i:016d}" for i in range(200_000)])
    in_use = pa.total_allocated_bytes()
    assert in_use >= strings.nbytes
    del strings
    assert pa.total_allocated_bytes() < in_use
    release_free_memory()
    again = pa.array(["x"] * 10)
    assert again.to_pylist() == ["x"] * 10
    assert np.ones(1_000_000).sum() == 1_000_000
