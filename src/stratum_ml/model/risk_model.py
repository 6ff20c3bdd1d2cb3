"""The risk model: LightGBM on approved features plus a probability calibrator.

Saved as plain files — ``booster.txt`` (LightGBM's own text format) and
``model.json`` (feature names, category lists, calibrator, metadata) — so a model
can be read, diffed and loaded without unpickling anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from stratum_ml.io import write_text_atomic
from stratum_ml.model.calibration import Calibrator
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.violation_type import ViolationTypeModel

__all__ = ["FORMAT_VERSION", "RiskModel"]

#: version of the ``model.json`` layout; :meth:`RiskModel.load` refuses any other
FORMAT_VERSION = 1
#: at most this many rows are predicted on one thread: for a request's few rows,
#: starting LightGBM's OpenMP threads costs several times the prediction itself
#: (0.7 ms against 3.7 ms for one row's TreeSHAP on 2 cores), and a service's
#: workers already keep the cores busy
SMALL_BATCH_ROWS = 256


def predict_threads(n_rows: int) -> dict[str, Any]:
    """LightGBM's ``num_threads`` for predicting ``n_rows`` rows: one for a small batch,
    OpenMP's default (all cores) otherwise."""
    return {"num_threads": 1} if n_rows <= SMALL_BATCH_ROWS else {}


class RiskModel:
    """LightGBM binary classifier with early stopping and a calibrator fitted on later visits.

    Parameters
    ----------
    params
        LightGBM settings.
    calibration
        ``"isotonic"`` or ``"sigmoid"`` (Platt).
    seed
        Random seed for LightGBM's bagging.

    Attributes
    ----------
    feature_names_in_ : list of str
    categories_ : dict of str to list of str
        Category lists of the categorical features; codes are positions in these lists.
    booster_ : lightgbm.Booster
    best_iteration_ : int
    calibrator_ : Calibrator
    metadata_ : dict
        Free-form facts stored with the model (training period, feature set, ...).
    violation_types_ : ViolationTypeModel or None
        The model of the likely violation type, set by training after :meth:`fit`;
        ``None`` for a model saved without one.
    """

    violation_types_: ViolationTypeModel | None = None

    def __init__(
        self,
        params: LightGBMParams | None = None,
        calibration: Literal["isotonic", "sigmoid"] = "isotonic",
        seed: int = 0,
    ) -> None:
        self.params = params
        self.calibration = calibration
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        X_tune: pd.DataFrame,
        y_tune: pd.Series | np.ndarray,
        sample_weight: np.ndarray | None = None,
        tune_weight: np.ndarray | None = None,
    ) -> RiskModel:
        """Fit trees on ``X``, stop early and calibrate on ``X_tune`` (later visits)."""
        self._describe_columns(X)
        train = self._dataset(X, y, sample_weight)
        tune_matrix = self.matrix(X_tune)
        tune = lgb.Dataset(
            tune_matrix, label=np.asarray(y_tune, dtype=float), weight=tune_weight, reference=train
        )
        p = self.params or LightGBMParams()
        self.booster_ = lgb.train(
            self.lightgbm_params(),
            train,
            num_boost_round=p.n_estimators,
            valid_sets=[tune],
            valid_names=["tune"],
            callbacks=[lgb.early_stopping(p.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(
            self.booster_.best_iteration or self.booster_.current_iteration()
        )
        raw_tune = self.booster_.predict(
            tune_matrix, raw_score=True, num_iteration=self.best_iteration_
        )
        self.calibrator_ = Calibrator.fit(
            np.asarray(raw_tune), np.asarray(y_tune, dtype=float), tune_weight, self.calibration
        )
        self.metadata_: dict[str, Any] = {}
        return self

    def fit_rounds(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        n_rounds: int,
        calibrator: Calibrator,
        sample_weight: np.ndarray | None = None,
    ) -> RiskModel:
        """Fit exactly ``n_rounds`` trees on ``X`` and take a calibrator fitted elsewhere.

        For a final fit on every labelled visit, where no later visits are left to stop
        early or calibrate on: the number of rounds and the calibrator come from
        cross-fitting (``stratum_ml.training.refit``), not from ``X`` itself.

        Parameters
        ----------
        X, y
            Features and labels (1 = violation).
        n_rounds
            Boosting rounds, at least 1.
        calibrator
            Maps this model's raw score to a probability (fitted on out-of-fold scores).
        sample_weight
            Optional weight per row.
        """
        if n_rounds < 1:
            raise ValueError(f"n_rounds must be at least 1, got {n_rounds}")
        self._describe_columns(X)
        self.booster_ = lgb.train(
            self.lightgbm_params(), self._dataset(X, y, sample_weight), num_boost_round=n_rounds
        )
        self.best_iteration_ = int(n_rounds)
        self.calibrator_ = calibrator
        self.metadata_ = {}
        return self

    @classmethod
    def from_booster(
        cls, booster: lgb.Booster, *, like: RiskModel, n_rounds: int, calibrator: Calibrator
    ) -> RiskModel:
        """A model from trees fitted elsewhere on ``like``'s matrix (same columns, categories).

        For models fitted by another procedure on :meth:`matrix` of the same features
        (the fairness frontier's GridSearch); ``like`` gives the columns, the category
        lists and the settings.
        """
        model = cls(like.params, like.calibration, like.seed)
        model.feature_names_in_ = list(like.feature_names_in_)
        model.categories_ = {k: list(v) for k, v in like.categories_.items()}
        model.booster_ = booster
        model.best_iteration_ = int(n_rounds)
        model.calibrator_ = calibrator
        model.metadata_ = {}
        return model

    def _describe_columns(self, X: pd.DataFrame) -> None:
        self.feature_names_in_ = [str(c) for c in X.columns]
        self.categories_ = {
            c: [str(v) for v in X[c].cat.categories]
            for c in X.columns
            if isinstance(X[c].dtype, pd.CategoricalDtype)
        }

    def _dataset(
        self, X: pd.DataFrame, y: pd.Series | np.ndarray, weight: np.ndarray | None
    ) -> lgb.Dataset:
        return lgb.Dataset(
            self.matrix(X),
            label=np.asarray(y, dtype=float),
            weight=weight,
            feature_name=self.feature_names_in_,
            categorical_feature=[self.feature_names_in_.index(c) for c in self.categories_],
            free_raw_data=True,
        )

    def lightgbm_params(self) -> dict[str, Any]:
        """The parameters :func:`lightgbm.train` gets (objective, tree settings, seed)."""
        p = self.params or LightGBMParams()
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "num_leaves": p.num_leaves,
            "learning_rate": p.learning_rate,
            "min_child_samples": p.min_child_samples,
            "bagging_fraction": p.subsample,
            "bagging_freq": p.subsample_freq,
            "feature_fraction": p.colsample_bytree,
            "lambda_l2": p.reg_lambda,
            "num_threads": p.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    # ---------------------------------------------------------------- predicting
    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix LightGBM sees: columns in training order, categories as codes.

        A category value unknown at training time becomes NaN (LightGBM's missing branch).
        A categorical column is mapped through its categories (a few values), not
        value by value; a float column is read in place. The matrix is then filled
        a block of rows at a time, so that each block stays in the cache while its
        columns are written into it.
        """
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        columns = [
            _category_codes(X[name], pd.Index(self.categories_[name]))
            if name in self.categories_
            else _as_floats(X[name])
            for name in self.feature_names_in_
        ]
        out = np.empty((len(X), len(columns)), dtype=np.float64)
        for start in range(0, len(X), _MATRIX_BLOCK_ROWS):
            block = out[start : start + _MATRIX_BLOCK_ROWS]
            for j, values in enumerate(columns):
                block[:, j] = values[start : start + _MATRIX_BLOCK_ROWS]
        return out

    def raw_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """LightGBM's raw score (log-odds), before calibration."""
        m = X if isinstance(X, np.ndarray) else self.matrix(X)
        return np.asarray(
            self.booster_.predict(
                m, raw_score=True, num_iteration=self.best_iteration_, **predict_threads(len(m))
            )
        )

    def predict_risk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability of a violation, shape (n,)."""
        return self.calibrator_(self.raw_score(X))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """scikit-learn convention: shape (n, 2), columns (no violation, violation)."""
        p = self.predict_risk(X)
        return np.column_stack([1.0 - p, p])

    def contributions(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds (LightGBM ``pred_contrib=True``).

        Columns: one per feature plus ``bias`` (the expected raw score); each row sums
        to :meth:`raw_score`. They explain the raw score, not the calibrated probability.
        """
        m = X if isinstance(X, np.ndarray) else self.matrix(X)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(
            self.contribution_matrix(m), columns=[*self.feature_names_in_, "bias"], index=index
        )

    def contribution_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`contributions` of rows of :meth:`matrix` as an array (no DataFrame): one
        column per feature of ``feature_names_in_``, then the bias."""
        contrib = self.booster_.predict(
            matrix,
            pred_contrib=True,
            num_iteration=self.best_iteration_,
            **predict_threads(len(matrix)),
        )
        return np.asarray(contrib, dtype=np.float64)

    def likely_violation_type(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """The most likely violation type of each row, should a visit find one.

        Parameters
        ----------
        X
            Feature rows (or their :meth:`matrix`).

        Returns
        -------
        pandas.DataFrame
            Indexed like ``X`` (a range for a matrix): ``violation_type`` (str, one of
            :data:`~stratum_ml.model.violation_type.VIOLATION_TYPE_CLASSES`) and
            ``violation_type_share`` (float 0..1).

        Raises
        ------
        ValueError
            When the model carries no violation type model (:attr:`violation_types_`).
        """
        if self.violation_types_ is None:
            raise ValueError("this model carries no violation type model (trained before it)")
        m = X if isinstance(X, np.ndarray) else self.matrix(X)
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(m))
        return self.violation_types_.likely(m, index)

    def get_feature_names_out(self) -> np.ndarray:
        """Names of the features the model reads, in order."""
        return np.asarray(self.feature_names_in_, dtype=object)

    # ------------------------------------------------------------------ storage
    def save(self, folder: str | Path) -> None:
        """Write ``booster.txt`` and ``model.json`` into ``folder`` (each atomically).

        A violation type model, when there is one, is written beside them.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "booster.txt", self.booster_.model_to_string())
        meta = {
            "format_version": FORMAT_VERSION,
            "feature_names": self.feature_names_in_,
            "categories": self.categories_,
            "best_iteration": self.best_iteration_,
            "calibration": self.calibration,
            "calibrator": self.calibrator_.__dict__,
            "seed": self.seed,
            "params": (self.params or LightGBMParams()).model_dump(),
            "metadata": self.metadata_,
        }
        write_text_atomic(folder / "model.json", json.dumps(meta, indent=2, default=str))
        if self.violation_types_ is not None:
            self.violation_types_.save(folder)

    @classmethod
    def load(cls, folder: str | Path) -> RiskModel:
        """Read a model written by :meth:`save`."""
        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text("utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder}: unsupported model format {meta.get('format_version')!r}")
        model = cls(LightGBMParams(**meta["params"]), meta["calibration"], meta["seed"])
        model.feature_names_in_ = list(meta["feature_names"])
        model.categories_ = {k: list(v) for k, v in meta["categories"].items()}
        model.best_iteration_ = int(meta["best_iteration"])
        model.calibrator_ = Calibrator(**meta["calibrator"])
        model.metadata_ = dict(meta["metadata"])
        model.booster_ = lgb.Booster(model_str=(folder / "booster.txt").read_text("utf-8"))
        model.violation_types_ = ViolationTypeModel.load(folder)
        return model


#: rows of the matrix filled at a time (about 2 MB at 60 features)
_MATRIX_BLOCK_ROWS = 4096


def _category_codes(column: pd.Series, categories: pd.Index) -> np.ndarray:
    """The position of each value in ``categories`` as float; unknown or missing: NaN."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        # map the column's few categories once, then take the mapping by code
        mapping = categories.get_indexer(column.cat.categories.astype("object"))
        own = column.cat.codes.to_numpy()
        codes = np.where(own >= 0, mapping[np.maximum(own, 0)], -1)
    else:
        codes = categories.get_indexer(pd.Index(column.astype("object").where(column.notna())))
    return np.where(codes >= 0, codes, np.nan)


def _as_floats(column: pd.Series) -> np.ndarray:
    """A feature column as float64 (missing and non-numbers: NaN)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiu":
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
