"""The key file: 0600, never overwritten, never inside a source folder, rights checked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from stratum_ml.pseudonymise.keys import (
    KeyFileError,
    PseudonymKey,
    load_key_file,
    write_key_file,
)


def test_created_with_mode_0600_and_loads(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = PseudonymKey.new()
        path = write_key_file(key, tmp_path / "k" / "pseudonym.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key_file(path)
    assert loaded.secret == key.secret and len(key.secret) == 32
    assert loaded.key_id == key.key_id
    assert key.secret.hex() not in repr(loaded)
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temporary left


def test_never_overwritten(tmp_path: Path) -> None:
    path = write_key_file(PseudonymKey.new(), tmp_path / "pseudonym.key")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="never overwritten"):
        write_key_file(PseudonymKey.new(), path)
    assert path.read_bytes() == before


def test_refused_inside_a_source_folder(town, tmp_path: Path) -> None:  # noqa: ANN001
    for folder in (town.sources, town.out):
        with pytest.raises(KeyFileError, match="inside the source folder"):
            write_key_file(PseudonymKey.new(), folder / "sub" / "pseudonym.key")
        assert not (folder / "sub").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_rights_checked_when_loading(tmp_path: Path, mode: int) -> None:
    path = write_key_file(PseudonymKey.new(), tmp_path / "pseudonym.key")
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600") as err:
        load_key_file(path)
    assert json.loads(path.read_text())["secret"] not in str(err.value)


def test_edited_or_foreign_file_refused_without_echo(tmp_path: Path) -> None:
    path = write_key_file(PseudonymKey.new(), tmp_path / "pseudonym.key")
    body = json.loads(path.read_text())
    body["secret"] = "ab" * 32
    path.write_text(json.dumps(body))
    with pytest.raises(KeyFileError, match="key_id does not match") as err:
        load_key_file(path)
    assert "ab" * 32 not in str(err.value)
    other = tmp_path / "other.key"
    other.write_text("secret: 0123456789abcdef")
    other.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a stratum-ml pseudonym key file") as err:
        load_key_file(other)
    assert "0123456789abcdef" not in str(err.value)
    with pytest.raises(KeyFileError, match="no pseudonym key file"):
        load_key_file(tmp_path / "missing.key")
