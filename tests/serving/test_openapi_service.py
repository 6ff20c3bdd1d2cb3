"""schemathesis against the running service: the OpenAPI document is true (slow, issue 11.8).

A copy of the session service's state (model, run, keys, store) is served by a
second ``bentoml serve``, so that the fuzzed decisions, visit outcomes and pauses
do not reach the other service tests. For each role, schemathesis runs every
check on the operations that role may call, with a valid key of that role, and
on the public endpoints; it must find nothing. What it is told about the 422s
that JSON Schema cannot state is in ``schemathesis.toml`` beside this file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stratum_ml.serving.auth import PERMISSIONS, Role
from stratum_ml.serving.launch import start_service

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = [pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 25


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_schemathesis_finds_nothing_for_any_role(server: Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(
        server.home, home, ignore=shutil.ignore_patterns("bentoml", "server.log", "*.lock")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
    env.update(
        STRATUM_HOME=str(home),
        BENTOML_HOME=str(tmp_path / "bentoml"),
        # schemathesis is one client sending thousands of calls with one key
        STRATUM_BURST_PER_ADDRESS="1000000",
        STRATUM_BURST_PER_KEY="1000000",
        STRATUM_BAD_KEYS_BURST="1000000",
        STRATUM_KEY_LOCK_AFTER="1000000",
    )
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with open(tmp_path / "server.log", "w", encoding="utf-8") as log:
        running = start_service(
            home / "sources", port=_free_port(), as_of=server.as_of, env=env, log=log
        )
        try:
            running.wait_ready(240)
            for role in Role:
                operations = [f"--include-operation-id={e.value}" for e in PERMISSIONS[role]]
                if role is Role.APPLICATION:
                    operations.append("--include-operation-id-regex=^public")
                result = subprocess.run(
                    [
                        str(schemathesis),
                        f"--config-file={CONFIG}",
                        "run",
                        f"{running.url}/docs.json",
                        "--checks=all",
                        f"--header=Authorization: Bearer {server.keys[role]}",
                        *operations,
                        f"--max-examples={EXAMPLES}",
                        "--seed=11",
                        "--workers=1",
                        "--no-shrink",
                        "--no-color",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    cwd=tmp_path,
                )
                report = result.stdout[-6000:] + result.stderr[-2000:]
                assert result.returncode == 0, f"{role.value}:\n{report}"
                assert " passed" in result.stdout and "failure" not in result.stdout.lower()
        finally:
            running.stop()
