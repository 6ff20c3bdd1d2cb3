"""Explanations: per-address reasons in words, and a global picture of the model.

Contributions come from LightGBM's exact TreeSHAP (``pred_contrib=True``, see
:meth:`~stratum_ml.model.risk_model.RiskModel.contributions`). They are in
**log-odds** (the model's raw score), not probability: a contribution of +0.7
multiplies the odds by about 2. Reasons turn the largest contributions into the
catalogue's sentence templates, in Dutch or English, with the feature's value
and whether it raises or lowers the risk.

People read chances, not log-odds: :func:`probability_contributions` turns one
address's contributions into **percentage points of its chance** (the calibrated
probability) that add up to the chance minus the base chance (the chance of the
average raw score, ``bias``), and a :class:`Reason` carries its share as
``contribution_pp`` beside the log-odds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stratum_ml.features.catalogue import Catalogue, Language

DIRECTION_WORDS: dict[Language, tuple[str, str]] = {
    "en": ("raises the risk", "lowers the risk"),
    "nl": ("verhoogt het risico", "verlaagt het risico"),
}


@dataclass(frozen=True)
class Reason:
    """One feature's part in one address's score."""

    feature: str
    theme: str
    value: Any
    contribution: float  # log-odds
    direction: str  # "raises" or "lowers"
    text: str
    #: percentage points of the chance (see :func:`probability_contributions`); ``None``
    #: where no calibrator was given
    contribution_pp: float | None = None

    @property
    def plain_value(self) -> Any:
        """The value, with a missing one (NaN) as None."""
        if not isinstance(self.value, str) and pd.isna(self.value):
            return None
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (NaN value -> None)."""
        out = asdict(self)
        out["value"] = self.plain_value
        return out


#: maps raw scores (log-odds) to chances (the model's calibrator)
Calibrate = Callable[[np.ndarray], np.ndarray]


def probability_contributions(contributions: pd.DataFrame, calibrator: Calibrate) -> pd.DataFrame:
    """Log-odds contributions as percentage points of the chance, per address.

    Each row's contributions ``c`` (log-odds, summing to ``raw - bias``) are scaled by
    the secant slope of the calibrator between the base score and the address's score:
    ``pp = 100 * c * (P(raw) - P(bias)) / (raw - bias)``, so they keep their signs and
    order and add up to ``100 * (P(raw) - P(bias))``: the chance minus the base chance,
    in percentage points. Where ``raw`` equals ``bias`` the slope at ``bias`` is used.

    Parameters
    ----------
    contributions : pandas.DataFrame
        Output of ``RiskModel.contributions``: one column per feature plus ``bias``.
    calibrator : callable
        Raw score (log-odds) to chance, e.g. ``model.calibrator_``.

    Returns
    -------
    pandas.DataFrame
        Same index, one column per feature (no ``bias``), in percentage points.

    Examples
    --------
    >>> from scipy.special import expit
    >>> c = pd.DataFrame({"a": [1.0], "b": [-0.5], "bias": [-1.0]})
    >>> pp = probability_contributions(c, expit)
    >>> bool(abs(pp.sum(axis=1).iloc[0] - 100 * (expit(-0.5) - expit(-1.0))) < 1e-9)
    True
    >>> bool(pp.at[0, "a"] > 0 > pp.at[0, "b"])
    True
    """
    features, values, bias = _split(contributions)
    return pd.DataFrame(
        _points(values, bias, calibrator), index=contributions.index, columns=features
    )


def _split(contributions: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The feature names, their contributions and the bias, as arrays (no copy by name)."""
    columns = list(contributions.columns)
    at = columns.index("bias")
    matrix = contributions.to_numpy(dtype=np.float64)
    values = matrix[:, :at] if at == len(columns) - 1 else np.delete(matrix, at, axis=1)
    return columns[:at] + columns[at + 1 :], values, matrix[:, at]


def _points(values: np.ndarray, bias: np.ndarray, calibrator: Calibrate) -> np.ndarray:
    """:func:`probability_contributions` on arrays: rows of log-odds contributions and
    their bias to percentage points of the chance."""
    slope = secant_slope(bias + values.sum(axis=1), bias, calibrator)
    return np.asarray(100.0 * values * slope[:, None], dtype=np.float64)


def secant_slope(raw: np.ndarray, bias: np.ndarray, calibrator: Calibrate) -> np.ndarray:
    """Chance per log-odds between the base score and each score: what turns log-odds into
    chance (:func:`probability_contributions`; times 100 for percentage points).

    ``(P(raw) - P(bias)) / (raw - bias)``; where ``raw`` equals ``bias``, the slope at
    ``bias``.
    """
    raw = np.asarray(raw, dtype=np.float64)
    bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), raw.shape)
    delta = raw - bias
    p_raw = np.asarray(calibrator(raw), dtype=np.float64)
    p_bias = np.asarray(calibrator(bias), dtype=np.float64)
    flat = np.abs(delta) < 1e-9
    slope = np.empty(len(raw), dtype=np.float64)
    slope[~flat] = (p_raw[~flat] - p_bias[~flat]) / delta[~flat]
    if flat.any():
        h = 1e-3
        up = np.asarray(calibrator(bias[flat] + h), dtype=np.float64)
        down = np.asarray(calibrator(bias[flat] - h), dtype=np.float64)
        slope[flat] = (up - down) / (2 * h)
    return slope


def base_chance(contributions: pd.DataFrame | pd.Series, calibrator: Calibrate) -> float:
    """The chance of the average raw score (``bias``): where every explanation starts."""
    bias = contributions["bias"]
    first = float(np.asarray(bias, dtype=np.float64).reshape(-1)[0])
    return float(np.asarray(calibrator(np.array([first])), dtype=np.float64)[0])


def plain_value(value: Any) -> Any:
    """A feature value as a reason carries it: a numpy scalar as its Python value."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _value(X: pd.DataFrame, row: Any, feature: str) -> Any:
    return plain_value(X.at[row, feature])


def reason_for(
    feature: str,
    value: Any,
    contribution: float,
    catalogue: Catalogue,
    language: Language,
    contribution_pp: float | None = None,
) -> Reason:
    """A :class:`Reason` with its sentence, e.g. "... is 310% of ... (raises the risk)"."""
    entry = catalogue[feature]
    up, down = DIRECTION_WORDS[language]
    raises = contribution >= 0
    text = f"{entry.reason(value, language)} ({up if raises else down})"
    return Reason(
        feature=feature,
        theme=entry.theme,
        value=value,
        contribution=float(contribution),
        direction="raises" if raises else "lowers",
        text=text,
        contribution_pp=None if contribution_pp is None else float(contribution_pp),
    )


def top_reasons(
    contributions: pd.DataFrame,
    X: pd.DataFrame,
    catalogue: Catalogue,
    *,
    n: int = 3,
    language: Language = "en",
    raising_only: bool = True,
    calibrator: Calibrate | None = None,
) -> list[list[Reason]]:
    """The ``n`` largest contributions of each row as reasons.

    Parameters
    ----------
    contributions
        Output of ``RiskModel.contributions`` (feature columns plus ``bias``).
    X
        The feature values, same index.
    catalogue
        Supplies the sentence templates.
    n
        Reasons per address.
    language
        ``"en"`` or ``"nl"``.
    raising_only
        Only contributions that raise the risk (what a priority list should say);
        otherwise the largest in absolute value.
    calibrator
        The model's calibrator: reasons then carry ``contribution_pp`` (percentage
        points of the chance, :func:`probability_contributions`).
    """
    features, values, bias = _split(contributions)
    rows = list(contributions.index)
    return ranked_reasons(
        features,
        values,
        bias,
        lambda i, name: _value(X, rows[i], name),
        catalogue,
        n=n,
        language=language,
        raising_only=raising_only,
        calibrator=calibrator,
    )


def ranked_reasons(
    features: list[str],
    values: np.ndarray,
    bias: np.ndarray,
    value_of: Callable[[int, str], Any],
    catalogue: Catalogue,
    *,
    n: int = 3,
    language: Language = "en",
    raising_only: bool = True,
    calibrator: Calibrate | None = None,
) -> list[list[Reason]]:
    """:func:`top_reasons` on arrays: what a caller holding rows of contributions uses
    without building DataFrames (the service's single-address path).

    Parameters
    ----------
    features
        The feature names, one per column of ``values``.
    values, bias
        Contributions in log-odds, shape (rows, features), and each row's bias.
    value_of
        The feature value of row ``i`` named ``feature``: ``value_of(i, feature)``.
    catalogue, n, language, raising_only, calibrator
        As for :func:`top_reasons`.
    """
    points = None if calibrator is None else _points(values, bias, calibrator)
    keyed = values if raising_only else np.abs(values)
    order = np.argsort(-keyed, axis=1, kind="stable")[:, :n]
    out: list[list[Reason]] = []
    for i in range(len(values)):
        reasons = []
        for j in order[i]:
            c = values[i, j]
            if raising_only and c <= 0:
                break
            name = features[j]
            pp = None if points is None else points[i, j]
            reasons.append(reason_for(name, value_of(i, name), c, catalogue, language, pp))
        out.append(reasons)
    return out


def all_reasons(
    contributions: pd.Series,
    x: pd.Series,
    catalogue: Catalogue,
    language: Language = "en",
    calibrator: Calibrate | None = None,
) -> list[Reason]:
    """Every feature's contribution for one address, largest in absolute value first.

    With ``calibrator``, each reason carries ``contribution_pp``; together they add up
    to the address's chance minus the base chance (:func:`probability_contributions`).
    """
    features = [c for c in contributions.index if c != "bias"]
    ordered = sorted(features, key=lambda f: -abs(float(contributions[f])))
    points = (
        None
        if calibrator is None
        else probability_contributions(contributions.to_frame().T, calibrator).iloc[0]
    )
    return [
        reason_for(
            f,
            x[f].item() if isinstance(x[f], np.generic) else x[f],
            float(contributions[f]),
            catalogue,
            language,
            None if points is None else float(points[f]),
        )
        for f in ordered
    ]


def shap_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature (log-odds), largest first."""
    features = [c for c in contributions.columns if c != "bias"]
    mean_abs = contributions[features].abs().mean().sort_values(ascending=False)
    return pd.DataFrame(
        {"feature": mean_abs.index, "mean_abs_shap_log_odds": mean_abs.to_numpy()}
    ).reset_index(drop=True)


def shap_summary_plot(
    contributions: pd.DataFrame, matrix: np.ndarray, feature_names: list[str], max_display: int = 15
) -> Figure:
    """A beeswarm plot (shap's) of the contributions, coloured by feature value."""
    import matplotlib.pyplot as plt
    import shap

    features = [c for c in contributions.columns if c != "bias"]
    explanation = shap.Explanation(
        values=contributions[features].to_numpy(),
        base_values=contributions["bias"].to_numpy(),
        data=matrix,
        feature_names=feature_names,
    )
    plt.close("all")
    shap.plots.beeswarm(explanation, max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle("Contributions to the risk score (log-odds; exact TreeSHAP)", fontsize=10)
    fig.tight_layout()
    return fig
