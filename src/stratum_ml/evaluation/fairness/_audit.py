"""The audit of a top-k selection: per attribute, group rates with bootstrap intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from numpy.typing import ArrayLike, NDArray

from stratum_ml.evaluation.fairness._spec import METRICS_SPEC, FloatArray, _count, _mean_score
from stratum_ml.evaluation.metrics import bootstrap_ci

#: Group label given to rows whose attribute value is missing.
MISSING_GROUP = "missing"


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
        The fairlearn frame per attribute (on weighted cells, see module notes),
        built when first looked up: on thousands of groups (neighbourhoods) a
        frame takes seconds, and training reads only ``frame``.
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

    For each column of ``sensitive`` the metrics of :data:`METRICS_SPEC`
    (selection rate, false positive rate, false negative rate, precision) and
    ``count`` are computed per group; each group is compared with a reference
    group (difference and ratio), with percentile bootstrap intervals for the
    metric and for the ratio. Point values and bootstrap replicates come from
    the same function (see the package notes); fairlearn's ``MetricFrame`` of
    the same numbers is returned beside the table.

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
    metric_frames = _MetricFrames(with_score=s is not None)
    for column in sensitive.columns:
        attribute = str(column)
        groups = _group_labels(sensitive[column])
        table, cells = _audit_attribute(
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
        metric_frames.cells[attribute] = cells
    return FairnessResult(
        frame=pd.concat(tables, ignore_index=True),
        metric_frames=metric_frames,
        min_group_size=min_group_size,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )


@dataclass(frozen=True)
class _GroupRates:
    """Every audited rate per group, then its ratio to the reference group.

    Called on the cells of one attribute as ``rates(y_true, y_pred, weight)``,
    it returns an array of shape ``(2 * len(METRICS_SPEC), n_groups)``: the
    rates of :data:`METRICS_SPEC` (rows in that order) and their ratios to the
    reference group's. It is the one computation behind the point values (on
    the cells' own counts) and every bootstrap replicate (on multinomial counts
    over the same cells). Each rate is one pass over the cells for every group
    (:meth:`GroupMetric.by_group`): an attribute of thousands of groups
    (neighbourhoods) costs no more per replicate than one of two.

    Attributes
    ----------
    group : numpy.ndarray
        The group (position, in group order) of each cell.
    n_groups : int
        Number of groups.
    reference : int
        Position of the reference group.
    """

    group: NDArray[np.intp]
    n_groups: int
    reference: int

    def __call__(self, y_true: FloatArray, y_pred: FloatArray, weight: FloatArray) -> FloatArray:
        """Rates and ratios, shape ``(2 * len(METRICS_SPEC), n_groups)``."""
        rates = np.array(
            [m.by_group(y_true, y_pred, weight, self.group, self.n_groups)[0] for m in METRICS_SPEC]
        )
        return np.concatenate([rates, _ratio(rates, self.reference)])

    def supports(self, y_true: FloatArray, y_pred: FloatArray, weight: FloatArray) -> FloatArray:
        """The support of every rate per group, shape ``(len(METRICS_SPEC), n_groups)``."""
        return np.array(
            [m.by_group(y_true, y_pred, weight, self.group, self.n_groups)[1] for m in METRICS_SPEC]
        )


def _per_group(
    function: Callable[..., float], members: Sequence[NDArray[np.intp]], *arrays: FloatArray
) -> FloatArray:
    """``function`` of each group's cells (``members``), in group order."""
    return np.array([function(*(a[ix] for a in arrays)) for ix in members])


def _ratio(values: FloatArray, reference: int) -> FloatArray:
    """Each row divided by its reference group's value (inf or NaN where that is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / values[:, [reference]]


def _cells(
    groups: NDArray[np.str_], y: FloatArray, p: FloatArray, s: FloatArray | None
) -> pd.DataFrame:
    """Distinct (group, label, selected) cells with their row count and mean score."""
    rows = pd.DataFrame(
        {"group": groups, "y_true": y, "y_pred": p, "score": np.nan if s is None else s}
    )
    return (
        rows.groupby(["group", "y_true", "y_pred"], dropna=False, sort=True)
        .agg(weight=("score", "size"), score=("score", "mean"))
        .reset_index()
    )


class _MetricFrames(Mapping[str, MetricFrame]):
    """fairlearn's frame of each attribute's cells, built on first look-up and kept."""

    def __init__(self, *, with_score: bool) -> None:
        self.with_score = with_score
        self.cells: dict[str, pd.DataFrame] = {}
        self._built: dict[str, MetricFrame] = {}

    def __getitem__(self, attribute: str) -> MetricFrame:
        if attribute not in self._built:
            cells = self.cells[attribute]  # KeyError for an attribute not audited
            self._built[attribute] = _metric_frame(attribute, cells, with_score=self.with_score)
        return self._built[attribute]

    def __iter__(self) -> Iterator[str]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)


def _metric_frame(attribute: str, cells: pd.DataFrame, *, with_score: bool) -> MetricFrame:
    """fairlearn's view of the same cells: every metric, its support, the count per group."""
    weight = cells["weight"].to_numpy(np.float64)
    functions: dict[str, Callable[..., float]] = {"count": _count}
    for metric in METRICS_SPEC:
        functions[metric.name] = metric
        functions[f"support_{metric.name}"] = metric.support
    params: dict[str, dict[str, FloatArray]] = {
        name: {"sample_weight": weight} for name in functions
    }
    if with_score:
        functions["mean_score"] = _mean_score
        params["mean_score"] = {"sample_weight": weight, "score": cells["score"].to_numpy()}
    return MetricFrame(
        metrics=functions,
        y_true=cells["y_true"].to_numpy(np.float64),
        y_pred=cells["y_pred"].to_numpy(np.float64),
        sensitive_features=cells["group"].rename(attribute),
        sample_params=params,
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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    cells = _cells(groups, y, p, s)
    cell_y = cells["y_true"].to_numpy(np.float64)
    cell_p = cells["y_pred"].to_numpy(np.float64)
    weight = cells["weight"].to_numpy(np.float64)
    names = [str(g) for g in cells["group"].unique()]
    code = pd.Categorical(cells["group"], categories=names).codes.astype(np.intp)
    counts = np.bincount(code, weights=weight, minlength=len(names))
    if reference is None:
        reference = names[int(np.argmax(counts))]
    elif reference not in names:
        raise ValueError(f"reference group {reference!r} not among {attribute} groups {names}")
    ref = names.index(reference)

    rates = _GroupRates(code, len(names), ref)
    n_metrics = len(METRICS_SPEC)
    point = rates(cell_y, cell_p, weight)
    values, ratio = point[:n_metrics], point[n_metrics:]
    supports = rates.supports(cell_y, cell_p, weight)
    if n_boot > 0:
        boot = bootstrap_ci(
            rates, cell_y, cell_p, n_boot=n_boot, seed=seed, alpha=alpha, frequency_weights=weight
        )
        low, high = boot.low[:n_metrics], boot.high[:n_metrics]
        ratio_low, ratio_high = boot.low[n_metrics:], boot.high[n_metrics:]
    else:
        low = high = ratio_low = ratio_high = np.full_like(values, np.nan)

    metric_names = [m.name for m in METRICS_SPEC]
    if s is not None:  # descriptive: no interval
        score = cells["score"].to_numpy(np.float64)
        order = np.argsort(code, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(code, minlength=len(names)))[:-1])
        mean_score = _per_group(_mean_score, members, cell_y, cell_p, weight, score)[np.newaxis]
        values = np.vstack([values, mean_score])
        ratio = np.vstack([ratio, _ratio(mean_score, ref)])
        supports = np.vstack([supports, counts])
        nan_row = np.full((1, len(names)), np.nan)
        low, high = np.vstack([low, nan_row]), np.vstack([high, nan_row])
        ratio_low, ratio_high = np.vstack([ratio_low, nan_row]), np.vstack([ratio_high, nan_row])
        metric_names.append("mean_score")

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
    return pd.DataFrame(rows, columns=_FRAME_COLUMNS), cells
