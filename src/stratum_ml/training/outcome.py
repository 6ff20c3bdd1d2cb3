"""What a training produces, before it is tracked: the hand-off from ``train`` to ``tracking``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from stratum_ml.evaluation.gates import GateVerdict
from stratum_ml.evaluation.metrics import HonestEstimate, NaiveEstimate
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.training.config import RunConfig
from stratum_ml.training.model import RiskModel


@dataclass
class TrainingOutcome:
    """A fitted, evaluated and audited model with everything the run must record.

    Attributes
    ----------
    model
        The fitted model; ``model.metadata_`` holds the training period.
    config, feature_set
        The run config and the feature set the model reads.
    params
        Flat parameters to log (strings or numbers).
    metrics
        Flat metrics to log (``honest_precision_at_100``, ``holdout_roc_auc``, ...).
    periods
        ``train_from``, ``train_until``, ``tune_*``, ``holdout_*`` dates and sizes.
    honest, naive
        Honest and naive precision at each k, by k.
    fairness_verdict
        The fairness gate's verdict for the model.
    tables
        Tidy tables to log as CSV artifacts, by file stem (``fairness_by_group``,
        ``proxy_report``, ``ranking_report``, ``calibration_table``, ``feature_catalogue``,
        ``shap_importance``, ``mitigation_comparison``, ...).
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
    """

    model: RiskModel
    config: RunConfig
    feature_set: FeatureSet
    params: dict[str, Any]
    metrics: dict[str, float]
    periods: dict[str, Any]
    honest: dict[int, HonestEstimate]
    naive: dict[int, NaiveEstimate]
    fairness_verdict: GateVerdict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    evaluation_data: dict[str, pd.DataFrame] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def headline(self) -> HonestEstimate:
        """The honest estimate at the configured headline k."""
        return self.honest[self.config.headline_k]
