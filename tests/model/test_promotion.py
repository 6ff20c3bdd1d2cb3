"""Promotion records (issue 11, items 6 and 7) on a real MLflow SQLite store.

A promotion is recorded as one signed decision, then applied write by write. A
kill after any number of those writes leaves a state that readers resolve to the
decided champion, and that the next ``promote`` (or start of the service)
completes. A champion moved or stripped outside ``stratum promote`` does not verify.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from stratum_ml.config import Settings
from stratum_ml.model.promotion import (
    PROMOTION_PURPOSE,
    TAG_PENDING,
    TAG_RECORD,
    PromotionRecord,
    apply_record,
    pending_record,
    record_promotion,
    verified_champion,
)
from stratum_ml.model.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    TAG_FAIRNESS_RISK_ACCEPTED,
    TAG_FAIRNESS_RISK_REASON,
    TAG_PROMOTION_DECISION,
    registered_aliases,
)
from stratum_ml.model.store import client_for, configure_mlflow
from stratum_ml.serving.champion_watch import ChampionWatch
from stratum_ml.signing import load_signing_key
from stratum_ml.training.promotion import commit_promotion, finish_interrupted


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One MLflow store for the module (creating one costs seconds); a model per test."""
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield tmp_path_factory.mktemp("promotions") / "home"
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


_names = itertools.count()


@pytest.fixture
def settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("STRATUM_SIGNING_KEYS_DIR", raising=False)
    monkeypatch.setenv("STRATUM_HOME", str(home))
    return Settings(home=home, mlflow_uri=None, model_name=f"promotions-{next(_names)}")


def registered(settings: Settings) -> MlflowClient:
    """Three registered versions: 1 is champion (promoted), 2 is challenger, 3 is new."""
    experiment_id = configure_mlflow(settings)
    client = client_for(settings)
    client.create_registered_model(settings.model_name)
    for _ in range(3):
        run = client.create_run(experiment_id)
        client.set_terminated(run.info.run_id, "FINISHED")
        client.create_model_version(
            settings.model_name, f"runs:/{run.info.run_id}/model", run.info.run_id
        )
    promote(client, settings, "1", None)
    client.set_registered_model_alias(settings.model_name, CHALLENGER, "2")
    return client


@pytest.fixture
def client(settings: Settings) -> MlflowClient:
    return registered(settings)


def promote(
    client: MlflowClient, settings: Settings, version: str, previous: str | None, **extra: Any
) -> PromotionRecord:
    tags = {TAG_PROMOTION_DECISION: "promoted", "promotion_reasons": "fairness gate: passed"}
    name = settings.model_name
    return commit_promotion(
        client,
        name,
        version,
        previous_champion=previous,
        remove_challenger=(registered_aliases(client, name) or {}).get(CHALLENGER) == version,
        fairness_passed=extra.get("fairness_passed", True),
        reasons=["fairness gate: passed"],
        acceptance=extra.get("acceptance", {}),
        version_tags=tags | extra.get("acceptance", {}),
        settings=settings,
    )


class KilledAfter:
    """An MLflow client whose process dies after ``n`` registry writes."""

    def __init__(self, client: MlflowClient, n: int) -> None:
        self.client, self.left = client, n

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not name.startswith(("set_", "delete_")):
            return method

        def write(*args: Any, **kwargs: Any) -> Any:
            if self.left == 0:
                raise SystemExit("killed between two registry writes")
            self.left -= 1
            return method(*args, **kwargs)

        return write


def registry_state(client: MlflowClient, name: str) -> tuple[dict[str, str], dict[str, str], bool]:
    tags = dict(client.get_model_version(name, "2").tags)
    pending = TAG_PENDING in (client.get_registered_model(name).tags or {})
    return registered_aliases(client, name) or {}, tags, pending


def test_a_promotion_is_recorded_signed_and_applied(
    client: MlflowClient, settings: Settings
) -> None:
    record = promote(client, settings, "2", "1")
    aliases, tags, pending = registry_state(client, settings.model_name)
    assert aliases == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    assert tags[TAG_PROMOTION_DECISION] == "promoted" and not pending
    assert PromotionRecord.from_json(tags[TAG_RECORD]) == record
    assert record.verifies(load_signing_key(PROMOTION_PURPOSE, settings=settings))
    check = verified_champion(client, settings.model_name)
    assert (check.version, check.alias, check.problems, check.clean) == ("2", "2", (), True)


#: writes of applying one promotion: 2 tags, previous_champion, champion,
#: challenger removed, the record, the pending tag removed
WRITES = 7


def test_a_kill_after_any_write_is_completed_and_never_seen_half_done(
    settings: Settings,
) -> None:
    for k in range(WRITES + 1):
        one = settings.model_copy(update={"model_name": f"{settings.model_name}-k{k}"})
        name, client = one.model_name, registered(one)
        key = load_signing_key(PROMOTION_PURPOSE, settings=one)
        tags = {TAG_PROMOTION_DECISION: "promoted", "promotion_reasons": "fairness gate: passed"}
        record = PromotionRecord.decide(
            model_name=name,
            version="2",
            previous_champion="1",
            remove_challenger=True,
            fairness_passed=True,
            reasons=["fairness gate: passed"],
            acceptance={},
            version_tags=tags,
            decided_by="tester",
            key=key,
        )
        record_promotion(client, record)
        killed = KilledAfter(client, k)
        if k < WRITES:
            with pytest.raises(SystemExit):
                apply_record(killed, record)  # type: ignore[arg-type]
        else:
            apply_record(killed, record)  # type: ignore[arg-type]
        # a reader sees the decided champion, whatever was written so far
        assert verified_champion(client, name, key).version == "2", k
        # the next promote (or service start) completes it; twice changes nothing more
        finish_interrupted(client, name, one)
        finish_interrupted(client, name, one)
        aliases, version_tags, pending = registry_state(client, name)
        assert aliases == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}, k
        assert {t: version_tags[t] for t in tags} == tags and not pending
        assert verified_champion(client, name, key).clean, k


def test_the_service_completes_an_interrupted_promotion_at_start(
    client: MlflowClient, settings: Settings
) -> None:
    key = load_signing_key(PROMOTION_PURPOSE, settings=settings)
    record = PromotionRecord.decide(
        model_name=settings.model_name,
        version="2",
        previous_champion="1",
        remove_challenger=True,
        fairness_passed=True,
        reasons=[],
        acceptance={},
        version_tags={TAG_PROMOTION_DECISION: "promoted"},
        decided_by="tester",
        key=key,
    )
    record_promotion(client, record)
    with pytest.raises(SystemExit):
        apply_record(KilledAfter(client, 3), record)  # type: ignore[arg-type]
    assert ChampionWatch(settings).startup().version == "2"
    assert pending_record(client, settings.model_name) is None
    assert registered_aliases(client, settings.model_name) == {
        CHAMPION: "2",
        PREVIOUS_CHAMPION: "1",
    }


def test_an_alias_moved_by_hand_is_not_followed(client: MlflowClient, settings: Settings) -> None:
    client.set_registered_model_alias(settings.model_name, CHAMPION, "3")  # from the MLflow UI
    check = verified_champion(client, settings.model_name)
    assert (check.version, check.alias, check.clean) == ("1", "3", False)
    assert "points at version 3, which has no verified promotion record" in check.problems[0]
    told: list[str] = []
    watch = ChampionWatch(settings, alert=told.append)
    assert watch.startup().version == "1"
    assert watch.champion(serving="1") == "1"  # keeps serving the last verified version
    for thread in watch.alerts:
        thread.join(10)
    assert len(told) == 1 and "keeps serving version 1" in told[0]
    assert watch.problems == list(check.problems)
    # a real promotion moves it on again, and the problem is gone
    promote(client, settings, "2", "1")
    assert watch.champion(serving="1") == "2"
    assert watch.problems == []


def test_a_removed_risk_acceptance_or_record_does_not_verify(
    client: MlflowClient, settings: Settings
) -> None:
    acceptance = {TAG_FAIRNESS_RISK_ACCEPTED: "true", TAG_FAIRNESS_RISK_REASON: "x" * 40}
    promote(client, settings, "2", "1", fairness_passed=False, acceptance=acceptance)
    assert verified_champion(client, settings.model_name).clean
    client.delete_model_version_tag(
        settings.model_name, "2", TAG_FAIRNESS_RISK_ACCEPTED
    )  # from the UI
    check = verified_champion(client, settings.model_name)
    assert check.version == "1" and not check.clean
    assert any("fairness_risk_accepted" in p for p in check.problems)
    client.set_model_version_tag(settings.model_name, "2", TAG_FAIRNESS_RISK_ACCEPTED, "true")
    assert verified_champion(client, settings.model_name).clean
    client.delete_model_version_tag(settings.model_name, "2", TAG_RECORD)
    assert verified_champion(client, settings.model_name).version == "1"


def test_an_edited_or_foreign_record_does_not_verify(
    client: MlflowClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = promote(client, settings, "2", "1")
    edited = PromotionRecord(**{**record.__dict__, "decided_by": "someone else"})
    client.set_model_version_tag(settings.model_name, "2", TAG_RECORD, edited.to_json())
    check = verified_champion(client, settings.model_name)
    assert check.version == "1" and any("does not verify" in p for p in check.problems)
    # a record signed with a key of one's own is no better
    monkeypatch.setenv("STRATUM_SIGNING_KEYS_DIR", str(tmp_path / "own-keys"))
    foreign = PromotionRecord.decide(
        **{
            f: getattr(record, f)
            for f in (
                "model_name",
                "version",
                "previous_champion",
                "remove_challenger",
                "fairness_passed",
                "acceptance",
                "version_tags",
                "decided_by",
            )
        },
        reasons=list(record.reasons),
    )
    monkeypatch.delenv("STRATUM_SIGNING_KEYS_DIR")
    client.set_model_version_tag(settings.model_name, "2", TAG_RECORD, foreign.to_json())
    assert verified_champion(client, settings.model_name).version == "1"
