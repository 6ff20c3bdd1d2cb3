"""The state folder is its owner's only: home 0700, every file in it 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """Start from the usual umask (022), under which MLflow made its store 0644 before."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _open_to_others(home: Path) -> list[str]:
    """Everything under (and including) ``home`` that group or others may use."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(home.parent)} {oct(mode)}")
    return found


def test_a_new_home_and_its_mlflow_store_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "state"
    monkeypatch.setenv("STRATUM_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "demo"]).exit_code == 0
    promoted = runner.invoke(app, ["promote"])  # nothing to promote, after opening MLflow
    assert promoted.exit_code != 0
    assert (home / "mlflow.db").is_file() and (home / "api_keys.json").is_file()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert _open_to_others(home) == []


def test_a_home_made_open_by_an_earlier_version_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "state"
    artifacts = home / "mlartifacts" / "1" / "abc" / "artifacts"
    artifacts.mkdir(parents=True, mode=0o755)
    for folder in [home, *home.rglob("*")]:
        folder.chmod(0o755)
    (home / "mlflow.db").write_bytes(b"")
    (artifacts / "model_card.md").write_text("card")
    for file in (home / "mlflow.db", artifacts / "model_card.md"):
        file.chmod(0o644)
    assert _open_to_others(home)
    monkeypatch.setenv("STRATUM_HOME", str(home))
    assert CliRunner().invoke(app, ["keys", "list"]).exit_code == 0
    assert _open_to_others(home) == []
    assert stat.S_IMODE((home / "mlflow.db").stat().st_mode) == 0o600


def test_mlflow_walks_a_home_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service looks the champion up every 30 s: the home (every run's artifacts) is
    walked once, not at each lookup; a home removed meanwhile is made again."""
    from stratum_ml.config import Settings
    from stratum_ml.model import store

    walked: list[Path] = []

    def counting(home: Path, *, create: bool = True) -> None:
        walked.append(home)
        secure_home(home, create=create)

    secure_home = store.secure_home
    monkeypatch.setattr(store, "secure_home", counting)
    settings = Settings(home=tmp_path / "state", mlflow_uri=None)
    for _ in range(3):
        store.configure_mlflow(settings)
    assert walked == [settings.home.absolute()]
    (settings.home / "mlflow.db").unlink()
    settings.home.rmdir()
    store.configure_mlflow(settings)
    assert len(walked) == 2 and (settings.home / "mlflow.db").is_file()
    assert stat.S_IMODE(settings.home.stat().st_mode) == 0o700
