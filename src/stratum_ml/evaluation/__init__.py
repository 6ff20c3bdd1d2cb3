"""Evaluation: ranking and probability metrics, honest precision@k, fairness audit, gates.

Pure functions over arrays and frames, independent of how a model was trained:

* :mod:`.metrics` -- precision@k, lift, calibration, honest vs naive precision@k
  under selective labels, and the shared bootstrap.
* :mod:`.fairness` -- group metrics of a top-k selection (fairlearn ``MetricFrame``),
  and the proxy check of features against protected attributes.
* :mod:`.gates` -- the fairness gate and the honest-precision promotion check.
"""

from stratum_ml.evaluation.fairness import (
    METRICS_SPEC,
    FairnessResult,
    GroupMetric,
    fairness_audit,
    proxy_check,
)
from stratum_ml.evaluation.gates import (
    FairnessGateConfig,
    GateVerdict,
    PromotionCheck,
    fairness_gate,
)
from stratum_ml.evaluation.metrics import (
    BootstrapResult,
    HonestEstimate,
    NaiveEstimate,
    bootstrap_ci,
    calibration_table,
    classification_report,
    honest_precision_at_k,
    lift_at_k,
    naive_precision_at_k,
    plot_calibration,
    precision_at_k,
    ranking_report,
    top_k_mask,
    wilson_interval,
)

__all__ = [
    "METRICS_SPEC",
    "BootstrapResult",
    "FairnessGateConfig",
    "FairnessResult",
    "GateVerdict",
    "GroupMetric",
    "HonestEstimate",
    "NaiveEstimate",
    "PromotionCheck",
    "bootstrap_ci",
    "calibration_table",
    "classification_report",
    "fairness_audit",
    "fairness_gate",
    "honest_precision_at_k",
    "lift_at_k",
    "naive_precision_at_k",
    "plot_calibration",
    "precision_at_k",
    "proxy_check",
    "ranking_report",
    "top_k_mask",
    "wilson_interval",
]
