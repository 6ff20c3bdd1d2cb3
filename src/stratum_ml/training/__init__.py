"""From past visits to a calibrated, tracked, registered model.

dataset (labels x features as of each visit date) -> split (by time) ->
propensity (who got visited) -> model (LightGBM + calibrator) -> train (MLflow run)
-> registry (aliases champion / challenger, gated promotion).
"""
