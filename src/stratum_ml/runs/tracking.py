"""Each scoring run as a run of the MLflow experiment ``scoring``: runs over time in the UI."""

from __future__ import annotations

from typing import Any

from stratum_ml.config import Settings

#: MLflow experiment that holds one run per scoring run
SCORING_EXPERIMENT = "scoring"
#: artifact of an MLflow scoring run holding the drift result
DRIFT_ARTIFACT = "drift.json"


def start_scoring_run(settings: Settings, run_name: str, tags: dict[str, str]) -> str:
    """Start a run in the experiment ``scoring`` (created when missing); return its id."""
    from stratum_ml.model.store import client_for, configure_mlflow, ensure_experiment, owner_tags

    configure_mlflow(settings)
    experiment_id = ensure_experiment(SCORING_EXPERIMENT, settings)
    run = client_for(settings).create_run(
        experiment_id, run_name=run_name, tags=owner_tags() | tags
    )
    return str(run.info.run_id)


def finish_scoring_run(
    settings: Settings,
    mlflow_run_id: str,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    drift_json: str | None,
    tags: dict[str, str] | None = None,
) -> None:
    """Log a stored scoring run's params, metrics, tags and drift result, and end it FINISHED."""
    import math
    import time

    from mlflow.entities import Metric, Param, RunTag

    from stratum_ml.model.store import client_for

    client = client_for(settings)
    now = int(time.time() * 1000)
    client.log_batch(
        mlflow_run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items() if math.isfinite(v)],
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in (tags or {}).items()],
    )
    if drift_json is not None:
        client.log_text(mlflow_run_id, drift_json, DRIFT_ARTIFACT)
    client.set_terminated(mlflow_run_id, "FINISHED")


def end_failed(settings: Settings, mlflow_run_id: str) -> None:
    """End a scoring run that could not be stored or logged as FAILED."""
    from stratum_ml.model.store import client_for

    client_for(settings).set_terminated(mlflow_run_id, "FAILED")
