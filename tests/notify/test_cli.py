"""``stratum subscriptions`` and ``stratum outbox``: admin commands, audited (both databases)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.config import Settings
from stratum_ml.notify import DeliveryConfig, SmtpConfig, add_subscription, deliver
from stratum_ml.runs import RunModel, create_run
from stratum_ml.serving.audit import read_last, verify_log
from stratum_ml.store import Store
from stratum_ml.synthetic.generate import Municipality
from tests.notify.conftest import Receiver
from tests.runs.conftest import FIRST


def run(args: list[str], home: Path, url: str) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_DATABASE_URL": url, "STRATUM_AUDIT_LOG": ""}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_subscriptions_add_list_remove_are_audited_without_the_address(
    tmp_path: Path, store_url: str
) -> None:
    code, out = run(
        ["subscriptions", "add", "--webhook", "http://hooks.example.org/x"], tmp_path, store_url
    )
    assert code == 2 and "must use https" in out, out
    code, out = run(["subscriptions", "add"], tmp_path, store_url)
    assert code == 2 and "exactly one of --email and --webhook" in out, out

    code, out = run(
        ["subscriptions", "add", "--email", "wijk@example.org", "--district", "WK1", "--json"],
        tmp_path,
        store_url,
    )
    assert code == 0, out
    mail = json.loads(out)
    assert mail["secret"] is None and mail["district"] == "WK1" and mail["role"] == "analyst"
    code, out = run(
        ["subscriptions", "add", "--webhook", "https://hooks.example.org/x", "--role", "admin"],
        tmp_path,
        store_url,
    )
    assert code == 0 and "signing secret (shown once" in out, out
    code, out = run(["subscriptions", "list", "--json"], tmp_path, store_url)
    listed = json.loads(out)
    assert [s["channel"] for s in listed] == ["email", "webhook"]
    assert all("secret" not in s for s in listed)
    code, out = run(["subscriptions", "remove", mail["subscription_id"]], tmp_path, store_url)
    assert code == 0 and f"removed subscription {mail['subscription_id']}" in out, out
    code, out = run(["subscriptions", "remove", mail["subscription_id"]], tmp_path, store_url)
    assert code == 2 and "was removed on" in out, out

    log = tmp_path / "audit.jsonl"
    assert verify_log(log).ok
    records = read_last(log, 10)
    assert [(r["endpoint"], r["role"]) for r in records] == [
        ("subscriptions add", "admin"),
        ("subscriptions add", "admin"),
        ("subscriptions remove", "admin"),
    ]
    assert "district WK1" in records[0]["detail"]
    assert all("example.org" not in r["detail"] for r in records)


def test_a_dead_letter_is_listed_retried_and_delivered_from_the_shell(
    tmp_path: Path,
    store_url: str,
    store: Store,
    runs_town: Municipality,
    run_model: RunModel,
    notify_settings: Settings,
    receiver: Receiver,
) -> None:
    add_subscription(store, "webhook", receiver.url, role="admin", created_by="t")
    create_run(runs_town.sources, FIRST, run_model, store, settings=notify_settings, top_k=50)
    once = DeliveryConfig(SmtpConfig("127.0.0.1", 1, "s@example.org"), max_attempts=1)
    (dead_id,) = deliver(store, once).dead  # the receiver is not up

    code, out = run(["outbox", "list", "--dead", "--json"], tmp_path, store_url)
    assert code == 0, out
    (listed,) = json.loads(out)
    assert listed["message_id"] == dead_id and "cannot be reached" in listed["last_error"]
    code, out = run(["outbox", "retry", "999999"], tmp_path, store_url)
    assert code == 2 and "no message 999999" in out, out
    code, out = run(["outbox", "retry", str(dead_id)], tmp_path, store_url)
    assert code == 0 and "due again" in out, out
    receiver.start()
    code, out = run(["outbox", "deliver", "--json"], tmp_path, store_url)
    assert code == 0 and json.loads(out)["delivered"] == [dead_id], out
    assert len(receiver.received) == 1
    code, out = run(["outbox", "list", "--dead"], tmp_path, store_url)
    assert code == 0 and "the outbox is empty of dead letters" in out, out
    (record,) = read_last(tmp_path / "audit.jsonl", 5)
    assert record["endpoint"] == "outbox retry" and f"message {dead_id}" in record["detail"]
