"""The data steward's commands: keys pseudonym create|rotate, pseudonymise, reidentify."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app

from .conftest import MAPPING_FILE, Town


def _run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_create_pseudonymise_reidentify_rotate(
    town: Town, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "steward" / "pseudonym.key"
    code, out = _run("keys", "pseudonym", "create", "--out", key)
    assert code == 0 and stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = json.loads(key.read_text())["secret"]
    assert secret not in out
    code, out = _run("keys", "pseudonym", "create", "--out", key)
    assert code == 2 and "never overwritten" in out

    src = tmp_path / "sources"
    args = ["--raw", town.raw, "--mapping", MAPPING_FILE, "--key-file", key]
    code, out = _run("pseudonymise", *args, "--out", src)
    assert code == 0, out
    assert "dropped (not mapped): voorletters" in out and secret not in out
    assert _run("validate", src)[0] == 0

    monkeypatch.setenv("STRATUM_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    bsn = pd.read_csv(town.raw / "brp_verblijfplaatsen.csv", dtype=str)["bsn"][0]
    pseudonym = pd.read_parquet(src / "registrations.parquet")["person_id"][0]
    args = ["--raw", town.raw, "--mapping", MAPPING_FILE, "--key-file", key]
    code, out = _run("reidentify", "--pseudonym", pseudonym, *args)
    assert code == 2 and "case id" in out and bsn not in out
    reason = "onderzoek adresfraude, art. 4.1 BRP-verordening"
    code, out = _run(
        "reidentify", "--pseudonym", pseudonym, *args, "--case", "Z-9", "--reason", reason
    )
    assert code == 0 and bsn in out, out
    log = (tmp_path / "audit.jsonl").read_text()
    assert pseudonym in log and "Z-9" in log and bsn not in log and secret not in log

    code, out = _run(
        "keys", "pseudonym", "rotate", "--key", key, "--out", tmp_path / "steward" / "new.key",
        "--mapping", MAPPING_FILE, "--raw", town.raw, "--sources", src,
    )  # fmt: skip
    assert code == 0, out
    assert pd.read_parquet(src / "registrations.parquet")["person_id"][0] != pseudonym
    assert secret not in out


def test_key_with_open_rights_and_bad_mapping_are_refused(town: Town, tmp_path: Path) -> None:
    key = tmp_path / "pseudonym.key"
    assert _run("keys", "pseudonym", "create", "--out", key)[0] == 0
    key.chmod(0o644)
    code, out = _run(
        "pseudonymise", "--raw", town.raw, "--mapping", MAPPING_FILE, "--key-file", key,
        "--out", tmp_path / "src",
    )  # fmt: skip
    assert code == 2 and "chmod 600" in " ".join(out.split())  # rich may wrap it
    key.chmod(0o600)
    bad = tmp_path / "mapping.yaml"
    bad.write_text("version: 1\ntables: {}\n")
    code, out = _run(
        "pseudonymise", "--raw", town.raw, "--mapping", bad, "--key-file", key,
        "--out", tmp_path / "src",
    )  # fmt: skip
    assert code == 2 and "tables.addresses: a required contract table is not mapped" in out
    assert not (tmp_path / "src").exists()
