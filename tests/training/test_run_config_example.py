"""examples/run.yaml loads, and documents the defaults exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stratum_ml.training.config import RunConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "run.yaml"


def test_example_run_config_equals_the_defaults() -> None:
    assert RunConfig.from_yaml(EXAMPLE) == RunConfig()


def test_example_names_every_setting() -> None:
    written = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    assert set(written) == set(RunConfig.model_fields)


def test_a_changed_example_is_read(tmp_path: Path) -> None:
    text = EXAMPLE.read_text("utf-8").replace("headline_k: 100", "headline_k: 250")
    changed = tmp_path / "run.yaml"
    changed.write_text(text, "utf-8")
    assert RunConfig.from_yaml(changed).headline_k == 250


def test_a_misspelt_setting_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("headline_kk: 100\n", "utf-8")
    with pytest.raises(ValueError, match="run.yaml: invalid run config"):
        RunConfig.from_yaml(bad)
