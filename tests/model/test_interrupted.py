"""What a killed process leaves (issue 11, item 6): RUNNING runs and temp files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from stratum_ml.config import Settings
from stratum_ml.io import atomic_path, remove_stale_temp_files
from stratum_ml.model.store import (
    TAG_OWNER_HOST,
    TAG_OWNER_PID,
    client_for,
    configure_mlflow,
    interrupted_runs_failed,
    owner_tags,
)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield Settings(home=tmp_path / "home", mlflow_uri=None)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_runs_of_killed_processes_are_marked_failed(settings: Settings) -> None:
    experiment_id = configure_mlflow(settings)
    client = client_for(settings)
    killed = client.create_run(experiment_id, tags={**owner_tags(), TAG_OWNER_PID: str(dead_pid())})
    alive = client.create_run(experiment_id, tags=owner_tags())  # this process: still writing
    elsewhere = client.create_run(
        experiment_id, tags={TAG_OWNER_HOST: "another-host", TAG_OWNER_PID: str(dead_pid())}
    )
    unowned = client.create_run(experiment_id)
    assert interrupted_runs_failed(settings) == [killed.info.run_id]
    status = {r: client.get_run(r.info.run_id).info.status for r in (killed, alive, elsewhere)}
    assert list(status.values()) == ["FAILED", "RUNNING", "RUNNING"]
    assert client.get_run(unowned.info.run_id).info.status == "RUNNING"
    assert interrupted_runs_failed(settings) == []


def test_a_killed_train_leaves_no_running_run_after_the_next_start(settings: Settings) -> None:
    """A real process starts a run and is killed with SIGKILL; the next start ends it."""
    code = (
        "import os, time, mlflow\n"
        "from stratum_ml.config import Settings\n"
        "from stratum_ml.model.store import client_for, configure_mlflow, owner_tags\n"
        f"s = Settings(home={str(settings.home)!r}, mlflow_uri=None)\n"
        "e = configure_mlflow(s)\n"
        "r = client_for(s).create_run(e, tags=owner_tags())\n"
        "print(r.info.run_id, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    assert child.stdout is not None
    run_id = child.stdout.readline().decode().strip()
    child.kill()
    child.wait()
    client = client_for(settings)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert interrupted_runs_failed(settings) == [run_id]
    assert client.get_run(run_id).info.status == "FAILED"


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "keys" / "api_keys.json") as mine:
        mine.write_text("{}")
        assert f".pid{os.getpid()}." in mine.name
        crashed = mine.with_name(mine.name.replace(f".pid{os.getpid()}.", f".pid{dead_pid()}."))
        crashed.write_text("{}")
        old = tmp_path / ".stratum.db.abc123.tmp"  # no process id: an older version's
        old.write_text("x")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        fresh = tmp_path / ".audit.jsonl.xyz.tmp"
        fresh.write_text("x")
        removed = remove_stale_temp_files(tmp_path)
        assert sorted(removed) == sorted([crashed, old])
        assert mine.exists() and fresh.exists()
    assert (tmp_path / "keys" / "api_keys.json").read_text() == "{}"
    assert remove_stale_temp_files(tmp_path / "missing") == []
