"""`stratum docs` on real MLflow runs of real LightGBM models: every claim follows its run.

Each test changes the run (the weighting in its config, a failed fairness gate, a
recorded acceptance, an estimate widened for want of random-sample visits, a
promotion) and checks that the text of the pack follows. The models and the
small synthetic world are those of ``tests/training/test_registry.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.config import Settings
from stratum_ml.docs.organisation import read_organisation
from stratum_ml.docs.pack import (
    TAG_DOCS_PACK_SHA256,
    check_pack,
    pack_location,
    write_pack,
)
from stratum_ml.docs.standard import check_entry
from stratum_ml.model.registry import download_run_artifact
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.registry import TAG_PROMOTION_DOCS_PACK, promote
from stratum_ml.training.tracking import log_training_run
from tests.training.test_registry import (
    FEATURES,
    WEAK_FEATURES,
    World,
    _fit,
    _outcome,
    _world,
)

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "organisation.yaml"
ACCEPTANCE = "pilot with a second reviewer on every visit, approved by the DPO in writing"


@dataclasses.dataclass
class Runs:
    world: World
    good: TrainingOutcome
    weak: TrainingOutcome
    unfair: TrainingOutcome
    widened: TrainingOutcome


@pytest.fixture(scope="module")
def runs() -> Runs:
    world = _world()
    coin = np.random.default_rng(3).random(len(world.population)) < 0.5
    fair = pd.Series(
        np.where(coin, "north", "south"), index=world.population.index, name="district"
    )
    proxy = pd.Series(
        (world.population["tenure"] == "private_rent").map({True: "yes", False: "no"}),
        name="private_rent_proxy",
    )
    good = _fit(world, FEATURES)
    # the same world with only 12 random-sample visits: too few for the top 100
    random = world.holdout.index[world.holdout["reason"] == "random_sample"]
    sparse = dataclasses.replace(world, holdout=world.holdout.drop(random[12:]))
    return Runs(
        world=world,
        good=_outcome(good, world, FEATURES, fair),
        weak=_outcome(_fit(world, WEAK_FEATURES), world, WEAK_FEATURES, fair),
        unfair=_outcome(good, world, FEATURES, proxy),
        widened=_outcome(good, sparse, FEATURES, fair),
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("stratum-home")
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRATUM_HOME", str(home))
        mp.delenv("STRATUM_MLFLOW_URI", raising=False)
        yield Settings()
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


def _client(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _pack(
    settings: Settings, name: str, model: str, out: Path, *, organisation: bool = True
) -> dict[str, Any]:
    """Write a pack; return its files' texts (the register entry parsed)."""
    write_pack(
        model,
        out,
        model_name=name,
        settings=settings,
        client=_client(settings),
        organisation=read_organisation(EXAMPLE) if organisation else None,
    )
    texts: dict[str, Any] = {
        p.name: p.read_text("utf-8") for p in out.iterdir() if p.suffix in (".md", ".json")
    }
    texts["entry"] = json.loads(texts["algoritmeregister.json"])
    texts["todo"] = json.loads(texts["register_todo.json"])
    return texts


def _with_config(outcome: TrainingOutcome, **update: Any) -> TrainingOutcome:
    return dataclasses.replace(outcome, config=outcome.config.model_copy(update=update))


def test_the_pack_of_a_challenger_is_complete_logged_and_checkable(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    name = "docs-challenger"
    registered = log_training_run(runs.good, settings=settings, model_name=name)

    bare = _pack(settings, name, "challenger", tmp_path / "bare", organisation=False)
    assert bare["todo"]["missing_required"] == [
        "organization",
        "contact_email",
        "publication_category",
    ]
    assert not {"organization", "contact_email", "lawful_basis"} & set(bare["entry"])
    assert check_pack(tmp_path / "bare") == [
        f"algoritmeregister.json: {f}: required, but missing"
        for f in ("organization", "contact_email", "publication_category")
    ]

    texts = _pack(settings, name, "challenger", tmp_path / "pack")
    entry = texts["entry"]
    assert check_pack(tmp_path / "pack") == []
    assert entry["status"] == "In ontwikkeling"
    assert "begin_date" not in entry and "end_date" not in entry
    assert entry["source_id"] == f"{name} versie 1"
    assert entry["organization"] == "Gemeente Voorbeeldstad"
    assert entry["lang"] == "nld" and entry["standard_version"] == "1.0.0"
    assert [g["title"] for g in entry["source_data_grouping"]] == [
        "Basisregistratie Adressen en Gebouwen (BAG)",
        "Basisregistratie Personen (BRP)",
        "Basisregistratie Kadaster (BRK)",
    ]  # the features read addresses, registrations and ownership, no businesses
    assert "Handelsregister" not in entry["source_data"]
    assert "Source files (sha256)" in texts["technical_file.md"]
    assert "a" * 64 in texts["technical_file.md"]
    assert "TO BE COMPLETED BY THE PROVIDER" in texts["technical_file.md"]
    assert "No scoring run of this version is recorded yet" in texts["monitoring_plan.md"]
    assert "holds no design of visits" in texts["monitoring_plan.md"]
    assert (tmp_path / "pack" / "documentation.pdf").read_bytes().startswith(b"%PDF")

    manifest = json.loads(texts["manifest.json"])
    tags = _client(settings).get_model_version(name, "1").tags
    assert tags[TAG_DOCS_PACK_SHA256] == manifest["pack_sha256"]
    location = pack_location(name, "1", _client(settings))
    assert location == f"runs:/{registered.run_id}/docs"
    logged = download_run_artifact(
        registered.run_id, "docs/algoritmeregister.json", tmp_path / "dl", settings
    )
    assert json.loads(logged.read_text("utf-8")) == entry

    again = _pack(settings, name, "1", tmp_path / "pack")  # the same run: the same bytes
    assert json.loads(again["manifest.json"])["pack_sha256"] == manifest["pack_sha256"]


def test_the_training_run_logs_its_register_entry_by_the_same_generator(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    name = "docs-draft"
    registered = log_training_run(runs.good, settings=settings, model_name=name)
    logged = download_run_artifact(registered.run_id, "algoritmeregister.json", tmp_path, settings)
    draft = json.loads(logged.read_text("utf-8"))
    texts = _pack(settings, name, "1", tmp_path / "pack", organisation=False)
    assert draft["methods_and_models"] == texts["entry"]["methods_and_models"]
    assert draft["risks"] == texts["entry"]["risks"]
    assert check_entry(draft) == [
        f"{f}: required, but missing"
        for f in ("organization", "contact_email", "publication_category")
    ]
    tags = _client(settings).get_run(registered.run_id).data.tags
    assert tags["stratum_ml_commit"]  # a commit, or "unknown" outside a git checkout


def test_the_weighting_said_is_the_weighting_of_the_run(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    log_training_run(runs.good, settings=settings, model_name="docs-none")
    log_training_run(
        _with_config(runs.good, weighting="ipw", ipw_clip=7.5),
        settings=settings,
        model_name="docs-ipw",
    )
    none = _pack(settings, "docs-none", "1", tmp_path / "none")
    ipw = _pack(settings, "docs-ipw", "1", tmp_path / "ipw")
    assert "Er is geen weging toegepast" in none["entry"]["methods_and_models"]
    assert "weighting: none" in none["entry"]["methods_and_models"]
    assert "omgekeerde van de kans" not in none["entry"]["methods_and_models"]
    assert "omgekeerde van de kans" in ipw["entry"]["methods_and_models"]
    assert "afgekapt op 7.5 maal" in ipw["entry"]["methods_and_models"]
    assert "geen weging" not in ipw["entry"]["methods_and_models"]
    assert "inverse visit-propensity weights, clipped at 7.5" in ipw["technical_file.md"]
    assert "no selection weights (weighting: none)" in none["technical_file.md"]


def test_the_estimate_said_is_the_runs_and_a_widened_one_is_not_precision_at_k(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    good, widened = runs.good.headline, runs.widened.headline
    assert not good.widened and widened.widened  # the setup
    log_training_run(runs.good, settings=settings, model_name="docs-estimate")
    log_training_run(runs.widened, settings=settings, model_name="docs-widened")
    ok = _pack(settings, "docs-estimate", "1", tmp_path / "ok")
    wide = _pack(settings, "docs-widened", "1", tmp_path / "wide")

    said = f"vindt naar schatting {good.estimate:.0%} van de huisbezoeken een overtreding"
    assert said in ok["entry"]["methods_and_models"]
    assert (
        f"{good.ci_low:.0%} tot {good.ci_high:.0%}; geschat op {good.n} aselecte"
        in (ok["entry"]["methods_and_models"])
    )
    line = next(x for x in ok["technical_file.md"].splitlines() if x.startswith("- precision@100"))
    assert f": {good.estimate:.3f} [{good.ci_low:.3f}, {good.ci_high:.3f}], from {good.n}" in line

    methods = wide["entry"]["methods_and_models"]
    assert "niet te schatten" in methods and "naar schatting" not in methods
    assert f"{widened.estimate:.0%}" not in methods.replace("%-interval", "")
    assert "niet te schatten" in wide["entry"]["risks"]
    technical = wide["technical_file.md"]
    assert "precision@100: not estimable" in technical
    assert f"the widened estimate covers the top {widened.region_k} addresses" in technical or (
        f"every scored address ({widened.region_k})" in technical
    )
    assert f"precision@100: {widened.estimate:.3f}" not in technical
    assert "precision@100: not estimable" in wide["instructions_for_use.md"]


def test_gates_acceptances_and_promotion_history_follow_the_registry(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    name = "docs-unfair"
    log_training_run(runs.unfair, settings=settings, model_name=name)
    before = _pack(settings, name, "challenger", tmp_path / "before")
    risks = before["entry"]["risks"]
    assert "slaagde NIET voor de toets" in risks and "private_rent_proxy" in risks
    assert "voor deze versie is dat niet gebeurd" in risks
    assert ACCEPTANCE not in risks
    assert "No acceptance of the failed gate is recorded" in before["technical_file.md"]
    pack_sha = json.loads(before["manifest.json"])["pack_sha256"]

    result = promote(name, settings=settings, accept_fairness_risk=ACCEPTANCE)
    assert result.promoted
    assert result.docs_pack_sha256 == pack_sha  # the pack reviewed is the one promoted
    tags = _client(settings).get_model_version(name, "1").tags
    assert tags[TAG_PROMOTION_DOCS_PACK] == pack_sha

    after = _pack(settings, name, "champion", tmp_path / "after")
    entry = after["entry"]
    assert "slaagde NIET voor de toets" in entry["risks"]
    assert "toch in gebruik genomen" in entry["risks"] and ACCEPTANCE in entry["risks"]
    assert entry["status"] == "In gebruik"
    assert entry["begin_date"] == dt.datetime.now(dt.UTC).strftime("%Y-%m")
    assert "end_date" not in entry
    assert (
        "Risk accepted" in after["technical_file.md"] and ACCEPTANCE in (after["technical_file.md"])
    )
    assert "risk was accepted in writing" in after["assessment_inputs.md"]
    assert check_pack(tmp_path / "after") == []

    # a second version replaces it: the first goes out of use, the second compares with it
    log_training_run(runs.good, settings=settings, model_name=name)
    second = _pack(settings, name, "challenger", tmp_path / "second")
    assert "Compared with version 1" in second["technical_file.md"]
    assert "fairness gate: version 1 FAILED, this version passed" in second["technical_file.md"]
    assert promote(name, settings=settings).promoted
    assert (
        _client(settings).get_model_version(name, "2").tags[TAG_PROMOTION_DOCS_PACK]
        == (json.loads(second["manifest.json"])["pack_sha256"])
    )
    old = _pack(settings, name, "1", tmp_path / "old")
    assert old["entry"]["status"] == "Buiten gebruik"
    assert old["entry"]["end_date"] == dt.datetime.now(dt.UTC).strftime("%Y-%m")
    new = _pack(settings, name, "champion", tmp_path / "new")
    assert new["entry"]["status"] == "In gebruik"
    assert "Deze versie slaagde voor de toets" in new["entry"]["risks"]
    assert ACCEPTANCE not in new["entry"]["risks"]


def test_stratum_docs_writes_then_checks_the_champions_pack(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    name = "docs-cli"
    log_training_run(runs.weak, settings=settings, model_name=name)
    assert promote(name, settings=settings).promoted
    cli = CliRunner()
    out = tmp_path / "pack"
    args = ["docs", "--model", "champion", "--out", str(out), "--model-name", name]
    written = cli.invoke(app, [*args, "--organisation", str(EXAMPLE)])
    assert written.exit_code == 0, written.output
    assert "wrote the documentation pack" in written.output
    checked = cli.invoke(app, ["docs", "--check", str(out)])
    assert checked.exit_code == 0, checked.output

    bare = cli.invoke(
        app, ["docs", "--model", "champion", "--out", str(tmp_path / "b"), "--model-name", name]
    )
    assert bare.exit_code == 0 and "required fields missing" in bare.output
    assert cli.invoke(app, ["docs", "--check", str(tmp_path / "b")]).exit_code == 1
    unknown = cli.invoke(
        app, ["docs", "--model", "7", "--out", str(tmp_path / "c"), "--model-name", name]
    )
    assert unknown.exit_code == 1 and "has no version '7'" in unknown.output
    assert not (tmp_path / "c").exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine", "utf-8")
    refused = cli.invoke(app, [*args[:3], "--out", str(occupied), "--model-name", name])
    assert refused.exit_code == 1 and "not a documentation pack" in refused.output
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]


def test_the_monitoring_plan_follows_the_versions_scoring_runs_and_thresholds(
    runs: Runs, settings: Settings, tmp_path: Path
) -> None:
    from stratum_ml.monitoring.drift import DriftThresholds
    from stratum_ml.runs.tracking import finish_scoring_run, start_scoring_run

    name = "docs-monitoring"
    log_training_run(runs.weak, settings=settings, model_name=name)
    for as_of, drift in (("2026-09-01", "not drifted"), ("2026-10-01", "drifted")):
        run_id = start_scoring_run(settings, f"{as_of} {name} v1", {})
        params = {"as_of": as_of, "model_name": name, "model_version": "1", "drift": drift}
        finish_scoring_run(settings, run_id, params=params, metrics={}, drift_json=None)
    other = start_scoring_run(settings, "another model", {})  # not this version's
    params = {"as_of": "2026-11-01", "model_name": "other", "model_version": "1", "drift": "x"}
    finish_scoring_run(settings, other, params=params, metrics={}, drift_json=None)

    write_pack(
        "1",
        tmp_path / "pack",
        model_name=name,
        settings=settings,
        client=_client(settings),
        thresholds=DriftThresholds(psi_alarm=0.4, accepted={}),
    )
    plan = (tmp_path / "pack" / "monitoring_plan.md").read_text("utf-8")
    assert "2 scoring runs recorded for this version, 2026-09-01 .. 2026-10-01" in plan
    assert "median interval 30 days" in plan
    assert "Runs that reported drift: 2026-10-01." in plan
    assert "| PSI alarm (per feature) | 0.400 |" in plan
    assert "Features whose drift is expected (reported, never alarms): none." in plan
