"""The calibrator: raw scores (log-odds) to probabilities, stored as plain numbers."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_ml.model.calibration import Calibrator


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(0.0, 1.5, 4000)
    labels = (rng.random(raw.size) < 1.0 / (1.0 + np.exp(-(0.8 * raw - 1.0)))).astype(float)
    return raw, labels


def test_platt_scaling_recovers_the_true_link() -> None:
    raw, labels = _data()
    cal = Calibrator.fit(raw, labels, None, "sigmoid")
    assert cal.method == "sigmoid"
    assert cal.a == pytest.approx(0.8, abs=0.1) and cal.b == pytest.approx(-1.0, abs=0.1)
    p = cal(np.array([-2.0, 0.0, 2.0]))
    assert np.all(np.diff(p) > 0) and np.all((p > 0) & (p < 1))


def test_isotonic_is_monotone_and_clipped_to_its_range() -> None:
    raw, labels = _data(1)
    cal = Calibrator.fit(raw, labels, None, "isotonic")
    grid = np.linspace(-10, 10, 200)
    p = cal(grid)
    assert np.all(np.diff(p) >= 0)
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert cal(np.array([-100.0]))[0] == pytest.approx(cal.y[0])


def test_weights_shift_the_fit() -> None:
    raw, labels = _data(2)
    weights = np.where(labels == 1, 3.0, 1.0)
    plain = Calibrator.fit(raw, labels, None, "sigmoid")
    weighted = Calibrator.fit(raw, labels, weights, "sigmoid")
    assert weighted(np.array([0.0]))[0] > plain(np.array([0.0]))[0]


def test_one_outcome_only_is_refused() -> None:
    with pytest.raises(ValueError, match="both violations and non-violations"):
        Calibrator.fit(np.arange(5.0), np.zeros(5), None, "sigmoid")


def test_its_fields_rebuild_it() -> None:
    raw, labels = _data(3)
    cal = Calibrator.fit(raw, labels, None, "isotonic")
    again = Calibrator(**cal.__dict__)
    np.testing.assert_array_equal(again(raw), cal(raw))
