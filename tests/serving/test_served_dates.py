"""The served scoring date against the real service's set-up (slow: see ``conftest.server``).

``serve`` without ``--as-of`` serves the extract date of its sources; a later
date stops the start-up of the service itself, not only the launcher's checks.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from stratum_ml.serving.app_state import ScoringDateError, load_state
from stratum_ml.serving.launch import preflight

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_a_date_the_launcher_serves_the_extract_date(
    monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    monkeypatch.setenv("STRATUM_HOME", str(server.home))
    monkeypatch.delenv("STRATUM_AS_OF", raising=False)
    plan = preflight(server.sources, port=_free_port())
    assert plan.champion.version == server.model_version
    assert plan.extract.declared and plan.as_of == plan.extract.date == server.as_of
    assert plan.date_line == (
        f"scoring as of {server.as_of}, the extract date of the sources (declared in extract.json)"
    )


def test_the_service_refuses_to_start_after_the_extract_date(
    monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    monkeypatch.setenv("STRATUM_HOME", str(server.home))
    monkeypatch.setenv("STRATUM_SOURCES", str(server.sources))
    monkeypatch.setenv("STRATUM_AS_OF", "2031-01-01")
    with pytest.raises(ScoringDateError) as caught:
        load_state()
    message = str(caught.value)
    assert "2031-01-01 is after the extract date of the sources, " in message
    assert f"{server.as_of} (declared in extract.json)" in message
