"""The likely violation type: which kind of violation a visit would most likely find.

Beside the risk model (will a visit find a violation?), a registered version may
carry a second, multiclass LightGBM model of the violation *type* among the visits
that found one. It reads the same features, in the same matrix
(:meth:`~stratum_ml.model.risk_model.RiskModel.matrix`), and is saved in the same
model folder as ``violation_type.txt`` (the booster) and ``violation_type.json``
(classes and held-out metrics), so a registered version carries it and a version
saved before it existed loads without it.

The contract's six violation types are grouped into the five a case handler acts
on (:data:`VIOLATION_TYPE_GROUPS`); a group too small to learn from was merged
into ``other`` when the model was trained (``metrics_["merged_into_other"]``).
Training lives in :mod:`stratum_ml.training.violation_type`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from stratum_ml.io import write_text_atomic

__all__ = [
    "BOOSTER_FILE",
    "META_FILE",
    "VIOLATION_TYPE_CLASSES",
    "VIOLATION_TYPE_GROUPS",
    "VIOLATION_TYPE_LABELS",
    "ViolationTypeModel",
]

#: the groups a likely violation type is one of, in display order
VIOLATION_TYPE_CLASSES = (
    "address_fraud",
    "subletting_or_room_rental",
    "overcrowding",
    "exploitation",
    "other",
)
#: the contract's ``inspections.violation_type`` values, grouped
VIOLATION_TYPE_GROUPS: dict[str, str] = {
    "address_fraud": "address_fraud",
    "illegal_subletting": "subletting_or_room_rental",
    "illegal_room_rental": "subletting_or_room_rental",
    "overcrowding": "overcrowding",
    "exploitation": "exploitation",
    "other": "other",
}
#: each group in words, per language
VIOLATION_TYPE_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "address_fraud": "address fraud",
        "subletting_or_room_rental": "illegal subletting or room rental",
        "overcrowding": "overcrowding",
        "exploitation": "exploitation",
        "other": "other violation",
    },
    "nl": {
        "address_fraud": "adresfraude",
        "subletting_or_room_rental": "illegale onderverhuur of kamerverhuur",
        "overcrowding": "overbewoning",
        "exploitation": "uitbuiting",
        "other": "andere overtreding",
    },
}
BOOSTER_FILE = "violation_type.txt"
META_FILE = "violation_type.json"
#: version of the ``violation_type.json`` layout
FORMAT_VERSION = 1


class ViolationTypeModel:
    """A fitted multiclass model of the violation type, on the risk model's matrix.

    Parameters
    ----------
    classes
        The class of each booster output, in order (a subset of
        :data:`VIOLATION_TYPE_CLASSES`).
    booster
        LightGBM multiclass booster (``num_class == len(classes)``).
    best_iteration
        The iteration to predict with.
    metrics
        Held-out accuracy, class counts and the like, recorded with the model.

    Attributes
    ----------
    classes_ : list of str
    booster_ : lightgbm.Booster
    best_iteration_ : int
    metrics_ : dict
    """

    def __init__(
        self,
        classes: list[str],
        booster: lgb.Booster,
        best_iteration: int,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self.classes_ = list(classes)
        self.booster_ = booster
        self.best_iteration_ = int(best_iteration)
        self.metrics_ = dict(metrics or {})

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """The share of each class per row, shape ``(n, len(classes_))``; rows sum to 1."""
        proba = np.asarray(self.booster_.predict(matrix, num_iteration=self.best_iteration_))
        return proba.reshape(len(matrix), len(self.classes_))

    def likely(self, matrix: np.ndarray, index: pd.Index) -> pd.DataFrame:
        """The most likely class of each row and its share.

        Parameters
        ----------
        matrix
            The risk model's matrix of the rows.
        index
            The rows' index.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``index``: ``violation_type`` (str, one of :attr:`classes_`) and
            ``violation_type_share`` (float in 0..1, the predicted share of that class).
        """
        if len(matrix) == 0:
            return pd.DataFrame(
                {
                    "violation_type": pd.Series([], dtype=object),
                    "violation_type_share": pd.Series([], dtype=np.float64),
                },
                index=index,
            )
        proba = self.predict_proba(matrix)
        best = proba.argmax(axis=1)
        return pd.DataFrame(
            {
                "violation_type": np.asarray(self.classes_, dtype=object)[best],
                "violation_type_share": proba[np.arange(len(proba)), best].astype(np.float64),
            },
            index=index,
        )

    def save(self, folder: str | Path) -> None:
        """Write ``violation_type.txt`` and ``violation_type.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / BOOSTER_FILE, self.booster_.model_to_string())
        meta = {
            "format_version": FORMAT_VERSION,
            "classes": self.classes_,
            "best_iteration": self.best_iteration_,
            "metrics": self.metrics_,
        }
        write_text_atomic(folder / META_FILE, json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, folder: str | Path) -> ViolationTypeModel | None:
        """Read the model saved in ``folder``; ``None`` when the folder holds none."""
        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            return None
        meta = json.loads((folder / META_FILE).read_text("utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{folder}: unsupported violation type model format {meta.get('format_version')!r}"
            )
        booster = lgb.Booster(model_str=(folder / BOOSTER_FILE).read_text("utf-8"))
        return cls(list(meta["classes"]), booster, int(meta["best_iteration"]), meta["metrics"])
