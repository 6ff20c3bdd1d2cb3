"""From past visits to a calibrated, tracked, registered model.

dataset (labels x features as of each visit date) -> split (by time) ->
propensity (who got visited) -> train (fits :class:`stratum_ml.model.RiskModel`,
assesses it: holdout, report) -> tracking (one MLflow run, version ``challenger``)
-> registry (gated promotion to ``champion``).

The model itself and the registry's read side are the runtime's,
:mod:`stratum_ml.model`; scoring and serving read them there.
"""
