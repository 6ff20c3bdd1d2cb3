"""The probability calibrator of a :class:`~stratum_ml.model.risk_model.RiskModel`.

It maps LightGBM's raw score (log-odds) to a probability, and is stored as plain
numbers in the model's ``model.json`` (no pickles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

__all__ = ["Calibrator"]


@dataclass
class Calibrator:
    """Maps LightGBM raw scores (log-odds) to calibrated probabilities.

    ``isotonic``: a monotone step function (piecewise-linear between thresholds);
    ``sigmoid``: Platt scaling ``1 / (1 + exp(-(a * raw + b)))``.
    """

    method: Literal["isotonic", "sigmoid"]
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(
        cls,
        raw: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray | None,
        method: Literal["isotonic", "sigmoid"],
    ) -> Calibrator:
        """Fit on held-out raw scores and labels."""
        if len(np.unique(labels)) < 2:
            raise ValueError("calibration needs both violations and non-violations in tune visits")
        if method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            iso.fit(raw, labels, sample_weight=weights)
            return cls(method, x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
        lr = LogisticRegression(C=1e6)
        lr.fit(raw.reshape(-1, 1), labels, sample_weight=weights)
        return cls(method, a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.asarray(np.interp(raw, np.asarray(self.x), np.asarray(self.y)))
        return 1.0 / (1.0 + np.exp(-(self.a * raw + self.b)))
