"""Scoring runs: score the population once a month and remember what was on the list.

A run scores every dwelling as of a date with one model version and stores the
result in the operational store (:mod:`stratum_ml.store`), immutable: every
dwelling's rank and probability, the fallback ranking of current practice beside
it, the reasons of the top K, the drift against the version's training
reference, and the changes against the previous run of the same model.

``identity``  the run id: a hash of the as-of date, model version and sources
``changes``   what entered, left or moved in the top K since the previous run
``create``    :func:`create_run`, the one call ``stratum run`` makes
``read``      :func:`list_runs`, :func:`get_run`, :func:`work_list`, :func:`changes_of`,
              :func:`changes_by_district`, :func:`drift_of_run`, :func:`shadow_ranks`,
              :func:`state_of` (the work-list state rule)
``tracking``  each run logged to the MLflow experiment ``scoring``

``scoring/`` stays pure scoring; this package is what makes a score a run.
"""

from __future__ import annotations

from stratum_ml.runs.create import NO_REFERENCE, RunModel, create_run
from stratum_ml.runs.identity import run_id_of
from stratum_ml.runs.read import (
    RunNotFound,
    RunSummary,
    changes_by_district,
    changes_of,
    drift_of_run,
    fallback_list,
    get_run,
    list_runs,
    shadow_ranks,
    state_of,
    work_list,
)

__all__ = [
    "NO_REFERENCE",
    "RunModel",
    "RunNotFound",
    "RunSummary",
    "changes_by_district",
    "changes_of",
    "create_run",
    "drift_of_run",
    "fallback_list",
    "get_run",
    "list_runs",
    "run_id_of",
    "shadow_ranks",
    "state_of",
    "work_list",
]
