"""Ranking and probability metrics, and an honest precision@k under selective labels.

Every function here is pure: arrays in, numbers, small frozen dataclasses or
frames out. Nothing depends on how a model was trained.

A municipality visits the top of a ranked list, so the metrics that matter are
*ranking* metrics at a cut-off ``k`` (precision@k, lift@k), next to the usual
probability metrics (ROC AUC, PR AUC, Brier score, log loss, calibration).

Labels exist only for visited addresses, and most visits were chosen by earlier
policy (reports, projects, earlier models). Precision@k measured on those visits
("naive") answers the wrong question. :func:`honest_precision_at_k` estimates
precision@k of the *whole population* from the ``random_sample`` visits only;
:func:`naive_precision_at_k` is the biased number it should be reported beside.
"""

from stratum_ml.evaluation.metrics._bootstrap import BootstrapResult, bootstrap_ci
from stratum_ml.evaluation.metrics._probability import (
    calibration_table,
    classification_report,
    plot_calibration,
    wilson_interval,
)
from stratum_ml.evaluation.metrics._ranking import (
    lift_at_k,
    precision_at_k,
    ranking_report,
    top_k_mask,
)
from stratum_ml.evaluation.metrics._selective import (
    DEFAULT_WIDEN_TO,
    HonestEstimate,
    NaiveEstimate,
    honest_precision_at_k,
    naive_precision_at_k,
)

__all__ = [
    "DEFAULT_WIDEN_TO",
    "BootstrapResult",
    "HonestEstimate",
    "NaiveEstimate",
    "bootstrap_ci",
    "calibration_table",
    "classification_report",
    "honest_precision_at_k",
    "lift_at_k",
    "naive_precision_at_k",
    "plot_calibration",
    "precision_at_k",
    "ranking_report",
    "top_k_mask",
    "wilson_interval",
]
