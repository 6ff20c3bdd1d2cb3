"""MLflow tracking, the registry aliases and gated promotion, on a real SQLite store.

One store serves the module (creating an MLflow SQLite database takes seconds);
each test registers its own model name, so tests do not depend on each other.
The models are real LightGBM models on a small synthetic population where the
risk is known: a model on all features, a weak one on two, and one trained on
shuffled labels.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from stratum_ml.cli.model import promote as promote_command
from stratum_ml.config import Settings
from stratum_ml.docs.standard import check_entry
from stratum_ml.evaluation.fairness import fairness_audit
from stratum_ml.evaluation.gates import FairnessGateConfig, GateVerdict, fairness_gate
from stratum_ml.evaluation.metrics import plot_calibration, top_k_mask
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.promotion import TAG_RECORD
from stratum_ml.model.pyfunc import to_pyfunc_frame
from stratum_ml.model.reference import ReferenceMissing, load_reference
from stratum_ml.model.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    champion_info,
    load_risk_model,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.store import EXPERIMENT_NAME, configure_mlflow
from stratum_ml.monitoring.drift import compare
from stratum_ml.training.config import RunConfig
from stratum_ml.training.holdout import (
    honest_estimates,
    naive_estimates,
    ranked_population,
    score_rows,
)
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.registry import promote
from stratum_ml.training.report import EvaluationReport, PrecisionAtK
from stratum_ml.training.tracking import log_training_run

FEATURES = (
    "floor_area_m2",
    "tenure",
    "owner_type",
    "water_ratio_to_expected",
    "reports_all_365d",
)
WEAK_FEATURES = ("floor_area_m2", "tenure")
CONFIG = RunConfig(
    ks=(100, 250),
    headline_k=100,
    lightgbm=LightGBMParams(n_estimators=150, early_stopping_rounds=20, n_jobs=1),
    fairness=FairnessGateConfig(metrics=("selection_rate",)),
)
FAIRNESS_K = 1000

# MLflow checks an input example's columns against ``range``, which pandas 3 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Operation with range is deprecated:pandas.errors.Pandas4Warning"
)


# --------------------------------------------------------------------------- synthetic data


def _features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    owner = rng.choice(["person", "company", "housing_association"], n, p=[0.6, 0.25, 0.15])
    owner = np.where(rng.random(n) < 0.05, None, owner)  # some owners unknown
    return pd.DataFrame(
        {
            "floor_area_m2": rng.normal(80, 25, n).clip(15, None),
            "tenure": pd.Categorical(
                rng.choice(["owner_occupied", "social_rent", "private_rent"], n),
                categories=["owner_occupied", "private_rent", "social_rent"],
            ),
            "owner_type": pd.Categorical(
                owner, categories=["company", "housing_association", "person"]
            ),
            "water_ratio_to_expected": rng.lognormal(0.0, 0.5, n),
            "reports_all_365d": rng.poisson(0.4, n),
        }
    )


def _risk(X: pd.DataFrame) -> np.ndarray:
    logit = (
        -2.6
        + 1.8 * np.log(X["water_ratio_to_expected"].to_numpy())
        + 0.7 * X["reports_all_365d"].to_numpy()
        + 0.6 * (X["tenure"] == "private_rent").to_numpy()
        + 0.8 * (X["owner_type"] == "company").to_numpy()
    )
    return 1.0 / (1.0 + np.exp(-logit))


@dataclass
class World:
    """Training and tuning visits, holdout visits and the population, with labels."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_tune: pd.DataFrame
    y_tune: np.ndarray
    holdout: pd.DataFrame
    population: pd.DataFrame


def _world(seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    X_train, X_tune = _features(rng, 3000), _features(rng, 1000)
    population = _features(rng, 4000)
    population.index = pd.Index([f"A{i:05d}" for i in range(len(population))], name="address_id")
    random_ids = rng.choice(population.index, 1600, replace=False)
    report_ids = population.loc[population["reports_all_365d"] > 0].index[:400]
    visits = []
    for reason, ids in (("random_sample", random_ids), ("report", report_ids)):
        frame = population.loc[ids].reset_index()
        frame["reason"] = reason
        visits.append(frame)
    holdout = pd.concat(visits, ignore_index=True)
    holdout["label"] = (rng.random(len(holdout)) < _risk(holdout)).astype(int)
    holdout["inspected_at"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(
        rng.integers(0, 180, len(holdout)), unit="D"
    )
    holdout.index = pd.Index([f"I{i:05d}" for i in range(len(holdout))], name="inspection_id")
    return World(
        X_train=X_train,
        y_train=(rng.random(len(X_train)) < _risk(X_train)).astype(int),
        X_tune=X_tune,
        y_tune=(rng.random(len(X_tune)) < _risk(X_tune)).astype(int),
        holdout=holdout,
        population=population,
    )


def _fit(world: World, features: tuple[str, ...], *, shuffle: bool = False) -> RiskModel:
    y = world.y_train
    if shuffle:
        y = np.random.default_rng(1).permutation(y)
    model = RiskModel(CONFIG.lightgbm, CONFIG.calibration, seed=0)
    return model.fit(
        world.X_train[list(features)], y, X_tune=world.X_tune[list(features)], y_tune=world.y_tune
    )


def _verdict(model: RiskModel, world: World, attribute: pd.Series) -> GateVerdict:
    """The fairness gate on the top FAIRNESS_K of the population, by ``attribute``."""
    scores, _, labels = ranked_population(model, world.holdout, world.population)
    random_visits = world.holdout.loc[world.holdout["reason"] == "random_sample"]
    others = world.population.index[~world.population.index.isin(random_visits["address_id"])]
    groups = pd.concat([attribute.loc[others], attribute.loc[random_visits["address_id"]]])
    selected = top_k_mask(scores, FAIRNESS_K)
    result = fairness_audit(
        labels,
        selected.astype(float),
        scores,
        pd.DataFrame({attribute.name: groups.to_numpy()}),
        n_boot=0,
    )
    return fairness_gate(result, CONFIG.fairness)


def _outcome(
    model: RiskModel, world: World, features: tuple[str, ...], attribute: pd.Series
) -> TrainingOutcome:
    honest = honest_estimates(model, world.holdout, world.population, CONFIG.ks)
    naive = naive_estimates(model, world.holdout, CONFIG.ks)
    verdict = _verdict(model, world, attribute)
    proba = model.predict_risk(world.holdout)
    report = EvaluationReport(
        headline_k=CONFIG.headline_k,
        precision=tuple(PrecisionAtK(k=k, honest=honest[k], naive=naive[k]) for k in CONFIG.ks),
        fairness=verdict,
    )
    return TrainingOutcome(
        model=model,
        config=CONFIG,
        feature_set=FeatureSet(name="test", features=features),
        report=report,
        params={"n_features": len(features), "weighting": "none"},
        periods={
            "train_from": "2021-01-01",
            "train_until": "2023-08-31",
            "tune_from": "2023-09-01",
            "tune_until": "2024-02-29",
            "holdout_from": "2024-03-01",
            "holdout_until": "2024-08-31",
            "population_as_of": "2024-03-01",
        },
        tables={"fairness_gate_checks": verdict.checks},
        figures={"calibration": plot_calibration(world.holdout["label"], proba)},
        evaluation_data={"holdout": world.holdout, "population": world.population},
        fingerprints={"addresses.parquet": "a" * 64, "inspections.parquet": "b" * 64},
        row_counts={"addresses": len(world.population), "inspections": len(world.holdout)},
    )


@dataclass
class Outcomes:
    """Outcomes to log: good and fair, weak and fair, worthless (shuffled), good but unfair."""

    world: World
    good: TrainingOutcome
    weak: TrainingOutcome
    shuffled: TrainingOutcome
    unfair: TrainingOutcome


@pytest.fixture(scope="module")
def outcomes() -> Outcomes:
    world = _world()
    coin = np.random.default_rng(3).random(len(world.population)) < 0.5
    fair_attribute = pd.Series(
        np.where(coin, "north", "south"), index=world.population.index, name="district"
    )
    proxy_attribute = pd.Series(
        (world.population["tenure"] == "private_rent").map({True: "yes", False: "no"}),
        name="private_rent_proxy",
    )
    good = _fit(world, FEATURES)
    return Outcomes(
        world=world,
        good=_outcome(good, world, FEATURES, fair_attribute),
        weak=_outcome(_fit(world, WEAK_FEATURES), world, WEAK_FEATURES, fair_attribute),
        shuffled=_outcome(_fit(world, FEATURES, shuffle=True), world, FEATURES, fair_attribute),
        unfair=_outcome(good, world, FEATURES, proxy_attribute),
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh store under STRATUM_HOME; MLflow's global URIs are restored afterwards."""
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


def _aliases(settings: Settings, name: str) -> dict[str, str]:
    aliases = _client(settings).get_registered_model(name).aliases
    return {alias: str(version) for alias, version in aliases.items()}


# --------------------------------------------------------------------------- tests


def test_the_setup_is_what_the_tests_assume(outcomes: Outcomes) -> None:
    k = CONFIG.headline_k
    good, weak, shuffled = (
        o.headline.estimate for o in (outcomes.good, outcomes.weak, outcomes.shuffled)
    )
    assert good > weak + 0.1 and good > shuffled + 0.1
    assert outcomes.good.fairness_verdict.passed and outcomes.weak.fairness_verdict.passed
    assert not outcomes.unfair.fairness_verdict.passed
    assert outcomes.good.headline.n >= 30, f"too few random visits in the top {k}"


def test_rows_scored_once_place_the_visits_as_scoring_them_again(outcomes: Outcomes) -> None:
    world, model = outcomes.world, outcomes.good.model
    assert isinstance(model, RiskModel)
    scored = score_rows(model, world.holdout, world.population)
    for visits in ("random_sample", "all"):
        again = ranked_population(model, world.holdout, world.population, visits=visits)
        once = ranked_population(
            model, world.holdout, world.population, visits=visits, scored=scored
        )
        for fresh, reused in zip(again, once, strict=True):
            np.testing.assert_array_equal(fresh, reused)
    fresh_estimates = honest_estimates(model, world.holdout, world.population, CONFIG.ks)
    reused_estimates = honest_estimates(
        model, world.holdout, world.population, CONFIG.ks, scored=scored
    )
    assert repr(reused_estimates) == repr(fresh_estimates)


def test_a_logged_run_holds_everything_and_the_version_is_challenger(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "logged"
    outcome = outcomes.good
    registered = log_training_run(outcome, settings=settings, model_name=name, source_dir="/src")
    client = _client(settings)

    assert registered.version == "1"
    assert _aliases(settings, name) == {CHALLENGER: "1"}
    run = client.get_run(registered.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(registered.experiment_id).name == EXPERIMENT_NAME
    assert run.data.params["config.headline_k"] == "100"
    assert run.data.params["config.lightgbm.num_leaves"] == str(CONFIG.lightgbm.num_leaves)
    assert run.data.params["source_sha256.addresses.parquet"] == "a" * 64
    assert run.data.params["rows.inspections"] == str(len(outcomes.world.holdout))
    assert run.data.params["source_dir"] == "/src"
    assert run.data.metrics["honest_precision_at_100"] == pytest.approx(outcome.headline.estimate)
    assert run.data.tags["fairness_passed"] == "true"

    artifacts = {a.path for a in client.list_artifacts(registered.run_id)}
    assert {
        "run_config.yaml",
        "model_card.md",
        "algoritmeregister.json",
        "features",
        "sources",
        "tables",
        "plots",
        "evaluation",
        "fairness",
        "risk_model",
    } <= artifacts
    nested = {
        a.path
        for folder in ("features", "sources", "plots", "evaluation")
        for a in client.list_artifacts(registered.run_id, folder)
    }
    assert {
        "features/feature_set.json",
        "features/catalogue.csv",
        "sources/fingerprints.json",
        "plots/calibration.png",
        "evaluation/holdout.parquet",
        "evaluation/population.parquet",
        "evaluation/estimates.json",
    } <= nested
    dst = Path(mlflow.artifacts.download_artifacts(run_id=registered.run_id, dst_path=None))
    assert json.loads((dst / "sources" / "fingerprints.json").read_text()) == outcome.fingerprints
    assert RunConfig.model_validate(yaml.safe_load((dst / "run_config.yaml").read_text())) == CONFIG
    card = (dst / "model_card.md").read_text()
    assert "# Model card: logged version 1" in card
    assert f"**Honest precision@100: {outcome.headline.estimate:.3f} [" in card
    assert "Human oversight" in card and "never a decision" in card
    register = json.loads((dst / "algoritmeregister.json").read_text())
    # publication standard 1.0.0: what only the municipality knows is absent, never invented
    assert "lawful_basis" not in register and "organization" not in register
    assert check_entry(register) == [
        f"{f}: required, but missing"
        for f in ("organization", "contact_email", "publication_category")
    ]
    assert "LightGBM" in register["methods_and_models"]
    assert register["status"] == "In ontwikkeling" and register["source_id"] == "logged versie 1"
    catalogue = pd.read_csv(dst / "features" / "catalogue.csv")
    assert set(catalogue.loc[catalogue["in_model"], "name"]) == set(FEATURES)

    version = client.get_model_version(name, "1")
    assert version.tags["fairness_passed"] == "true"
    assert version.tags["run_id"] == registered.run_id
    assert version.tags["trained_until"] == "2023-08-31"
    assert float(version.tags["honest_precision_at_100"]) == pytest.approx(
        outcome.headline.estimate, abs=1e-4
    )

    requirements = Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/1/requirements.txt")
    ).read_text()
    assert f"lightgbm=={lightgbm.__version__}" in requirements
    assert f"pandas=={pd.__version__}" in requirements


def test_the_run_logs_the_drift_reference_of_its_population(
    outcomes: Outcomes, settings: Settings
) -> None:
    outcome = outcomes.good
    registered = log_training_run(outcome, settings=settings, model_name="with-reference")
    reference = load_reference(registered.run_id, settings)
    population = outcomes.world.population
    assert reference.as_of.isoformat() == outcome.periods["population_as_of"]
    assert reference.n == len(population) == reference.score.n
    assert set(reference.features) == set(population.columns)
    assert reference.features["tenure"].kind == "categorical"
    assert reference.features["tenure"].categories == tuple(population["tenure"].cat.categories)
    owner = reference.features["owner_type"]
    assert owner.missing_rate == pytest.approx(population["owner_type"].isna().mean())
    floor = reference.features["floor_area_m2"]
    assert (floor.min, floor.max) == (
        population["floor_area_m2"].min(),
        population["floor_area_m2"].max(),
    )
    raw = outcome.model.raw_score(population[list(FEATURES)])
    assert set(reference.score.sample) <= set(raw.tolist())
    # the same population compared with its own reference has not drifted
    result = compare(reference, population[list(FEATURES)], raw)
    assert not result.drifted and result.score.ks_statistic < 0.05


def test_a_run_without_a_reference_says_so(settings: Settings) -> None:
    configure_mlflow(settings)
    with mlflow.start_run() as run:
        mlflow.log_param("empty", 1)
    with pytest.raises(ReferenceMissing, match="retrain to record one"):
        load_reference(run.info.run_id, settings)


def test_the_pyfunc_returns_the_calibrated_probability(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "pyfunc"
    outcome = outcomes.good
    log_training_run(outcome, settings=settings, model_name=name)
    X = outcomes.world.population.head(300)[list(FEATURES)]

    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@{CHALLENGER}")
    answer = pyfunc.predict(to_pyfunc_frame(X))

    assert list(answer.columns) == ["probability", "raw_score"]
    assert answer["probability"].between(0.0, 1.0).all()
    np.testing.assert_allclose(answer["probability"], outcome.model.predict_risk(X))
    np.testing.assert_allclose(answer["raw_score"], outcome.model.raw_score(X))
    signature = pyfunc.metadata.signature.inputs.to_dict()
    assert {c["name"]: c["type"] for c in signature}["tenure"] == "string"

    loaded, info = load_risk_model(name, CHALLENGER, settings)
    np.testing.assert_allclose(loaded.predict_risk(X), outcome.model.predict_risk(X))
    assert info.version == "1" and info.aliases == (CHALLENGER,)
    assert info.trained_from == "2021-01-01"


#: Loads a registered pyfunc in a Python that has site-packages but not the editable
#: stratum_ml install (``-S`` skips the ``.pth`` files): it must come from the model.
LOAD_WITHOUT_STRATUM = """
import json, sys
sys.path.append(sys.argv[1])
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[2])
answer = model.predict(pd.read_parquet(sys.argv[3]))
print(json.dumps({"module": sys.modules["stratum_ml"].__file__,
                  "probability": answer["probability"].tolist()}))
"""


def test_the_pyfunc_loads_where_stratum_ml_is_not_installed(
    outcomes: Outcomes, settings: Settings, tmp_path: Path
) -> None:
    name = "portable"
    outcome = outcomes.good
    log_training_run(outcome, settings=settings, model_name=name)
    X = outcomes.world.population.head(20)[list(FEATURES)]
    to_pyfunc_frame(X).to_parquet(tmp_path / "X.parquet")

    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            LOAD_WITHOUT_STRATUM,
            sysconfig.get_paths()["purelib"],
            f"models:/{name}@{CHALLENGER}",
            str(tmp_path / "X.parquet"),
        ],
        env={"MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert "/code/stratum_ml/" in answer["module"]
    np.testing.assert_allclose(answer["probability"], outcome.model.predict_risk(X))


def test_promotion_moves_champion_only_to_a_fair_model_that_is_not_worse(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "promotion"
    log_training_run(outcomes.weak, settings=settings, model_name=name)
    first = promote(name, settings=settings)
    assert first.promoted, first.reasons
    assert (first.previous_champion, first.new_champion) == (None, "1")
    assert "no champion" in first.reasons[-1]
    assert _aliases(settings, name) == {CHAMPION: "1"}

    log_training_run(outcomes.good, settings=settings, model_name=name)
    second = promote(name, settings=settings)
    assert second.promoted, second.reasons
    assert (second.previous_champion, second.new_champion) == ("1", "2")
    assert second.challenger_estimate is not None and second.champion_estimate is not None
    assert second.challenger_estimate.estimate > second.champion_estimate.estimate
    assert _aliases(settings, name) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}

    log_training_run(outcomes.shuffled, settings=settings, model_name=name)
    third = promote(name, settings=settings)
    assert not third.promoted
    assert third.new_champion == "2"
    assert any(r.startswith("honest precision@100") and "worse" in r for r in third.reasons)
    assert _aliases(settings, name) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1", CHALLENGER: "3"}
    assert _client(settings).get_model_version(name, "3").tags["promotion_decision"] == "refused"

    info = champion_info(name, settings)
    assert info is not None and info.version == "2"
    previous, previous_info = load_risk_model(name, PREVIOUS_CHAMPION, settings)
    X = outcomes.world.population.head(50)
    np.testing.assert_allclose(previous.predict_risk(X), outcomes.weak.model.predict_risk(X))
    assert previous_info.version == "1"


def test_an_unfair_challenger_is_refused_by_the_fairness_gate(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "unfair"
    log_training_run(outcomes.unfair, settings=settings, model_name=name)
    result = promote(name, settings=settings)

    assert not result.promoted
    assert [r for r in result.reasons if r.startswith("fairness gate failed")]
    assert "private_rent_proxy" in " ".join(result.reasons)
    assert champion_info(name, settings) is None
    assert _client(settings).get_model_version(name, "1").tags["fairness_passed"] == "false"


def test_a_failed_gate_needs_a_written_accepted_risk_which_is_recorded(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "unfair-accepted"
    log_training_run(outcomes.unfair, settings=settings, model_name=name)
    short = promote(name, settings=settings, accept_fairness_risk="because")
    assert not short.promoted
    assert "at least 30 characters" in " ".join(short.reasons)
    assert champion_info(name, settings) is None

    reason = "pilot with a second reviewer on every visit, approved by the DPO"
    result = promote(name, settings=settings, accept_fairness_risk=reason)
    assert result.promoted
    assert any("RISK ACCEPTED" in r and reason in r for r in result.reasons)
    tags = _client(settings).get_model_version(name, "1").tags
    assert tags["fairness_passed"] == "false"  # the verdict itself is unchanged
    assert tags["fairness_risk_accepted"] == "true"
    assert tags["fairness_risk_reason"] == reason
    assert tags["fairness_risk_accepted_by"]


def test_a_crash_mid_logging_moves_no_alias_and_fails_the_run(
    outcomes: Outcomes, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "crash"
    log_training_run(outcomes.weak, settings=settings, model_name=name)
    assert promote(name, settings=settings).promoted
    log_training_run(outcomes.good, settings=settings, model_name=name)
    before = _aliases(settings, name)
    client = _client(settings)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as mp:  # before the model is registered
        mp.setattr(mlflow.pyfunc, "log_model", disk_full)
        with pytest.raises(OSError, match="disk full"):
            log_training_run(outcomes.good, settings=settings, model_name=name)
    with monkeypatch.context() as mp:  # after the model is registered, before the alias
        mp.setattr(MlflowClient, "set_model_version_tag", disk_full)
        with pytest.raises(OSError, match="disk full"):
            log_training_run(outcomes.good, settings=settings, model_name=name)

    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.registered_model = '{name}'",
        order_by=["attributes.start_time DESC"],
        max_results=2,
    )
    assert [r.info.status for r in runs] == ["FAILED", "FAILED"]
    assert _aliases(settings, name) == before == {CHAMPION: "1", CHALLENGER: "2"}
    incomplete = promote(name, version="3", settings=settings)
    assert not incomplete.promoted
    assert any(r.startswith("training run") and "FAILED" in r for r in incomplete.reasons)
    assert _aliases(settings, name) == before
    model, info = load_risk_model(name, CHAMPION, settings)
    assert info.version == "1"


def test_stratum_promote_says_why_and_exits_by_verdict(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "cli"
    app = typer.Typer()
    app.command()(promote_command)
    runner = CliRunner()

    log_training_run(outcomes.good, settings=settings, model_name=name)
    promoted = runner.invoke(app, ["--model-name", name])
    assert promoted.exit_code == 0, promoted.output
    assert "PROMOTED" in promoted.output and "version 1 is the champion" in promoted.output

    log_training_run(outcomes.shuffled, settings=settings, model_name=name)
    refused = runner.invoke(app, ["--model-name", name])
    assert refused.exit_code == 1, refused.output
    assert "REFUSED" in refused.output and "honest precision@100" in refused.output

    nothing = runner.invoke(app, ["--model-name", "never-trained"])
    assert nothing.exit_code == 1
    assert "no registered model" in nothing.output
    missing = runner.invoke(app, ["--model-name", name, "--version", "9"])
    assert missing.exit_code == 1
    assert "has no version 9" in missing.output


def test_promote_compares_with_the_verified_champion_not_a_moved_alias(
    outcomes: Outcomes, settings: Settings
) -> None:
    name = "moved-alias"
    client = _client(settings)
    log_training_run(outcomes.good, settings=settings, model_name=name)
    # a registry from before promotion records: its champion alias was set without one
    client.set_registered_model_alias(name, CHAMPION, "1")
    again = promote(name, version="1", settings=settings)
    assert again.promoted and again.previous_champion is None, again.reasons
    assert TAG_RECORD in client.get_model_version(name, "1").tags

    log_training_run(outcomes.weak, settings=settings, model_name=name)
    client.set_registered_model_alias(name, CHAMPION, "2")  # moved by hand, in the MLflow UI
    result = promote(name, settings=settings)
    assert not result.promoted and result.previous_champion == "1"
    assert any(r.startswith("honest precision@100") and "worse" in r for r in result.reasons)


# --------------------------------------------------------------------------- frontier points


def _with_frontier(outcome: TrainingOutcome, world: World) -> TrainingOutcome:
    """The outcome with a real GridSearch frontier (3 points) logged beside its model.

    The constraint's groups are the tenure proxy (a real disparity in this world);
    each point is measured like the model: honest precision@k on the holdout's
    random-sample visits, its own fairness verdict, innocents per 500 visits.
    """
    from stratum_ml.training.frontier import fit_frontier, innocent_per_visits

    groups_train = pd.Series(
        (world.X_train["tenure"] == "private_rent").to_numpy(), index=world.X_train.index
    )
    points = fit_frontier(
        world.X_train[list(FEATURES)],
        pd.Series(world.y_train, index=world.X_train.index),
        groups_train,
        world.X_tune[list(FEATURES)],
        pd.Series(world.y_tune, index=world.X_tune.index),
        outcome.model,
        grid_size=3,
    )
    attribute = pd.Series(
        (world.population["tenure"] == "private_rent").map({True: "yes", False: "no"}),
        name="private_rent_proxy",
    )

    random_visits = world.holdout.loc[world.holdout["reason"] == "random_sample"]
    others = world.population.index[~world.population.index.isin(random_visits["address_id"])]
    groups = pd.Series(
        np.concatenate(
            [attribute.loc[others].to_numpy(), attribute.loc[random_visits["address_id"]]]
        )
    )

    def practice(frame: pd.DataFrame) -> np.ndarray:
        return frame["reports_all_365d"].to_numpy(dtype=float)

    def row(
        kind: str, point: int | None, mult: float, model: RiskModel | None
    ) -> dict[str, object]:
        values: dict[str, object] = {"kind": kind, "point": point, "multiplier": mult}
        scored = practice if model is None else model
        scores, _, labels = ranked_population(scored, world.holdout, world.population)
        if model is not None:
            est = honest_estimates(model, world.holdout, world.population, CONFIG.ks)[100]
            values |= {
                "precision": est.estimate,
                "precision_low": est.ci_low,
                "precision_high": est.ci_high,
                "fpr_ratio": np.nan,
                "fpr_ratio_low": np.nan,
                "fpr_ratio_high": np.nan,
            }
        innocents = innocent_per_visits(scores, labels, groups, max(CONFIG.ks))
        values |= {f"innocent_per_500_{g}": n for g, n in innocents.items()}
        return values

    rows = [row("model", None, np.nan, outcome.model), row("current_practice", None, np.nan, None)]
    rows += [row("frontier", p.point, p.multiplier, p.model) for p in points]
    reports = {
        p.point: (p.model, _outcome(p.model, world, FEATURES, attribute).report) for p in points
    }
    return replace(
        outcome,
        tables={**outcome.tables, "fairness_frontier": pd.DataFrame(rows)},
        frontier_points=reports,
    )


def test_promote_a_frontier_point_registers_it_and_records_the_choice(
    outcomes: Outcomes, settings: Settings
) -> None:
    from stratum_ml.model.promotion import PromotionRecord

    name = "frontier"
    outcome = _with_frontier(outcomes.good, outcomes.world)
    source = log_training_run(outcome, settings=settings, model_name=name)
    client = _client(settings)
    logged = {a.path for a in client.list_artifacts(source.run_id, "frontier")}
    assert logged == {f"frontier/point_{n}" for n in range(3)}

    app = typer.Typer()
    app.command()(promote_command)
    runner = CliRunner()
    short = runner.invoke(app, ["--model-name", name, "--frontier-point", "1", "--reason", "why"])
    assert short.exit_code == 1 and "at least 30 characters" in short.output
    assert len(client.search_model_versions(f"name = '{name}'")) == 1  # nothing registered
    absent = runner.invoke(
        app, ["--model-name", name, "--frontier-point", "7", "--reason", "x" * 40]
    )
    assert absent.exit_code == 1 and "has no point 7" in absent.output, absent.output

    reason = "the council chose fewer innocent private renters over precision"
    point_model, point_report = outcome.frontier_points[1]
    risk = []  # the point's own gate decides; a failed one needs an accepted risk too
    if not point_report.fairness.passed:
        risk = ["--accept-fairness-risk", "accepted by the council for the pilot year, see minutes"]
    args = ["--model-name", name, "--frontier-point", "1", "--reason", reason, *risk]
    chosen = runner.invoke(app, args)
    assert chosen.exit_code == 0, chosen.output
    said = " ".join(chosen.output.split())
    assert "frontier point 1 of version 1" in said and "registered as version 2" in said
    assert "version 2 is the champion" in said
    mv = client.get_model_version(name, "2")
    assert mv.tags["frontier_point"] == "1" and mv.tags["frontier_source_run"] == source.run_id
    loaded, _ = load_risk_model(name, "2", settings)
    X = outcomes.world.population[list(FEATURES)].head(200)
    np.testing.assert_allclose(loaded.predict_risk(X), point_model.predict_risk(X))
    assert mv.tags["fairness_passed"] == str(point_report.fairness.passed).lower()
    assert _aliases(settings, name)["champion"] == "2"
    assert _aliases(settings, name)["challenger"] == "1"  # the source stays the challenger
    record = PromotionRecord.from_json(mv.tags[TAG_RECORD])
    assert record.acceptance["frontier_point_chosen"] == "1"
    assert record.acceptance["frontier_point_reason"] == reason
    assert record.acceptance["frontier_point_source_version"] == "1"
    tradeoff = record.acceptance["frontier_point_tradeoff"]
    assert "precision@100" in tradeoff and "innocent households per 500 visits" in tradeoff
    assert re.search(r"point no \d+, yes \d+; model no \d+, yes \d+; current practice no", tradeoff)
    assert mv.tags["frontier_point_reason"] == reason
    assert champion_info(name, settings) is not None  # the signed record verifies
    # choosing it again uses the version registered for it
    again = runner.invoke(app, ["--model-name", name, "--frontier-point", "1", "--reason", reason])
    assert again.exit_code == 1
    assert "registered as version 2, which is already the champion" in " ".join(
        again.output.split()
    )
    assert len(client.search_model_versions(f"name = '{name}'")) == 2


def test_a_chosen_frontier_point_gets_a_model_card_and_a_docs_pack(
    outcomes: Outcomes, settings: Settings, tmp_path: Path
) -> None:
    from stratum_ml.cli.docs import docs as docs_command
    from stratum_ml.docs.pack import check_pack

    name = "frontier_docs"
    outcome = _with_frontier(outcomes.good, outcomes.world)
    source = log_training_run(outcome, settings=settings, model_name=name)
    client = _client(settings)
    # training wrote each point's own card: the point's numbers, not the model's
    point_card = client.download_artifacts(source.run_id, "frontier/point_2/model_card.md")
    text = Path(point_card).read_text("utf-8")
    _, point_report = outcome.frontier_points[2]
    assert text.startswith(f"# Model card: {name}\n")
    assert "## Fairness-frontier point" in text and "point 2 of the fairness frontier" in text
    assert f"{point_report.headline.estimate:.3f}" in text

    reason = "the council weighs fewer innocent households above a few percent precision"
    app = typer.Typer()
    app.command()(promote_command)
    args = ["--model-name", name, "--frontier-point", "2", "--reason", reason]
    if not point_report.fairness.passed:
        args += ["--accept-fairness-risk", "accepted by the council for the pilot year, minutes"]
    chosen = CliRunner().invoke(app, args)
    assert "registered as version 2" in " ".join(chosen.output.split()), chosen.output
    mv = client.get_model_version(name, "2")
    assert mv.tags["frontier_point_reason"] == reason  # recorded at registration already
    assert mv.tags["frontier_constraint"].startswith(
        "fairlearn GridSearch, FalsePositiveRateParity"
    )
    card = Path(client.download_artifacts(mv.run_id, "model_card.md")).read_text("utf-8")
    assert card.startswith(f"# Model card: {name} version 2\n")
    said = " ".join(card.split())
    assert "point 2 of the fairness frontier" in said
    assert "FalsePositiveRateParity on any_resident_born_outside_europe" in said
    assert "Estimated trade-off: frontier point 2 (multiplier" in said
    assert "## Chosen from the fairness frontier" in card and reason in said
    assert f"from the frontier of version 1 (training run `{source.run_id}`)" in said
    assert card.index("## Chosen") < card.index("## Intended use")
    assert f"{point_report.headline.estimate:.3f}" in card  # the point's own evaluation
    verdict = client.download_artifacts(mv.run_id, "fairness/verdict.json")
    assert json.loads(Path(verdict).read_text("utf-8"))["passed"] == point_report.fairness.passed

    docs_app = typer.Typer()
    docs_app.command()(docs_command)
    out = tmp_path / "pack"
    organisation = Path(__file__).parents[2] / "examples" / "organisation.yaml"
    written = CliRunner().invoke(
        docs_app,
        [
            "--model",
            "2",
            "--out",
            str(out),
            "--model-name",
            name,
            "--organisation",
            str(organisation),
        ],
    )
    assert written.exit_code == 0, written.output
    assert check_pack(out) == []
    technical = " ".join((out / "technical_file.md").read_text("utf-8").split())
    assert "**Fairness-frontier point 2** of the frontier of version 1" in technical
    assert "FalsePositiveRateParity" in technical and reason in technical
    assert "Estimated trade-off: frontier point 2" in technical
    entry = (out / "algoritmeregister.json").read_text("utf-8")
    assert "punt 2 van de eerlijkheidsafweging" in entry
    assessment = " ".join((out / "assessment_inputs.md").read_text("utf-8").split())
    assert "Fairness-frontier point 2" in assessment
    # an ordinary version's pack says nothing of a frontier
    plain = tmp_path / "plain"
    assert (
        CliRunner()
        .invoke(docs_app, ["--model", "1", "--out", str(plain), "--model-name", name])
        .exit_code
        == 0
    )
    assert "Fairness-frontier point" not in (plain / "technical_file.md").read_text("utf-8")
