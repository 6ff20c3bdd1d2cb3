"""The running service against a tampered registry and with an anchored audit log (issue 11).

Item 7: a champion alias moved outside ``stratum promote`` is not followed; the
``model`` endpoint, the server log and an admin webhook say so. Item 5: the service
checkpoints its audit log at start and at a clean stop, and ``stratum audit
verify`` checks the log against those checkpoints.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.config import Settings
from stratum_ml.model.registry import CHAMPION
from stratum_ml.model.store import client_for
from stratum_ml.notify.subscriptions import add_subscription, remove_subscription
from stratum_ml.serving.audit_anchor import stored_checkpoints
from stratum_ml.serving.auth import Role
from stratum_ml.serving.launch import start_service
from stratum_ml.store import open_store
from tests.notify.conftest import Receiver, free_port
from tests.serving.conftest import AS_OF, READY_TIMEOUT_S

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `__get_pydantic_core_schema__`:DeprecationWarning"),
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(free_port()).start()
    try:
        yield hook
    finally:
        hook.stop()


def model_info(server: Server) -> Any:
    response = httpx.post(
        f"{server.url}/model",
        json={},
        headers={"Authorization": f"Bearer {server.keys[Role.ADMIN]}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_an_alias_moved_by_hand_is_not_followed_and_the_admin_is_told(
    server: Server, receiver: Receiver
) -> None:
    settings = Settings(home=server.home, mlflow_uri=None)
    client = client_for(settings)
    name = settings.model_name
    serving = model_info(server)["version"]
    assert model_info(server)["registry_problems"] == []
    store = open_store(server.store_url)
    hook = add_subscription(store, "webhook", receiver.url, role="admin", created_by="test")
    # someone in the MLflow UI registers a version of their own and makes it champion
    current = client.get_model_version(name, serving)
    rogue = client.create_model_version(name, current.source, current.run_id)
    client.set_registered_model_alias(name, CHAMPION, rogue.version)
    try:
        deadline = time.monotonic() + 60
        info = model_info(server)
        while not info["registry_problems"] and time.monotonic() < deadline:
            time.sleep(1)
            info = model_info(server)
        assert info["version"] == serving  # the last verified version keeps serving
        (problem,) = info["registry_problems"]
        assert f"points at version {rogue.version}" in problem
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.5)
        (_, body) = receiver.received[0]
        assert f"keeps serving version {serving}" in json.loads(body)["text"]
        assert "registry:" in (server.home / "server.log").read_text("utf-8")
    finally:
        client.set_registered_model_alias(name, CHAMPION, serving)
        remove_subscription(store, hook.subscription.subscription_id, removed_by="test")
        store.close()
    deadline = time.monotonic() + 60
    while model_info(server)["registry_problems"] and time.monotonic() < deadline:
        time.sleep(1)
    assert model_info(server)["registry_problems"] == []


def test_start_and_clean_stop_checkpoint_the_audit_log(server: Server) -> None:
    model_info(server)  # an audited answer: the head moves past any checkpoint so far
    store = open_store(server.store_url)
    try:
        before = stored_checkpoints(store, server.audit_log)
        assert "start" in [c.reason for c in before]
        # a second service on the same home, one worker (two workers each sign their
        # stop, see test_workers_service): started, then stopped cleanly
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
        env.update(
            STRATUM_HOME=str(server.home),
            BENTOML_HOME=str(server.home / "bentoml"),
            STRATUM_WORKERS="1",
        )
        with open(server.home / "second.log", "w", encoding="utf-8") as log:
            running = start_service(server.sources, port=free_port(), as_of=AS_OF, env=env, log=log)
            try:
                running.wait_ready(READY_TIMEOUT_S)
            finally:
                running.stop()
        added = stored_checkpoints(store, server.audit_log)[len(before) :]
        assert [c.reason for c in added] == ["start", "stop"]
    finally:
        store.close()
    env = {"STRATUM_HOME": str(server.home), "COLUMNS": "300"}
    verified = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "signed checkpoint(s)" in verified.stdout
