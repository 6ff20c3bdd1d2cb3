"""The pyfunc a registered version loads as: frame conversion, signature, predictions."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.pyfunc import (
    MODEL_DIR_ARTIFACT,
    PREDICTION_COLUMNS,
    PYFUNC_ENTRY,
    RiskPyfunc,
    pyfunc_signature,
    to_pyfunc_frame,
)
from stratum_ml.model.risk_model import RiskModel


def _model() -> tuple[RiskModel, pd.DataFrame]:
    rng = np.random.default_rng(4)
    n = 1500
    X = pd.DataFrame(
        {
            "n": rng.poisson(2, n),
            "tenure": pd.Categorical(rng.choice(["own", "rent"], n), categories=["own", "rent"]),
            "flag": rng.random(n) < 0.3,
        }
    )
    y = (rng.random(n) < np.where(X["tenure"] == "rent", 0.4, 0.1) + 0.05 * X["n"]).astype(int)
    params = LightGBMParams(n_estimators=30, early_stopping_rounds=5)
    return RiskModel(params, "sigmoid").fit(X, y, X_tune=X, y_tune=y), X


def test_frames_become_strings_and_floats_without_changing_the_input() -> None:
    X = pd.DataFrame(
        {
            "tenure": pd.Categorical(["rent", None]),
            "n": np.array([1, 2], dtype="int64"),
            "flag": [True, False],
            "label": ["a", "b"],
        }
    )
    out = to_pyfunc_frame(X)
    assert out["tenure"].tolist() == ["rent", None]
    assert out["n"].dtype == np.float64 and out["flag"].dtype == np.float64
    assert out["label"].tolist() == ["a", "b"]
    assert isinstance(X["tenure"].dtype, pd.CategoricalDtype)


def test_the_signature_types_every_feature_and_both_outputs() -> None:
    model, _ = _model()
    signature = pyfunc_signature(model)
    inputs = {c["name"]: c["type"] for c in signature.inputs.to_dict()}
    assert inputs == {"n": "double", "tenure": "string", "flag": "double"}
    assert [c["name"] for c in signature.outputs.to_dict()] == list(PREDICTION_COLUMNS)


def test_the_pyfunc_answers_the_calibrated_probability(tmp_path: Path) -> None:
    model, X = _model()
    model.save(tmp_path)
    pyfunc = RiskPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts={MODEL_DIR_ARTIFACT: str(tmp_path)}))
    rows = to_pyfunc_frame(X.head(50))
    answer = pyfunc.predict(None, rows)
    assert list(answer.columns) == list(PREDICTION_COLUMNS)
    assert answer.index.equals(rows.index)
    np.testing.assert_allclose(answer["probability"], model.predict_risk(X.head(50)))
    np.testing.assert_allclose(answer["raw_score"], model.raw_score(X.head(50)))


def test_the_models_from_code_entry_point_is_shipped_beside_the_pyfunc() -> None:
    assert PYFUNC_ENTRY.is_file()
    assert "stratum_ml.model.pyfunc import RiskPyfunc" in PYFUNC_ENTRY.read_text()
