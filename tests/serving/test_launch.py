"""The port pre-check of ``stratum serve`` (fast): a restart right after a crash is not refused."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stratum_ml.serving.launch import LaunchError, check_port_free


def _port_in_time_wait() -> int:
    """A port whose server closed an accepted connection first: it lingers in TIME-WAIT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first, as a killed server's kernel does
        client.recv(1)  # sees the FIN
        client.close()
    return port


def test_a_port_with_connections_in_time_wait_is_free() -> None:
    port = _port_in_time_wait()
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the old probe
    with plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    check_port_free("127.0.0.1", port)


def test_a_port_someone_listens_on_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with pytest.raises(LaunchError, match="cannot listen"):
            check_port_free("127.0.0.1", port)


def test_a_process_that_asked_to_die_with_its_parent_does(tmp_path: Path) -> None:
    """The worker's side: a SIGKILL of its parent takes it along (Linux prctl)."""
    pid_file = tmp_path / "grandchild.pid"
    grandchild = (
        "import os, time; from stratum_ml.serving.launch import die_with_parent; "
        f"assert die_with_parent(); open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        "time.sleep(60)"
    )
    spawn = "import subprocess, sys, time; "
    spawn += f"subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", spawn], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the grandchild did not start"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
            assert time.monotonic() < deadline, "the grandchild outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (FileNotFoundError, IndexError):
        return "Z"
