"""What a training produces, before it is tracked: the hand-off from ``train`` to ``tracking``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from stratum_ml.evaluation.gates import GateVerdict
from stratum_ml.evaluation.metrics import HonestEstimate, NaiveEstimate
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.training.config import RunConfig
from stratum_ml.training.refit import FinalFit
from stratum_ml.training.report import EvaluationReport


@dataclass
class TrainingOutcome:
    """A fitted, evaluated and audited model with everything the run must record.

    Attributes
    ----------
    model
        The model the evaluation measured: trees fitted on the train period, stopped
        early and calibrated on the tune period; ``model.metadata_`` holds the periods.
        The report's numbers are this model's.
    config, feature_set
        The run config and the feature set the model reads.
    report
        What the training measured (honest and naive precision@k, baselines,
        probabilities and calibration, fairness verdict, variants, propensity).
        ``training.tracking`` flattens it to MLflow metrics and logs it as JSON.
    params
        Flat parameters to log (strings or numbers).
    periods
        ``train_from``, ``train_until``, ``tune_*``, ``holdout_*`` dates and sizes.
    tables
        Tidy tables to log as CSV artifacts, by file stem (``fairness_by_group``,
        ``proxy_report``, ``calibration_table``, ``shap_importance``,
        ``honest_vs_naive``, ``mitigation_comparison``, ...).
    figures
        Matplotlib figures to log as PNG, by file stem (``calibration``, ``shap_summary``).
    evaluation_data
        Frames that let a later model be compared on the same visits:
        ``holdout`` (features of the holdout visits, plus ``label``, ``reason``,
        ``inspected_at``, ``address_id``) and ``population`` (features of every scored
        address as of ``periods['population_as_of']``).
    fingerprints
        sha256 of every source file, by file name.
    row_counts
        Rows per source table.
    final_fit
        The same recipe refitted on every labelled visit (``training.refit``): what is
        registered and scores. ``None``: ``model`` itself is registered.
    frontier_points
        Each fairness-frontier point's model and its report, measured like ``model``
        (``report`` of the point: honest precision@k and the fairness verdict), by
        point number; empty when the frontier is off. Logged under
        ``frontier/point_<N>/`` so that ``stratum promote --frontier-point N`` can
        register one.
    reference_population
        Features of every address as of ``periods['reference_as_of']``, the extract
        date of the training sources: the world the model is first used in, which
        drift is measured against. ``None``: ``evaluation_data['population']``.
    """

    model: RiskModel
    config: RunConfig
    feature_set: FeatureSet
    report: EvaluationReport
    params: dict[str, Any]
    periods: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    evaluation_data: dict[str, pd.DataFrame] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    final_fit: FinalFit | None = None
    reference_population: pd.DataFrame | None = None
    frontier_points: dict[int, tuple[RiskModel, EvaluationReport]] = field(default_factory=dict)

    @property
    def registered_model(self) -> RiskModel:
        """The model to register: the final fit's when there is one, else ``model``."""
        return self.final_fit.model if self.final_fit is not None else self.model

    @property
    def honest(self) -> dict[int, HonestEstimate]:
        """Honest precision@k estimates, by k (from the report)."""
        return self.report.honest

    @property
    def naive(self) -> dict[int, NaiveEstimate]:
        """Naive precision@k estimates, by k (from the report)."""
        return self.report.naive

    @property
    def fairness_verdict(self) -> GateVerdict:
        """The fairness gate's verdict on the model (from the report)."""
        return self.report.fairness

    @property
    def headline(self) -> HonestEstimate:
        """The honest estimate at the configured headline k."""
        return self.honest[self.config.headline_k]
