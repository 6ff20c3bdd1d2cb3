"""The training reference of a model version: the population as the model first saw it.

Drift (:mod:`stratum_ml.monitoring.drift`) compares a later population with it.
Training builds it (:func:`build_reference`) from the population it scored as of
the holdout start and logs it with the run as :data:`REFERENCE_ARTIFACT`
(``training.tracking``); scoring and monitoring read it with :func:`load_reference`.

What is kept, per feature of the population (every approved feature whose source
table was present, not only the model's):

* **numeric** -- bin edges at the deciles of the non-missing values (observed
  values: the nearest one at or below each decile); repeated
  deciles are merged, so a count or a flag gets as many bins as it has distinct
  deciles. Bins are right-closed, ``(-inf, e1], (e1, e2], ..., (ek, inf)``, so a
  later value below or above the training range still falls into a bin (the outer
  ones). Also the training range (``min``, ``max``);
* **categorical** -- the categories seen, in order, plus one last bin for any
  category not seen at training (share 0 in the reference);
* for both: the share of the non-missing values per bin and the missing rate.
  Infinite values count as missing (JSON cannot hold them; no feature makes them).

And the score: a bounded random sample of the raw scores (log-odds, before
calibration) of the population, enough for a two-sample KS test. Raw scores,
not probabilities: an isotonic calibrator maps many scores onto one probability,
ties that would blur the test.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from stratum_ml.config import Settings

__all__ = [
    "REFERENCE_ARTIFACT",
    "REFERENCE_BINS",
    "SCORE_SAMPLE",
    "DriftReference",
    "FeatureReference",
    "ReferenceMissing",
    "ScoreReference",
    "build_reference",
    "load_reference",
]

#: Run artifact holding a version's :class:`DriftReference` (JSON).
REFERENCE_ARTIFACT = "reference/drift_reference.json"
#: Quantile bins per numeric feature (deciles), before repeated edges are merged.
REFERENCE_BINS = 10
#: Most raw scores kept for the KS test (a random sample without replacement).
SCORE_SAMPLE = 5000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureReference(_Frozen):
    """One feature's distribution in the training population.

    Attributes
    ----------
    kind : {"numeric", "categorical"}
    n : int
        Rows of the training population.
    missing_rate : float
        Share of the rows with no value (missing or infinite).
    edges : tuple of float
        Numeric: the ascending inner bin edges (right-closed bins, see the module).
    categories : tuple of str
        Categorical: the categories seen; the last bin holds any other category.
    shares : tuple of float
        Share of the non-missing values per bin (sums to 1; empty if all are missing).
    min, max : float or None
        Numeric: the training range of the non-missing values.
    """

    kind: Literal["numeric", "categorical"]
    n: int = Field(ge=0)
    missing_rate: float = Field(ge=0, le=1)
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    shares: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FeatureReference:
        if self.shares and len(self.shares) != self.n_bins:
            raise ValueError(f"{len(self.shares)} shares for {self.n_bins} bins")
        if list(self.edges) != sorted(set(self.edges)):
            raise ValueError("bin edges must be strictly ascending")
        return self

    @property
    def n_bins(self) -> int:
        """Bins of the non-missing values (numeric: edges + 1; categorical: categories + 1)."""
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 1

    def missing(self, values: pd.Series) -> np.ndarray:
        """Per row: True where the value counts as missing."""
        if self.kind == "categorical":
            return np.asarray(values.isna().to_numpy(), dtype=bool)
        finite: np.ndarray = np.isfinite(_numbers(values))
        return ~finite

    def bin_counts(self, values: pd.Series) -> np.ndarray:
        """How many of the non-missing ``values`` fall into each of :attr:`n_bins` bins."""
        present = values[~self.missing(values)]
        if self.kind == "numeric":
            index = np.searchsorted(np.asarray(self.edges), _numbers(present), side="left")
        else:
            known = pd.Index(self.categories).get_indexer(pd.Index(present.astype("str")))
            index = np.where(known >= 0, known, len(self.categories))
        return np.bincount(index, minlength=self.n_bins)

    def outside(self, values: pd.Series) -> np.ndarray:
        """Per row: True where the value lies outside what training saw.

        Numeric: below :attr:`min` or above :attr:`max`; categorical: a category not
        seen at training. Missing values are never outside (the missing rate covers them).
        """
        missing = self.missing(values)
        if self.kind == "categorical":
            seen = values.astype("str").isin(self.categories).to_numpy()
            return ~missing & ~seen
        if self.min is None or self.max is None:
            return ~missing
        with np.errstate(invalid="ignore"):
            numbers = _numbers(values)
            return ~missing & ((numbers < self.min) | (numbers > self.max))


class ScoreReference(_Frozen):
    """The model's raw scores (log-odds) on the training population.

    Attributes
    ----------
    n : int
        Rows scored.
    sample : tuple of float
        At most :data:`SCORE_SAMPLE` of them, drawn at random without replacement.
    """

    n: int = Field(ge=0)
    sample: tuple[float, ...]


class DriftReference(_Frozen):
    """What the training population looked like: per feature and the score.

    Attributes
    ----------
    format_version : int
        Layout of the JSON file; only 1 exists.
    as_of : datetime.date
        The date the population's features were computed for (the holdout start).
    n : int
        Addresses in the population.
    features : dict of str to FeatureReference
    score : ScoreReference
    """

    format_version: Literal[1] = 1
    as_of: dt.date
    n: int = Field(ge=0)
    features: dict[str, FeatureReference]
    score: ScoreReference

    def to_json(self) -> str:
        """The reference as JSON, indented."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> DriftReference:
        """Read a reference written by :meth:`to_json`."""
        return cls.model_validate_json(text)


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _is_categorical(values: pd.Series) -> bool:
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    )


def _feature_reference(values: pd.Series, bins: int) -> FeatureReference:
    n = len(values)
    if _is_categorical(values):
        present = values.dropna().astype("str")
        categories = tuple(sorted(present.unique()))
        ref = FeatureReference(kind="categorical", n=n, missing_rate=0.0, categories=categories)
    else:
        numbers = _numbers(values)
        finite = numbers[np.isfinite(numbers)]
        edges: tuple[float, ...] = ()
        if len(finite):
            inner = np.quantile(finite, np.arange(1, bins) / bins, method="lower")
            edges = tuple(float(e) for e in np.unique(inner))
        ref = FeatureReference(
            kind="numeric",
            n=n,
            missing_rate=0.0,
            edges=edges,
            min=float(finite.min()) if len(finite) else None,
            max=float(finite.max()) if len(finite) else None,
        )
    missing = ref.missing(values)
    counts = ref.bin_counts(values)
    total = int(counts.sum())
    shares = tuple(float(c / total) for c in counts) if total else ()
    return ref.model_copy(
        update={"missing_rate": float(missing.mean()) if n else 0.0, "shares": shares}
    )


def build_reference(
    features: pd.DataFrame,
    raw_scores: np.ndarray,
    *,
    as_of: dt.date,
    bins: int = REFERENCE_BINS,
    score_sample: int = SCORE_SAMPLE,
    seed: int = 0,
) -> DriftReference:
    """The reference of a population: per-feature bins and shares, and a score sample.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per address of the population, one column per feature. ``category``,
        string and object columns are categorical; numbers and booleans numeric.
    raw_scores : numpy.ndarray
        The model's raw scores (log-odds) of the same rows.
    as_of : datetime.date
        The date the features were computed for.
    bins : int, default REFERENCE_BINS
        Quantile bins per numeric feature before repeated edges are merged.
    score_sample : int, default SCORE_SAMPLE
        Most raw scores to keep.
    seed : int, default 0
        Seed of the score sample.

    Returns
    -------
    DriftReference

    Examples
    --------
    >>> frame = pd.DataFrame({"persons": [1.0, 2, 2, 3, None], "tenure": list("aabbb")})
    >>> ref = build_reference(frame, np.zeros(5), as_of=dt.date(2026, 1, 1), bins=2)
    >>> ref.features["persons"].edges, ref.features["persons"].missing_rate
    ((2.0,), 0.2)
    >>> ref.features["tenure"].categories, ref.features["tenure"].shares
    (('a', 'b'), (0.4, 0.6, 0.0))
    """
    scores = np.asarray(raw_scores, dtype=np.float64)
    if len(scores) != len(features):
        raise ValueError(f"{len(scores)} raw scores for {len(features)} feature rows")
    if not np.isfinite(scores).all():
        raise ValueError("raw scores must be finite")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, not {bins}")
    rng = np.random.default_rng(seed)
    kept = (
        scores if len(scores) <= score_sample else rng.choice(scores, score_sample, replace=False)
    )
    return DriftReference(
        as_of=as_of,
        n=len(features),
        features={str(name): _feature_reference(features[name], bins) for name in features},
        score=ScoreReference(n=len(scores), sample=tuple(float(s) for s in np.sort(kept))),
    )


class ReferenceMissing(LookupError):
    """A training run holds no drift reference (logged by an older stratum_ml, or incomplete)."""


def load_reference(run_id: str, settings: Settings | None = None) -> DriftReference:
    """The drift reference a training run logged.

    Parameters
    ----------
    run_id : str
        The training run (``ModelVersionInfo.run_id``).
    settings : Settings, optional
        Where the MLflow store is; default: from the environment.

    Returns
    -------
    DriftReference

    Raises
    ------
    ReferenceMissing
        If the run has no :data:`REFERENCE_ARTIFACT`.
    """
    # imported here: MLflow takes a second to import, and drift needs only the classes
    from stratum_ml.model.registry import ArtifactMissing, read_run_artifact_text

    try:
        text = read_run_artifact_text(run_id, REFERENCE_ARTIFACT, settings)
    except ArtifactMissing as exc:
        raise ReferenceMissing(
            f"run {run_id} holds no drift reference ({REFERENCE_ARTIFACT}): it was "
            "trained before references were recorded; retrain to record one"
        ) from exc
    return DriftReference.from_json(text)
