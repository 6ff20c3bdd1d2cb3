"""Where models are kept: the MLflow store named by the settings.

Training writes runs and versions to it, scoring and serving read them; both
connect through :func:`configure_mlflow` and :func:`client_for`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from stratum_ml.config import Settings, get_settings, secure_home
from stratum_ml.io import process_alive

__all__ = [
    "EXPERIMENT_NAME",
    "client_for",
    "configure_mlflow",
    "ensure_experiment",
    "interrupted_runs_failed",
    "owner_tags",
]

#: MLflow experiment that holds every training run.
EXPERIMENT_NAME = "stratum"

#: the homes :func:`configure_mlflow` has secured in this process: it walks a home once,
#: not at every call (the service looks the champion up every 30 s, and a walk of the
#: home grows with every run's artifacts); what this process writes later is private by
#: its umask (:func:`~stratum_ml.config.restrict_umask`)
_SECURED: set[Path] = set()


def configure_mlflow(settings: Settings | None = None) -> str:
    """Point MLflow at the store named by the settings and make sure the experiment exists.

    Sets the tracking and registry URI (``STRATUM_MLFLOW_URI``, default SQLite under
    ``STRATUM_HOME``). For a local SQLite store the home folder is created (and made
    its owner's only, once per process: :func:`~stratum_ml.config.secure_home`) and the
    experiment's artifacts go to ``settings.artifact_root`` (so do those of a
    PostgreSQL store; see :func:`ensure_experiment`); a tracking server keeps its
    own artifact location. MLflow's per-download progress bars are turned off
    unless ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set: the artifacts here are
    small and the bars drown the command's own output.

    Parameters
    ----------
    settings : Settings, optional
        Default: read from the environment now.

    Returns
    -------
    str
        Id of the ``stratum`` experiment.
    """
    settings = settings or get_settings()
    uri = settings.tracking_uri
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.mlflow_uri is None:
        home = settings.home.absolute()
        if home not in _SECURED or not home.is_dir():
            secure_home(home)
            _SECURED.add(home)
        # created owner-only here: SQLite keeps a file's mode, and gives its journal the same
        os.close(os.open(settings.home / "mlflow.db", os.O_RDWR | os.O_CREAT, 0o600))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return ensure_experiment(EXPERIMENT_NAME, settings)


#: URI schemes of MLflow stores that are a database, not a tracking server
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def ensure_experiment(name: str, settings: Settings) -> str:
    """The id of MLflow experiment ``name``, created when missing (after :func:`configure_mlflow`).

    A database store (SQLite, PostgreSQL, ...) keeps a new experiment's artifacts
    under ``settings.artifact_root`` (MLflow would otherwise write them to ``./mlruns``
    in whatever folder the command ran from); a tracking server keeps its own
    artifact location.
    """
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    scheme = settings.tracking_uri.split(":", 1)[0].split("+", 1)[0]
    location = settings.artifact_root.as_uri() if scheme in _DATABASE_SCHEMES else None
    return str(mlflow.create_experiment(name, artifact_location=location))


def client_for(settings: Settings) -> MlflowClient:
    """An MLflow client on the store named by ``settings`` (after :func:`configure_mlflow`)."""
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


#: run tags naming the process that started a run (:func:`owner_tags`)
TAG_OWNER_HOST = "stratum.host"
TAG_OWNER_PID = "stratum.pid"


def owner_tags() -> dict[str, str]:
    """Tags naming this process, set on every run it starts (:func:`interrupted_runs_failed`)."""
    return {TAG_OWNER_HOST: socket.gethostname(), TAG_OWNER_PID: str(os.getpid())}


def interrupted_runs_failed(settings: Settings | None = None) -> list[str]:
    """Mark FAILED every run still RUNNING whose process on this host is gone.

    A process killed in the middle of a training (say after "Created version N") or
    of a scoring run leaves its MLflow run RUNNING for ever. ``train`` and ``serve``
    call this at their start. A run is only touched when it names its process
    (:func:`owner_tags`), that process ran on this host, and it is no longer alive:
    a run another live process is writing, or one started elsewhere, is left alone.

    Returns
    -------
    list of str
        The ids of the runs marked FAILED.
    """
    settings = settings or get_settings()
    configure_mlflow(settings)
    client = client_for(settings)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    host = socket.gethostname()
    failed: list[str] = []
    for run in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        pid = tags.get(TAG_OWNER_PID, "")
        if tags.get(TAG_OWNER_HOST) != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        client.set_terminated(run.info.run_id, "FAILED")
        client.set_tag(
            run.info.run_id, "stratum.interrupted", "its process ended without ending it"
        )
        failed.append(run.info.run_id)
    return failed
