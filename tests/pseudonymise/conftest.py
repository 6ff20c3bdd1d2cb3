"""A small generated municipality with its raw extracts, a key and the pseudonymised folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from stratum_ml.pseudonymise.keys import PseudonymKey, load_key_file, write_key_file
from stratum_ml.pseudonymise.mapping import Mapping, load_mapping
from stratum_ml.pseudonymise.run import pseudonymise
from stratum_ml.synthetic import GeneratorConfig, generate_municipality

MAPPING_FILE = Path(__file__).parents[2] / "examples" / "mapping.yaml"
TOWN = GeneratorConfig(n_addresses=1_500, seed=3, chunk_size=600)


@dataclass(frozen=True)
class Town:
    """The generated folders of one small municipality."""

    sources: Path  # what the generator writes directly (its own pseudonyms)
    raw: Path  # the raw extracts (BSNs, names, KvK numbers)
    key: PseudonymKey
    mapping: Mapping
    out: Path  # the raw extracts pseudonymised with ``key`` (CSV, to scan its bytes)


@pytest.fixture(scope="session")
def town(tmp_path_factory: pytest.TempPathFactory) -> Town:
    base = tmp_path_factory.mktemp("town")
    generate_municipality(
        TOWN, out_dir=base / "sources", truth_file=base / "truth.parquet", raw_dir=base / "raw"
    )
    write_key_file(PseudonymKey.new(), base / "keys" / "pseudonym.key")
    key = load_key_file(base / "keys" / "pseudonym.key")
    mapping = load_mapping(MAPPING_FILE)
    pseudonymise(base / "raw", mapping, base / "out", key, fmt="csv", chunk_rows=1_000)
    return Town(base / "sources", base / "raw", key, mapping, base / "out")
