"""The port pre-check of ``stratum serve`` (fast): a restart right after a crash is not refused."""

from __future__ import annotations

import socket

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
