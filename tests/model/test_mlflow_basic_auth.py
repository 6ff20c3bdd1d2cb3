"""A team's MLflow with authentication (issue 11, item 7): ``mlflow server --app-name basic-auth``.

The server is started as the README shows. Without credentials nothing can be
read; a user with the default READ permission can read the registry (what the
service needs) but cannot move the ``champion`` alias; an admin promotes through
the signed promotion record, and a champion alias moved by hand by a user who
may write is still not followed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client

from stratum_ml.config import Settings
from stratum_ml.model.promotion import PROMOTION_PURPOSE, verified_champion
from stratum_ml.model.registry import CHAMPION
from stratum_ml.model.store import client_for, configure_mlflow
from stratum_ml.serving.champion_watch import ChampionWatch
from stratum_ml.signing import load_signing_key
from stratum_ml.training.promotion import commit_promotion
from tests.notify.conftest import free_port

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "a-long-admin-password-for-tests"
VIEWER_PASSWORD = "a-long-viewer-password-for-tests"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server --app-name basic-auth`` on 127.0.0.1, as the README shows."""
    folder = tmp_path_factory.mktemp("mlflow-auth")
    config = folder / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        "utf-8",
    )
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }
    command = [
        sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with open(folder / "server.log", "w", encoding="utf-8") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log_text = (folder / "server.log").read_text("utf-8")[-3000:]
                pytest.fail(f"mlflow server --app-name basic-auth did not start:\n{log_text}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(30)
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)


def as_user(monkeypatch: pytest.MonkeyPatch, user: str | None, password: str = "") -> None:
    if user is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_the_registry_behind_basic_auth(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRATUM_SIGNING_KEYS_DIR", raising=False)
    settings = Settings(home=tmp_path / "home", mlflow_uri=mlflow_server, model_name="auth")
    name = settings.model_name

    as_user(monkeypatch, None)
    with pytest.raises(MlflowException, match="401|nauthori|credentials"):
        client_for(settings).search_registered_models()

    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    get_app_client("basic-auth", tracking_uri=mlflow_server).create_user(
        username="viewer", password=VIEWER_PASSWORD
    )
    experiment_id = configure_mlflow(settings)
    client = client_for(settings)
    client.create_registered_model(name)
    for _ in range(2):
        run = client.create_run(experiment_id)
        client.set_terminated(run.info.run_id, "FINISHED")
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    commit_promotion(
        client,
        name,
        "1",
        previous_champion=None,
        remove_challenger=False,
        fairness_passed=True,
        reasons=["fairness gate: passed"],
        acceptance={},
        version_tags={"promotion_decision": "promoted"},
        settings=settings,
    )

    # the service's reader: READ is enough to resolve the verified champion
    as_user(monkeypatch, "viewer", VIEWER_PASSWORD)
    assert ChampionWatch(settings).startup().version == "1"
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|403|ermission"):
        client_for(settings).set_registered_model_alias(name, CHAMPION, "2")

    # a user who may write moves the alias by hand: still not followed
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    client.set_registered_model_alias(name, CHAMPION, "2")
    as_user(monkeypatch, "viewer", VIEWER_PASSWORD)
    key = load_signing_key(PROMOTION_PURPOSE, settings=settings)
    check = verified_champion(client_for(settings), name, key)
    assert (check.version, check.alias, check.clean) == ("1", "2", False)
