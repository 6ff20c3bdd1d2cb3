"""A real scoring service for the service tests: one ``bentoml serve`` for the session.

The fixture builds what ``make demo`` builds, small: a synthetic municipality
(4,000 addresses), a model trained on it and logged to an MLflow store in a
temporary STRATUM_HOME, promoted to ``champion``, one API key per role (and a
revoked one); then it starts ``bentoml serve`` on 127.0.0.1 through
:func:`stratum_ml.serving.launch.start_service` as of the extract date (the
service stores its run of that date at start-up), waits for ``/readyz`` and
stops it with SIGTERM at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratum_ml.config import Settings
from stratum_ml.evaluation.gates import FairnessGateConfig
from stratum_ml.serving.auth import Role, create_key, revoke_key
from stratum_ml.serving.launch import start_service
from stratum_ml.sources import load_audit_tables, load_sources
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
from stratum_ml.training.config import RunConfig
from stratum_ml.training.registry import promote
from stratum_ml.training.tracking import log_training_run
from stratum_ml.training.train import train_model

#: the generator's extract date: every source row lies before it
AS_OF = dt.date(2026, 11, 1)
READY_TIMEOUT_S = 240


@dataclass(frozen=True)
class Server:
    """The running service and what the tests need to call and inspect it."""

    url: str
    as_of: dt.date
    home: Path
    sources: Path
    keys: dict[Role, str]
    key_ids: dict[Role, str]
    revoked_key: str
    model_version: str

    @property
    def audit_log(self) -> Path:
        return self.home / "audit.jsonl"

    @property
    def store_url(self) -> str:
        """The service's operational store: the default SQLite file under its home."""
        return f"sqlite:///{self.home / 'stratum.db'}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("stratum-home")
    sources = home / "sources"
    generate_municipality(
        GeneratorConfig(n_addresses=4000, seed=1), sources, home / "truth.parquet"
    )
    settings = Settings(home=home, mlflow_uri=None)
    tables = load_sources(sources)
    config = RunConfig(
        evaluate_mitigations=False,
        # 4,000 addresses give too few visits per group for the default gate; these
        # tests check the service, so the gate is loosened rather than bypassed
        fairness=FairnessGateConfig(min_ratio=0.01, max_ratio=100.0),
    )
    outcome = train_model(tables, load_audit_tables(sources), config)
    registered = log_training_run(outcome, settings=settings, source_dir=sources)
    promotion = promote(settings=settings)
    assert promotion.promoted, promotion.reasons

    keys_file = home / "api_keys.json"
    keys: dict[Role, str] = {}
    key_ids: dict[Role, str] = {}
    for role in Role:
        key_ids[role], keys[role] = create_key(keys_file, role, f"test {role.value}")
    revoked_id, revoked_key = create_key(keys_file, Role.ADMIN, "test revoked admin")
    revoke_key(keys_file, revoked_id)

    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
    env.update(
        STRATUM_HOME=str(home),
        BENTOML_HOME=str(home / "bentoml"),
        # a new champion is looked for every second (default 30 s), so that the test
        # that promotes one sees it picked up quickly
        STRATUM_CHAMPION_CHECK_SECONDS="1",
        # only visits on or after the run's date keep an address off the list: the
        # service tests compare lists by rank 1..k and the summary with the list, and
        # the sources' own visits of the last 180 days would leave gaps in them (the
        # 180-day default is tested in test_work_list.py)
        STRATUM_COOL_OFF_DAYS="0",
        # one worker: these tests follow one process's champion watch and checkpoints in
        # order; several workers are tested on their own server (test_workers_service.py)
        STRATUM_WORKERS="1",
        # the service tests are one client sending thousands of calls, bad keys and wrong
        # secrets among them; the rate limits and the lock-out are tested in
        # test_gate_security.py
        STRATUM_BURST_PER_ADDRESS="1000000",
        STRATUM_BURST_PER_KEY="1000000",
        STRATUM_BAD_KEYS_BURST="1000000",
        STRATUM_KEY_LOCK_AFTER="1000000",
    )
    port = _free_port()
    with open(home / "server.log", "w", encoding="utf-8") as log:
        running = start_service(sources, port=port, as_of=AS_OF, env=env, log=log)
        try:
            running.wait_ready(READY_TIMEOUT_S)
            yield Server(
                url=running.url,
                as_of=AS_OF,
                home=home,
                sources=sources,
                keys=keys,
                key_ids=key_ids,
                revoked_key=revoked_key,
                model_version=registered.version,
            )
        finally:
            running.stop()
