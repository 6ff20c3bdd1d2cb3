"""``bentoml serve`` with two workers (slow): concurrent writes, one audit chain, one
set of rate limits, one run made at start-up (issue 11, item 10)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import func, select

from stratum_ml.serving.auth import Role
from stratum_ml.serving.key_lockout import LockoutPolicy, record_wrong_secret
from stratum_ml.serving.launch import start_service
from stratum_ml.sources import load_sources
from stratum_ml.store import open_store
from stratum_ml.store.tables import ScoringRunRow

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = [pytest.mark.slow]

#: the per-key limit of the test: one bucket of 40 for both workers, refilling slowly
BURST_PER_KEY = 40
RATE_PER_KEY = 0.5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in listed.stdout.split()]


def _loaded(pid: int) -> str:
    """The shared objects this process has mapped (its /proc maps)."""
    return Path(f"/proc/{pid}/maps").read_text(encoding="utf-8")


def _post(url: str, key: str, path: str, body: dict[str, object]) -> int:
    """One call on a connection of its own, so that the kernel spreads them over workers."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post(path, json=body, headers=headers).status_code


def test_two_workers_share_one_audit_chain_and_one_rate_limit(
    server: Server, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'stratum.db'}"  # no run stored: the workers make it
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
    env.update(
        STRATUM_HOME=str(server.home),
        BENTOML_HOME=str(server.home / "bentoml"),
        STRATUM_DATABASE_URL=store_url,
        STRATUM_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        STRATUM_BURST_PER_ADDRESS="1000000",
        # the locked key's refusals below must not empty the address's bad-key bucket,
        # which the shared home's rate-limit file keeps for the other tests' server
        STRATUM_BAD_KEYS_BURST="1000000",
        STRATUM_BURST_PER_KEY=str(BURST_PER_KEY),
        STRATUM_RATE_PER_KEY=str(RATE_PER_KEY),
    )
    tables = load_sources(server.sources)
    a = tables.addresses
    dwellings = a.loc[a["use_purpose"] == "woonfunctie", "address_id"].tolist()[:24]
    with open(tmp_path / "server.log", "w", encoding="utf-8") as log:
        running = start_service(
            server.sources, port=_free_port(), as_of=server.as_of, env=env, log=log, workers=2
        )
        try:
            running.wait_ready(240)
            workers = _children(running.process.pid)
            assert len(workers) >= 2, workers
            for worker in workers:  # uvicorn took the C event loop and HTTP parser
                maps = _loaded(worker)
                assert "/uvloop/loop." in maps and "/httptools/parser/parser." in maps
            analyst = server.keys[Role.ANALYST]
            decision = {"decision": "decline", "reason": "already_in_handling"}
            with ThreadPoolExecutor(12) as pool:
                written = list(
                    pool.map(
                        lambda address: _post(
                            running.url, analyst, "/decision", {"address_id": address, **decision}
                        ),
                        dwellings,
                    )
                )
            assert written == [200] * len(dwellings)
            # one key, many connections over both workers: the burst holds once, not twice
            application = server.keys[Role.APPLICATION]
            body = {"address_ids": dwellings[:1]}
            start = time.monotonic()
            with ThreadPoolExecutor(12) as pool:
                statuses = list(
                    pool.map(lambda _: _post(running.url, application, "/score", body), range(120))
                )
            elapsed = time.monotonic() - start
            allowed = statuses.count(200)
            assert set(statuses) <= {200, 429}
            assert BURST_PER_KEY <= allowed <= BURST_PER_KEY + RATE_PER_KEY * elapsed + 1, (
                allowed,
                elapsed,
            )
            # each worker keeps the key's lock-out read until the store changes: a lock
            # stored by another process is in force at the next call, in both workers
            key_id = application.split("_")[1]
            other = open_store(store_url)
            try:
                assert record_wrong_secret(other, key_id, LockoutPolicy(max_wrong=1))
            finally:
                other.close()
            with ThreadPoolExecutor(12) as pool:
                statuses = list(
                    pool.map(lambda _: _post(running.url, application, "/score", body), range(24))
                )
            assert statuses == [401] * 24
        finally:
            assert running.stop() == 0
    store = open_store(store_url)
    try:
        with store.transaction() as session:
            runs = session.scalar(select(func.count()).select_from(ScoringRunRow))
        assert runs == 1  # both workers started without a stored run; one made it
    finally:
        store.close()
    verified = subprocess.run(
        [sys.executable, "-m", "stratum_ml.cli", "audit", "verify", str(tmp_path / "audit.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain intact" in verified.stdout and "signed checkpoint" in verified.stdout
