"""Explanations: per-address reasons in words, and a global picture of the model.

Contributions come from LightGBM's exact TreeSHAP (``pred_contrib=True``, see
:meth:`~stratum_ml.model.risk_model.RiskModel.contributions`). They are in
**log-odds** (the model's raw score), not probability: a contribution of +0.7
multiplies the odds by about 2. Reasons turn the largest contributions into the
catalogue's sentence templates, in Dutch or English, with the feature's value
and whether it raises or lowers the risk.
"""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (NaN value -> None)."""
        out = asdict(self)
        if not isinstance(self.value, str) and pd.isna(self.value):
            out["value"] = None
        return out


def _value(X: pd.DataFrame, row: Any, feature: str) -> Any:
    value = X.at[row, feature]
    if isinstance(value, np.generic):
        return value.item()
    return value


def reason_for(
    feature: str, value: Any, contribution: float, catalogue: Catalogue, language: Language
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
    )


def top_reasons(
    contributions: pd.DataFrame,
    X: pd.DataFrame,
    catalogue: Catalogue,
    *,
    n: int = 3,
    language: Language = "en",
    raising_only: bool = True,
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
    """
    features = [c for c in contributions.columns if c != "bias"]
    values = contributions[features].to_numpy()
    keyed = values if raising_only else np.abs(values)
    order = np.argsort(-keyed, axis=1, kind="stable")[:, :n]
    out: list[list[Reason]] = []
    for i, row in enumerate(contributions.index):
        reasons = []
        for j in order[i]:
            c = values[i, j]
            if raising_only and c <= 0:
                break
            name = features[j]
            reasons.append(reason_for(name, _value(X, row, name), c, catalogue, language))
        out.append(reasons)
    return out


def all_reasons(
    contributions: pd.Series, x: pd.Series, catalogue: Catalogue, language: Language = "en"
) -> list[Reason]:
    """Every feature's contribution for one address, largest in absolute value first."""
    features = [c for c in contributions.index if c != "bias"]
    ordered = sorted(features, key=lambda f: -abs(float(contributions[f])))
    return [
        reason_for(
            f,
            x[f].item() if isinstance(x[f], np.generic) else x[f],
            float(contributions[f]),
            catalogue,
            language,
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
