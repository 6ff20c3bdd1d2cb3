"""Fairness audit of a top-k selection, built on fairlearn's ``MetricFrame``.

Protected attributes (``audit_attributes`` in the data contract, aggregated to
address level, plus district or neighbourhood) reach this module only; they are
never model features. The audit asks, per attribute:

* is one group selected for a visit more often than another (selection rate)?
* are addresses *without* a violation in one group more often selected
  (false positive rate), or addresses *with* one more often missed (false
  negative rate)? Is a visit in one group less often a hit (precision)?
* does a model feature stand in for an attribute (:func:`proxy_check`)?

**Missing labels.** The selection covers the whole scored population, but
outcomes exist only for visited addresses. Pass ``y_true`` with NaN for
unlabelled rows: the selection rate uses every row; the false positive rate,
false negative rate and precision use only the labelled rows of each group
(their ``support`` column says how many). Those three are unbiased for the
population when the labelled rows are a random sample (``random_sample``
visits); on policy-chosen visits they describe the visited addresses only.

**Privacy.** A group of fewer than ``min_group_size`` addresses is flagged, and
any number resting on fewer than ``min_group_size`` addresses is suppressed in
:meth:`FairnessResult.to_frame` and :meth:`FairnessResult.to_dict`, so no
person or single visit outcome can be singled out.

**Speed.** Every rate here depends on a row only through its (group, label,
selected) cell, so each attribute is reduced to at most ``6 x groups`` distinct
cells with counts as sample weights before ``MetricFrame`` sees it; results are
identical. Bootstrap replicates draw multinomial counts over those cells (the
same bootstrap as resampling rows) and evaluate the same metric functions per
group directly: ``MetricFrame`` costs about 40 ms per call even on 12 rows, so
200 replicates through it would take seconds per attribute instead of
milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_auc_score

from stratum_ml.evaluation.metrics import bootstrap_ci

__all__ = [
    "METRICS_SPEC",
    "MISSING_GROUP",
    "FairnessResult",
    "GroupMetric",
    "fairness_audit",
    "proxy_check",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Group label given to rows whose attribute value is missing.
MISSING_GROUP = "missing"


@dataclass(frozen=True)
class GroupMetric:
    """A rate ``weight(numerator & denominator) / weight(denominator)`` over rows.

    Called as a fairlearn metric, ``metric(y_true, y_pred, sample_weight)``.
    Unlabelled rows have ``y_true`` NaN, so ``y_true == 0`` and ``y_true == 1``
    are both False for them and a denominator built on them leaves them out.
    A rate with an empty denominator is NaN, never a warning or a 0.

    Attributes
    ----------
    name : str
        Column name in results.
    description : str
        What the rate means, for reports.
    labelled_only : bool
        Whether it needs outcomes (and so uses only labelled rows).
    numerator, denominator : callable
        ``(y_true, y_pred) -> bool mask`` over rows.
    """

    name: str
    description: str
    labelled_only: bool
    numerator: Callable[[FloatArray, FloatArray], BoolArray]
    denominator: Callable[[FloatArray, FloatArray], BoolArray]

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """The rate over the given rows (weighted by ``sample_weight``)."""
        y, p, w = _rows(y_true, y_pred, sample_weight)
        denominator = self.denominator(y, p)
        total = w[denominator].sum()
        if total == 0:
            return math.nan
        return float(w[denominator & self.numerator(y, p)].sum() / total)

    def support(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Number (total weight) of rows the rate rests on: its denominator."""
        y, p, w = _rows(y_true, y_pred, sample_weight)
        return float(w[self.denominator(y, p)].sum())


def _rows(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
    return y, p, w


def _count(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    return float(_rows(y_true, y_pred, sample_weight)[2].sum())


def _mean_score(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike, score: ArrayLike
) -> float:
    """Mean model score; a cell's ``score`` is the mean over its ``sample_weight`` rows."""
    weights = np.asarray(sample_weight, np.float64)
    return float(np.average(np.asarray(score, np.float64), weights=weights))


#: The audited group metrics, one entry each (fairlearn ``METRICS_SPEC`` style).
METRICS_SPEC: tuple[GroupMetric, ...] = (
    GroupMetric(
        name="selection_rate",
        description="share of the group's addresses selected in the top k",
        labelled_only=False,
        numerator=lambda y, p: p == 1,
        denominator=lambda y, p: np.ones(p.shape, dtype=bool),
    ),
    GroupMetric(
        name="false_positive_rate",
        description="share of the group's labelled addresses without a violation that were "
        "selected",
        labelled_only=True,
        numerator=lambda y, p: p == 1,
        denominator=lambda y, p: y == 0,
    ),
    GroupMetric(
        name="false_negative_rate",
        description="share of the group's labelled addresses with a violation that were not "
        "selected",
        labelled_only=True,
        numerator=lambda y, p: p == 0,
        denominator=lambda y, p: y == 1,
    ),
    GroupMetric(
        name="precision",
        description="share of the group's selected, labelled addresses with a violation",
        labelled_only=True,
        numerator=lambda y, p: y == 1,
        denominator=lambda y, p: (p == 1) & ~np.isnan(y),
    ),
)

_FRAME_COLUMNS = [
    "attribute",
    "group",
    "reference_group",
    "is_reference",
    "count",
    "small_group",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "support",
    "difference",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
]
_VALUE_COLUMNS = ["value", "ci_low", "ci_high", "support"]
_COMPARISON_COLUMNS = ["difference", "ratio", "ratio_ci_low", "ratio_ci_high"]


@dataclass(frozen=True, eq=False)
class FairnessResult:
    """Group metrics of a top-k selection per protected attribute.

    Attributes
    ----------
    frame : pandas.DataFrame
        Tidy, *unsuppressed* table, one row per attribute, group and metric:
        ``attribute, group, reference_group, is_reference, count, small_group,
        metric, value, ci_low, ci_high, support, difference, ratio,
        ratio_ci_low, ratio_ci_high``. ``difference`` and ``ratio`` compare the
        group with the attribute's reference group; intervals are percentile
        bootstrap intervals (NaN for ``mean_score``, which is descriptive).
        Use :meth:`to_frame` for anything that leaves the process.
    metric_frames : mapping of str to fairlearn.metrics.MetricFrame
        The fairlearn frame per attribute (on weighted cells, see module notes).
    min_group_size : int
        Smallest group, and smallest support, whose numbers are shown.
    n_boot : int
        Bootstrap replicates behind the intervals (0: none).
    seed : int
        Bootstrap seed.
    confidence : float
        Coverage of the intervals.
    """

    frame: pd.DataFrame
    metric_frames: Mapping[str, MetricFrame]
    min_group_size: int
    n_boot: int
    seed: int
    confidence: float

    @property
    def reference_groups(self) -> dict[str, str]:
        """Reference group per attribute."""
        refs = self.frame.drop_duplicates("attribute")
        return dict(zip(refs["attribute"], refs["reference_group"], strict=True))

    def to_frame(self, *, suppress: bool = True) -> pd.DataFrame:
        """The tidy table, with small numbers suppressed.

        Parameters
        ----------
        suppress : bool, default True
            Blank (NaN) every value, interval and support resting on fewer than
            ``min_group_size`` addresses, the count of small groups, and every
            comparison with a blanked reference. A ``suppressed`` column says
            which values were blanked.

        Returns
        -------
        pandas.DataFrame
        """
        out = self.frame.copy()
        if not suppress:
            return out
        hidden = out["small_group"] | (out["support"] < self.min_group_size)
        reference_hidden = (
            hidden.where(out["is_reference"])
            .groupby([out["attribute"], out["metric"]])
            .transform("max")
            .astype(bool)
        )
        out.loc[hidden, _VALUE_COLUMNS] = math.nan
        out.loc[hidden | reference_hidden, _COMPARISON_COLUMNS] = math.nan
        out["count"] = out["count"].where(~out["small_group"])
        out["suppressed"] = hidden
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (suppressed), for logging as an artifact."""
        rows = self.to_frame()
        records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
        return {
            "min_group_size": self.min_group_size,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "confidence": self.confidence,
            "reference_groups": self.reference_groups,
            "metrics": {m.name: m.description for m in METRICS_SPEC},
            "rows": records,
        }

    def __str__(self) -> str:
        """Readable (suppressed) table."""
        columns = ["attribute", "group", "metric", "value", "ci_low", "ci_high", "ratio"]
        table = self.to_frame()[[*columns, "count"]]
        return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")


def _group_labels(column: pd.Series) -> NDArray[np.str_]:
    labels = column.astype("string").fillna(MISSING_GROUP)
    return np.asarray(labels.to_numpy(dtype=object), dtype=str)


def _check_labels(y_true: ArrayLike, y_pred_topk: ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred_topk, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and y_pred_topk {p.shape} must be 1-d, same length")
    if not np.isin(y[~np.isnan(y)], (0.0, 1.0)).all():
        raise ValueError("y_true must contain only 0, 1 or NaN (unlabelled)")
    if not np.isin(p, (0.0, 1.0)).all():
        raise ValueError("y_pred_topk must contain only 0 and 1 (selected in the top k)")
    return y, p


def fairness_audit(
    y_true: ArrayLike,
    y_pred_topk: ArrayLike,
    scores: ArrayLike | None,
    sensitive: pd.DataFrame,
    *,
    reference_groups: Mapping[str, str] | None = None,
    min_group_size: int = 20,
    n_boot: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> FairnessResult:
    """Audit a top-k selection per protected attribute.

    For each column of ``sensitive`` a fairlearn ``MetricFrame`` computes the
    metrics of :data:`METRICS_SPEC` (selection rate, false positive rate, false
    negative rate, precision) and ``count`` per group; each group is compared
    with a reference group (difference and ratio), with percentile bootstrap
    intervals for the metric and for the ratio.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 = violation, 0 = none, NaN = no label (not visited). See the module
        notes on which rows each metric uses.
    y_pred_topk : array-like of shape (n,)
        1 (or True) where the address is selected in the top k.
    scores : array-like of shape (n,) or None
        The model's scores; if given, ``mean_score`` per group is added
        (descriptive: no interval).
    sensitive : pandas.DataFrame
        One column per attribute (e.g. ``any_outside_europe``, ``any_female_resident``,
        ``district``), rows aligned by position with ``y_true``. Group labels
        are the values as strings (``True`` -> ``"True"``); missing values form
        the group ``"missing"``.
    reference_groups : mapping of str to str, optional
        Reference group per attribute; default: the attribute's largest group.
    min_group_size : int, default 20
        Groups smaller than this are flagged; numbers resting on fewer rows are
        suppressed in the serialised summary.
    n_boot : int, default 200
        Bootstrap replicates; 0 skips the intervals.
    seed : int, default 0
        Bootstrap seed.
    confidence : float, default 0.95
        Coverage of the intervals.

    Returns
    -------
    FairnessResult
    """
    y, p = _check_labels(y_true, y_pred_topk)
    s = None if scores is None else np.asarray(scores, dtype=np.float64)
    if s is not None and s.shape != y.shape:
        raise ValueError(f"scores has shape {s.shape}, expected {y.shape}")
    if len(sensitive) != y.size:
        raise ValueError(f"sensitive has {len(sensitive)} rows, expected {y.size}")
    if sensitive.shape[1] == 0:
        raise ValueError("sensitive has no attribute columns")
    references = dict(reference_groups or {})
    unknown = set(references) - set(map(str, sensitive.columns))
    if unknown:
        raise ValueError(f"reference_groups names attributes not in sensitive: {sorted(unknown)}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")

    tables = []
    metric_frames: dict[str, MetricFrame] = {}
    for column in sensitive.columns:
        attribute = str(column)
        groups = _group_labels(sensitive[column])
        table, metric_frame = _audit_attribute(
            attribute,
            groups,
            y,
            p,
            s,
            reference=references.get(attribute),
            min_group_size=min_group_size,
            n_boot=n_boot,
            seed=seed,
            alpha=1 - confidence,
        )
        tables.append(table)
        metric_frames[attribute] = metric_frame
    return FairnessResult(
        frame=pd.concat(tables, ignore_index=True),
        metric_frames=metric_frames,
        min_group_size=min_group_size,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )


def _audit_attribute(
    attribute: str,
    groups: NDArray[np.str_],
    y: FloatArray,
    p: FloatArray,
    s: FloatArray | None,
    *,
    reference: str | None,
    min_group_size: int,
    n_boot: int,
    seed: int,
    alpha: float,
) -> tuple[pd.DataFrame, MetricFrame]:
    rows_frame = pd.DataFrame(
        {"group": groups, "y_true": y, "y_pred": p, "score": np.nan if s is None else s}
    )
    cells = (
        rows_frame.groupby(["group", "y_true", "y_pred"], dropna=False, sort=True)
        .agg(weight=("score", "size"), score=("score", "mean"))
        .reset_index()
    )
    cell_y = cells["y_true"].to_numpy(np.float64)
    cell_p = cells["y_pred"].to_numpy(np.float64)
    weight = cells["weight"].to_numpy(np.float64)
    functions: dict[str, Callable[..., float]] = {"count": _count}
    for metric in METRICS_SPEC:
        functions[metric.name] = metric
        functions[f"support_{metric.name}"] = metric.support
    params: dict[str, dict[str, FloatArray]] = {
        name: {"sample_weight": weight} for name in functions
    }
    if s is not None:
        functions["mean_score"] = _mean_score
        params["mean_score"] = {"sample_weight": weight, "score": cells["score"].to_numpy()}
    metric_frame = MetricFrame(
        metrics=functions,
        y_true=cell_y,
        y_pred=cell_p,
        sensitive_features=cells["group"].rename(attribute),
        sample_params=params,
    )
    by_group: pd.DataFrame = metric_frame.by_group
    names = [str(g) for g in by_group.index]
    counts = by_group["count"].to_numpy(np.float64)
    if reference is None:
        reference = names[int(np.argmax(counts))]
    elif reference not in names:
        raise ValueError(f"reference group {reference!r} not among {attribute} groups {names}")
    ref = names.index(reference)

    values = by_group[[m.name for m in METRICS_SPEC]].to_numpy(np.float64).T  # (metric, group)
    supports = by_group[[f"support_{m.name}" for m in METRICS_SPEC]].to_numpy(np.float64).T
    n_metrics = len(METRICS_SPEC)
    if n_boot > 0:
        code = pd.Categorical(cells["group"], categories=names).codes
        members = [np.flatnonzero(code == g) for g in range(len(names))]

        def statistic(yc: FloatArray, pc: FloatArray, wc: FloatArray) -> FloatArray:
            rates = np.array([[m(yc[ix], pc[ix], wc[ix]) for ix in members] for m in METRICS_SPEC])
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.concatenate([rates, rates / rates[:, [ref]]])

        boot = bootstrap_ci(
            statistic,
            cell_y,
            cell_p,
            n_boot=n_boot,
            seed=seed,
            alpha=alpha,
            frequency_weights=weight,
        )
        low, high = boot.low[:n_metrics], boot.high[:n_metrics]
        ratio_low, ratio_high = boot.low[n_metrics:], boot.high[n_metrics:]
    else:
        low = high = ratio_low = ratio_high = np.full_like(values, np.nan)

    metric_names = [m.name for m in METRICS_SPEC]
    if s is not None:
        values = np.vstack([values, by_group["mean_score"].to_numpy(np.float64)])
        supports = np.vstack([supports, counts])
        nan_row = np.full((1, len(names)), np.nan)
        low, high = np.vstack([low, nan_row]), np.vstack([high, nan_row])
        ratio_low, ratio_high = np.vstack([ratio_low, nan_row]), np.vstack([ratio_high, nan_row])
        metric_names.append("mean_score")

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values / values[:, [ref]]
    difference = values - values[:, [ref]]
    rows = [
        {
            "attribute": attribute,
            "group": group,
            "reference_group": reference,
            "is_reference": g == ref,
            "count": counts[g],
            "small_group": bool(counts[g] < min_group_size),
            "metric": metric_names[m],
            "value": values[m, g],
            "ci_low": low[m, g],
            "ci_high": high[m, g],
            "support": supports[m, g],
            "difference": difference[m, g],
            "ratio": ratio[m, g],
            "ratio_ci_low": ratio_low[m, g],
            "ratio_ci_high": ratio_high[m, g],
        }
        for m in range(len(metric_names))
        for g, group in enumerate(names)
    ]
    return pd.DataFrame(rows, columns=_FRAME_COLUMNS), metric_frame


# --------------------------------------------------------------------------- proxies


def _symmetric_auc(target: BoolArray, values: FloatArray) -> float:
    auc = float(roc_auc_score(target, values))
    return max(auc, 1.0 - auc)


def _proxy_auc(target: BoolArray, values: FloatArray) -> float:
    missing = np.isnan(values)
    if missing.all():
        return 0.5
    if not missing.any():
        return _symmetric_auc(target, values)
    low, high = np.nanmin(values) - 1.0, np.nanmax(values) + 1.0
    return max(
        _symmetric_auc(target, np.where(missing, low, values)),
        _symmetric_auc(target, np.where(missing, high, values)),
    )


def _target_encode(
    column: pd.Series, target: BoolArray, fold: NDArray[np.intp], n_folds: int, smoothing: float
) -> FloatArray:
    """Cross-fitted mean of ``target`` per category (missing is a category of its own)."""
    codes = pd.factorize(column, use_na_sentinel=False)[0]
    n_categories = int(codes.max()) + 1
    cell = codes * n_folds + fold
    shape = (n_categories, n_folds)
    count = np.bincount(cell, minlength=n_categories * n_folds).reshape(shape)
    hits = np.bincount(cell, weights=target, minlength=n_categories * n_folds).reshape(shape)
    out_count = count.sum(axis=1, keepdims=True) - count
    out_hits = hits.sum(axis=1, keepdims=True) - hits
    fold_count, fold_hits = count.sum(axis=0), hits.sum(axis=0)
    prior = (hits.sum() - fold_hits) / np.maximum(count.sum() - fold_count, 1)
    encoded = (out_hits + smoothing * prior) / (out_count + smoothing)
    return np.asarray(encoded[codes, fold], dtype=np.float64)


def _binary_target(column: pd.Series) -> tuple[BoolArray, BoolArray] | None:
    """(rows with a value, value == the larger of the two levels), or None if not binary."""
    known = column.notna().to_numpy()
    levels = sorted(column[known].unique(), key=str)
    if len(levels) != 2:
        return None
    return known, (column[known] == levels[1]).to_numpy(dtype=bool)


def proxy_check(
    features: pd.DataFrame,
    sensitive: pd.DataFrame,
    threshold: float = 0.7,
    *,
    n_folds: int = 5,
    smoothing: float = 10.0,
    seed: int = 0,
) -> pd.DataFrame:
    """How well each feature on its own predicts each binary protected attribute.

    For every feature and every binary attribute (exactly two distinct values;
    others such as ``district`` are skipped, and rows with the attribute missing
    are left out) the ROC AUC of the feature as a score for the attribute,
    taken as ``max(auc, 1 - auc)`` so that direction does not matter: 0.5 is no
    information, 1.0 a perfect stand-in.

    * Numeric and boolean features are used as they are. A missing value is a
      value of its own: the AUC is computed with missing values placed below
      and above all others, and the larger is kept, so that missingness that
      tracks an attribute is caught too.
    * Other features (strings, categories) are target-mean encoded with
      ``n_folds``-fold cross-fitting (each row encoded from the other folds,
      shrunk towards the fold's overall rate with weight ``smoothing``), so a
      many-valued identifier-like feature does not look predictive by
      memorising rows.

    Cost: one AUC or two per feature and attribute; thousands of rows times
    ~60 features times ~3 attributes take well under a few seconds.

    Parameters
    ----------
    features : pandas.DataFrame
        Model features, one row per address.
    sensitive : pandas.DataFrame
        Protected attributes, rows aligned by position with ``features``.
    threshold : float, default 0.7
        AUC from which a feature is flagged as a proxy.
    n_folds : int, default 5
        Folds for the cross-fitted encoding.
    smoothing : float, default 10.0
        Shrinkage of the encoding towards the overall rate, in rows.
    seed : int, default 0
        Seed of the fold assignment.

    Returns
    -------
    pandas.DataFrame
        ``feature, attribute, auc, flagged, n, encoding``, highest AUC first.
        ``auc`` is NaN when the attribute has one level only among the rows.
    """
    if len(features) != len(sensitive):
        raise ValueError(f"features has {len(features)} rows, sensitive has {len(sensitive)}")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    rows = []
    for attribute in sensitive.columns:
        binary = _binary_target(sensitive[attribute])
        if binary is None:
            continue
        known, target = binary
        fold = (rng.permutation(target.size) % n_folds).astype(np.intp)
        for feature in features.columns:
            column = features[feature][known]
            numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
            if numeric:
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = _target_encode(column, target, fold, n_folds, smoothing)
            auc = _proxy_auc(target, values) if 0 < target.sum() < target.size else math.nan
            rows.append(
                {
                    "feature": str(feature),
                    "attribute": str(attribute),
                    "auc": auc,
                    "flagged": bool(auc >= threshold),
                    "n": int(target.size),
                    "encoding": "value" if numeric else "cross-fitted target mean",
                }
            )
    columns = ["feature", "attribute", "auc", "flagged", "n", "encoding"]
    result = pd.DataFrame(rows, columns=columns)
    return result.sort_values("auc", ascending=False, ignore_index=True, na_position="last")
