"""The registered model as MLflow sees it: a pyfunc that returns calibrated probabilities.

MLflow's own lightgbm flavour answers ``predict`` with class labels, and pandas
``category`` columns break pyfunc schema enforcement (see ``docs/stack-notes.md``).
:class:`RiskPyfunc` wraps a saved :class:`~stratum_ml.model.risk_model.RiskModel`
instead: categorical features arrive as plain strings, which ``RiskModel.matrix``
maps to the codes the trees were trained on, and the answer is the calibrated
probability beside the raw score (log-odds) that explanations add up to.

The model is logged *from code* (``pyfunc_model.py`` beside this module), so
loading it unpickles nothing; the stratum_ml package travels with it as
``code_paths``. Logging it is training's job (``training.tracking``); this module
is what a loaded model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema

from stratum_ml.model.risk_model import RiskModel

__all__ = [
    "MODEL_DIR_ARTIFACT",
    "PREDICTION_COLUMNS",
    "PYFUNC_ENTRY",
    "RiskPyfunc",
    "pyfunc_signature",
    "to_pyfunc_frame",
]

#: Artifact key under which the saved :class:`RiskModel` folder travels with the pyfunc.
MODEL_DIR_ARTIFACT = "model_dir"
#: Columns of the pyfunc's answer, in order.
PREDICTION_COLUMNS = ("probability", "raw_score")
#: The models-from-code entry point MLflow stores with the model and runs on loading.
PYFUNC_ENTRY = Path(__file__).with_name("pyfunc_model.py")


def to_pyfunc_frame(X: pd.DataFrame) -> pd.DataFrame:
    """Features in the form the pyfunc signature accepts.

    ``category`` columns become plain Python strings (a missing value stays
    missing, as ``None``), numbers and booleans become ``float64``; any other
    column is left as it is. MLflow refuses ``category`` columns and will not
    cast ``int64`` to the ``double`` a feature is declared as, so callers of the
    registered model pass their feature frame through this first.

    Parameters
    ----------
    X : pandas.DataFrame
        Feature frame as built by the feature library.

    Returns
    -------
    pandas.DataFrame
        A new frame with the same index and columns; ``X`` is not changed.

    Examples
    --------
    >>> X = pd.DataFrame({"tenure": pd.Categorical(["social_rent", None]), "n": [1, 2]})
    >>> out = to_pyfunc_frame(X)
    >>> out["tenure"].tolist(), out["n"].dtype.name
    (['social_rent', None], 'float64')
    """
    out = X.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.astype(object).where(column.notna(), None)
        elif pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(
            column.dtype
        ):
            out[name] = column.astype(np.float64)
    return out


def pyfunc_signature(model: RiskModel) -> ModelSignature:
    """The pyfunc's contract: one ``string`` or ``double`` column per feature in, two out.

    Written from the model rather than inferred from an input example, so that a
    feature that happens to be missing in every example row is still typed, and
    every feature column is required (the model cannot score without it; its
    values may be missing).

    Parameters
    ----------
    model : RiskModel
        A fitted model.

    Returns
    -------
    mlflow.models.ModelSignature
    """
    inputs = Schema(
        [
            ColSpec("string" if name in model.categories_ else "double", name)
            for name in model.feature_names_in_
        ]
    )
    outputs = Schema([ColSpec("double", name) for name in PREDICTION_COLUMNS])
    return ModelSignature(inputs=inputs, outputs=outputs)


class RiskPyfunc(PythonModel):
    """MLflow pyfunc around a saved :class:`RiskModel`.

    ``load_context`` reads the model from the ``model_dir`` artifact; ``predict``
    takes a frame of features (see :func:`to_pyfunc_frame`) and returns one row
    per input row with ``probability`` (calibrated) and ``raw_score`` (log-odds).

    Attributes
    ----------
    risk_model : RiskModel
        The loaded model (set by ``load_context``).
    """

    risk_model: RiskModel

    def load_context(self, context: Any) -> None:
        """Load the :class:`RiskModel` folder logged as the ``model_dir`` artifact."""
        self.risk_model = RiskModel.load(context.artifacts[MODEL_DIR_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Calibrated probability and raw score per row, index kept.

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext
            Unused; the model was read in ``load_context``.
        model_input : pandas.DataFrame
            One column per feature the model reads (others are ignored).
        params : dict, optional
            Unused; accepted for the pyfunc interface.

        Returns
        -------
        pandas.DataFrame
            Columns ``probability`` and ``raw_score``.
        """
        raw = self.risk_model.raw_score(model_input)
        return pd.DataFrame(
            {"probability": self.risk_model.calibrator_(raw), "raw_score": raw},
            index=model_input.index,
        )
