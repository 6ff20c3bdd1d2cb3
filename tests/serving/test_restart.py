"""A restart right after ``kill -9`` of the server (slow: a real ``bentoml serve``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from stratum_ml.serving.launch import preflight, start_service

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = [pytest.mark.slow]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in listed.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie holds no socket


def _gone(pids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            for p in pids:  # leave no orphan behind for the other tests
                if _alive(p):
                    os.kill(p, signal.SIGKILL)
            return False
        time.sleep(0.05)
    return True


def test_a_restart_right_after_kill_9_is_ready(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
    env.update(STRATUM_HOME=str(server.home), BENTOML_HOME=str(server.home / "bentoml"))
    with open(tmp_path / "first.log", "w", encoding="utf-8") as log:
        first = start_service(server.sources, port=port, as_of=server.as_of, env=env, log=log)
        first.wait_ready(240)
        # open connections at the moment of the crash, as a busy server has them
        clients = [httpx.Client(base_url=first.url, timeout=30) for _ in range(4)]
        for client in clients:
            assert client.get("/livez").status_code == 200
        workers = _children(first.process.pid)
        assert workers  # BentoML's worker, in a session of its own
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        for client in clients:
            client.close()
    # the workers die with the server (they used to live on, orphaned, holding the port)
    assert _gone(workers, within_s=10), "a worker outlived its killed server"
    monkeypatch.setenv("STRATUM_HOME", str(server.home))
    # at once: before, "Address already in use" for the minute the connections sat in TIME-WAIT
    preflight(server.sources, as_of=server.as_of, port=port)
    with open(tmp_path / "second.log", "w", encoding="utf-8") as log:
        second = start_service(server.sources, port=port, as_of=server.as_of, env=env, log=log)
        try:
            second.wait_ready(240)
            assert httpx.get(f"{second.url}/readyz", timeout=10).status_code == 200
        finally:
            second.stop()
