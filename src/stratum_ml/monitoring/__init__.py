"""Watching a model at work: has the population drifted from what the model learnt?

* :mod:`.drift` -- compare the features and scores of a scored population with the
  training reference of the model version (:mod:`stratum_ml.model.reference`):
  PSI and missing-rate change per feature, KS on the score, the share outside the
  training range; thresholds, and a verdict with its reasons in words.
"""

from stratum_ml.monitoring.drift import (
    ACCEPTED_DRIFT,
    PSI_EPSILON,
    DriftResult,
    DriftThresholds,
    FeatureDrift,
    ScoreDrift,
    compare,
    drift_of,
    psi,
)

__all__ = [
    "ACCEPTED_DRIFT",
    "PSI_EPSILON",
    "DriftResult",
    "DriftThresholds",
    "FeatureDrift",
    "ScoreDrift",
    "compare",
    "drift_of",
    "psi",
]
