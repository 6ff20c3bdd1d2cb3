"""RiskModel: fit, the matrix LightGBM sees, contributions, and the save/load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import FORMAT_VERSION, RiskModel

PARAMS = LightGBMParams(n_estimators=80, early_stopping_rounds=10, num_leaves=7)


def _frame(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame(
        {
            "water": rng.lognormal(0.0, 0.5, n),
            "reports": rng.poisson(0.5, n),
            "tenure": pd.Categorical(
                rng.choice(["owner_occupied", "private_rent", "social_rent"], n),
                categories=["owner_occupied", "private_rent", "social_rent"],
            ),
        }
    )
    logit = -2.0 + 2.0 * np.log(X["water"]) + 0.8 * X["reports"] + (X["tenure"] == "private_rent")
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=float)))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[RiskModel, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X, y = _frame(rng, 3000)
    X_tune, y_tune = _frame(rng, 1000)
    X_test, _ = _frame(rng, 300)
    return RiskModel(PARAMS, "sigmoid", seed=0).fit(X, y, X_tune=X_tune, y_tune=y_tune), X_test


def test_fitted_attributes_and_feature_names(fitted: tuple[RiskModel, pd.DataFrame]) -> None:
    model, _ = fitted
    assert model.feature_names_in_ == ["water", "reports", "tenure"]
    assert model.get_feature_names_out().tolist() == ["water", "reports", "tenure"]
    assert model.categories_ == {"tenure": ["owner_occupied", "private_rent", "social_rent"]}
    assert 1 <= model.best_iteration_ <= PARAMS.n_estimators
    assert model.metadata_ == {}


def test_the_model_learns_the_direction_of_the_risk(
    fitted: tuple[RiskModel, pd.DataFrame],
) -> None:
    model, X = fitted
    more_water = X.assign(water=X["water"] * 3)
    assert (model.raw_score(more_water) >= model.raw_score(X) - 1e-9).mean() > 0.95


def test_probabilities_and_contributions_agree_with_the_raw_score(
    fitted: tuple[RiskModel, pd.DataFrame],
) -> None:
    model, X = fitted
    p = model.predict_risk(X)
    assert p.shape == (len(X),) and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    contrib = model.contributions(X)
    assert list(contrib.columns) == ["water", "reports", "tenure", "bias"]
    np.testing.assert_allclose(contrib.sum(axis=1), model.raw_score(X), atol=1e-6)


def test_the_matrix_codes_categories_and_refuses_missing_columns(
    fitted: tuple[RiskModel, pd.DataFrame],
) -> None:
    model, X = fitted
    rows = X.head(3).assign(tenure=["social_rent", "unheard_of", None])
    m = model.matrix(rows[["tenure", "reports", "water"]])  # column order does not matter
    assert m[0, 2] == 2.0 and np.isnan(m[1, 2]) and np.isnan(m[2, 2])
    with pytest.raises(ValueError, match="missing feature columns: reports"):
        model.matrix(X.drop(columns="reports"))


def _matrix_value_by_value(model: RiskModel, X: pd.DataFrame) -> np.ndarray:
    """The matrix as first written: every value looked up, every column converted."""
    out = np.empty((len(X), len(model.feature_names_in_)))
    for j, name in enumerate(model.feature_names_in_):
        column = X[name]
        if name in model.categories_:
            cats = pd.Index(model.categories_[name])
            codes = cats.get_indexer(pd.Index(column.astype("object").where(column.notna())))
            out[:, j] = np.where(codes >= 0, codes, np.nan)
        else:
            out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    return out


@pytest.mark.parametrize(
    "tenure",
    [
        # a categorical with other categories, in another order, with an unknown and a NaN
        pd.Categorical(
            ["social_rent", "unheard_of", None, "owner_occupied", "private_rent", "social_rent"],
            categories=["unheard_of", "social_rent", "private_rent", "owner_occupied"],
        ),
        pd.Categorical(["private_rent"] * 6, categories=["private_rent"]),
        pd.Categorical([None] * 6, categories=["owner_occupied"]),
        ["social_rent", "unheard_of", None, "owner_occupied", "private_rent", np.nan],
        pd.array(["social_rent", None, "x", "owner_occupied", "private_rent", "a"], "str"),
    ],
)
def test_the_fast_matrix_equals_the_value_by_value_one(
    fitted: tuple[RiskModel, pd.DataFrame], tenure: object
) -> None:
    model, _ = fitted
    rows = pd.DataFrame(
        {
            "tenure": tenure,
            "reports": pd.array([1, None, 3, 0, 2, 7], dtype="Int64"),
            "water": [0.5, np.nan, 1.5, np.inf, -2.0, 1e300],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    for frame in (
        rows,
        rows.assign(reports=[1, 2, 3, 0, 2, 7]),
        rows.assign(reports=[True, False, True, True, False, False]),
        rows.assign(reports=["1", "x", None, "2.5", "3", ""], water=np.float32(0.25)),
    ):
        np.testing.assert_array_equal(model.matrix(frame), _matrix_value_by_value(model, frame))


def test_the_matrix_is_the_same_across_its_blocks_of_rows(
    fitted: tuple[RiskModel, pd.DataFrame],
) -> None:
    model, X = fitted
    rng = np.random.default_rng(3)
    many = pd.concat([X] * 30, ignore_index=True)  # 9,000 rows: three blocks, the last short
    many["water"] = many["water"].where(rng.random(len(many)) > 0.1)
    many["reports"] = many["reports"] + rng.integers(0, 5, len(many))
    m = model.matrix(many)
    np.testing.assert_array_equal(m, _matrix_value_by_value(model, many))
    assert m.flags.c_contiguous and m.shape == (9000, 3)


def test_save_and_load_give_the_same_model(
    fitted: tuple[RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    model, X = fitted
    model.metadata_ = {"trained_on": "visits 2021-01-01 .. 2023-08-31"}
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["booster.txt", "model.json"]
    loaded = RiskModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_risk(X), model.predict_risk(X))
    np.testing.assert_array_equal(loaded.contributions(X), model.contributions(X))
    assert loaded.params == PARAMS and loaded.calibration == "sigmoid"
    assert loaded.categories_ == model.categories_
    assert loaded.metadata_ == model.metadata_


def test_an_unknown_format_is_refused(
    fitted: tuple[RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    model, _ = fitted
    model.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unsupported model format"):
        RiskModel.load(tmp_path)
