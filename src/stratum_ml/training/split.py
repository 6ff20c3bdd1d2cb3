"""Time-based split of visits: train on earlier visits, tune and evaluate on later ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratum_ml.training.config import SplitConfig


@dataclass(frozen=True)
class TimeSplit:
    """Masks over visits in date order, and the dates that separate them.

    ``train``: fit the trees. ``tune``: early stopping and probability calibration.
    ``holdout``: evaluation only, never seen while fitting anything.
    """

    train: np.ndarray
    tune: np.ndarray
    holdout: np.ndarray
    tune_start: pd.Timestamp
    holdout_start: pd.Timestamp

    def describe(self, dates: pd.Series) -> dict[str, str | int]:
        """Periods and sizes, for the run summary and the model card."""
        out: dict[str, str | int] = {}
        for name in ("train", "tune", "holdout"):
            mask = getattr(self, name)
            d = dates.to_numpy()[mask]
            out[f"{name}_n"] = int(mask.sum())
            out[f"{name}_from"] = str(pd.Timestamp(d.min()).date()) if mask.any() else ""
            out[f"{name}_until"] = str(pd.Timestamp(d.max()).date()) if mask.any() else ""
        return out


def time_split(dates: pd.Series, config: SplitConfig) -> TimeSplit:
    """Split at dates so that roughly the configured fractions fall in tune and holdout.

    A date never straddles two parts: all visits of one day land in the same part.
    """
    values = pd.to_datetime(dates).to_numpy()
    if len(values) < 30:
        raise ValueError(f"only {len(values)} labelled visits; a time split needs at least 30")
    ordered = np.sort(values)
    n = len(ordered)
    holdout_start = pd.Timestamp(ordered[int(n * (1 - config.holdout_fraction))])
    tune_start = pd.Timestamp(
        ordered[int(n * (1 - config.holdout_fraction - config.tune_fraction))]
    )
    holdout = values >= holdout_start.to_datetime64()
    tune = (values >= tune_start.to_datetime64()) & ~holdout
    train = ~(tune | holdout)
    for name, mask in (("train", train), ("tune", tune), ("holdout", holdout)):
        if not mask.any():
            raise ValueError(f"the time split left no visits in {name}; too few distinct dates")
    return TimeSplit(train, tune, holdout, tune_start, holdout_start)
