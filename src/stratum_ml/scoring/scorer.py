"""Score every dwelling as of a date with one model; explain only what is asked for.

A :class:`Scorer` holds one model and the feature table of one scoring date.
Scoring everything is cheap (a tree ensemble over a matrix); explaining is not
(exact TreeSHAP is ~100x slower), so reasons are computed for the rows a user
actually sees: the top of a priority list, or one address.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from stratum_ml.evaluation.explain import (
    Reason,
    all_reasons,
    base_chance,
    plain_value,
    ranked_reasons,
    secant_slope,
)
from stratum_ml.features.catalogue import Catalogue, Language, load_catalogue
from stratum_ml.features.partitioned import build_features_with
from stratum_ml.features.population import is_dwelling, population_queries
from stratum_ml.features.registry import FeatureParams
from stratum_ml.features.table_file import read_feature_rows
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.sources.tables import SourceTables

#: at most this many ids are found one by one (a hash lookup each), more with one index
FEW_IDS = 64
#: the numeric columns of ``Scorer.table`` an answer carries
_NUMBERS = ("probability", "raw_score", "rank", "percentile")


def feature_params_of(model: RiskModel) -> FeatureParams:
    """The feature constants a model was trained with (recorded in its metadata).

    Scoring must compute features exactly as training did: a model trained with,
    say, ``short_stay_days: 90`` is scored on features with that window, and its
    reason texts quote it. A model that records none was trained with the defaults.
    """
    return FeatureParams.model_validate(model.metadata_.get("feature_params", {}))


def _place(code: object) -> str | None:
    """An area code as a string; None where it is missing."""
    return str(code) if isinstance(code, str) else None


@dataclass(frozen=True)
class ScoredAddress:
    """One address's score: where it ranks and why."""

    address_id: str
    probability: float
    raw_score: float
    rank: int
    percentile: float
    district: str | None
    neighbourhood: str | None
    reasons: list[Reason] = field(default_factory=list)
    #: the most likely violation type, should a visit find one (``None``: the model has
    #: no violation type model); one of ``model.violation_type.VIOLATION_TYPE_CLASSES``
    violation_type: str | None = None
    #: the model's share for that type, 0..1 (``None`` with ``violation_type``)
    violation_type_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "address_id": self.address_id,
            "probability": self.probability,
            "raw_score": self.raw_score,
            "rank": self.rank,
            "percentile": self.percentile,
            "district": self.district,
            "neighbourhood": self.neighbourhood,
            "reasons": [r.to_dict() for r in self.reasons],
            "violation_type": self.violation_type,
            "violation_type_share": self.violation_type_share,
        }


class Scorer:
    """Scores of every dwelling as of ``as_of`` under ``model``.

    Parameters
    ----------
    model
        A fitted :class:`RiskModel`.
    features
        Feature table indexed by ``address_id`` (at least the model's features).
    places
        ``district`` and ``neighbourhood`` by ``address_id`` (for filters).
    as_of
        The scoring date the features were computed for.
    """

    def __init__(
        self,
        model: RiskModel,
        features: pd.DataFrame,
        places: pd.DataFrame,
        as_of: dt.date,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.model = model
        self.as_of = as_of
        self.catalogue = catalogue or load_catalogue(feature_params_of(model))
        names = list(model.feature_names_in_)
        aligned = places.index is features.index  # as ``from_feature_file`` makes them
        # a frame of exactly the model's columns (as ``from_feature_file`` reads it) is not
        # selected again, which would copy every column: a shallow copy shares its data
        # (until either is changed)
        same = list(features.columns) == names
        self.features = features.copy(deep=False) if same else features[names]
        self.matrix = model.matrix(self.features)
        raw = model.raw_score(self.matrix)
        order = np.lexsort((self.features.index.to_numpy(), -raw))
        rank = np.empty(len(raw), dtype=np.int64)
        rank[order] = np.arange(1, len(raw) + 1)
        n = len(raw)
        at = places if aligned else places.reindex(self.features.index)
        self.table = pd.DataFrame(
            {
                "probability": model.calibrator_(raw),
                "raw_score": raw,
                "rank": rank,
                "percentile": 100.0 * (n - rank + 1) / n,
                "district": at["district"].to_numpy(),
                "neighbourhood": at["neighbourhood"].to_numpy(),
            },
            index=self.features.index,
        ).sort_values("rank")
        self._position = pd.Series(np.arange(n), index=self.features.index)
        #: the row of ``table`` of each feature row (``table`` is in rank order)
        self._table_row = rank - 1
        #: ``violation_type`` and ``violation_type_share`` of every dwelling (index
        #: ``address_id``), or ``None`` when the model carries no violation type model
        self.violation_types: pd.DataFrame | None = (
            model.likely_violation_type(self.matrix).set_axis(self.features.index)
            if model.violation_types_ is not None
            else None
        )
        # made here, where the run is loaded, not by the first request that needs them
        _ = self._numbers, self._places, self._column, self._kinds
        _ = self._position.index.is_unique

    @classmethod
    def from_sources(
        cls,
        model: RiskModel,
        tables: SourceTables,
        as_of: dt.date,
        *,
        progress: bool = False,
        engine: str = "local",
        partitions: int | None = None,
        scheduler: str | None = None,
    ) -> Scorer:
        """Build the feature table of every dwelling as of ``as_of`` and score it.

        ``engine``, ``partitions`` and ``scheduler``: see
        :func:`~stratum_ml.features.partitioned.build_features_with` (same features,
        memory bounded by a partition).
        """
        queries = population_queries(tables.addresses, pd.Timestamp(as_of))
        features = build_features_with(
            engine,
            tables,
            queries,
            features=model.feature_names_in_,
            params=feature_params_of(model),
            n_partitions=partitions,
            scheduler=scheduler,
            progress=progress,
        )
        absent = features.attrs.get("absent_features", {})
        if absent:
            raise ValueError(
                "the model needs features whose source tables are missing: "
                + ", ".join(f"{f} ({', '.join(t)})" for f, t in absent.items())
            )
        a = tables.addresses.set_index("address_id")
        places = pd.DataFrame(
            {"district": a["district_code"], "neighbourhood": a["neighbourhood_code"]}
        )
        return cls(model, features, places, as_of)

    @classmethod
    def from_feature_file(
        cls,
        model: RiskModel,
        path: str | os.PathLike[str],
        addresses: pd.DataFrame,
        as_of: dt.date,
    ) -> Scorer:
        """Score every dwelling of ``addresses`` from a feature file (``stratum features``).

        Only the model's columns of the dwellings' rows are read (see
        :func:`~stratum_ml.features.table_file.read_feature_rows`), in the order of the
        address table; the file may hold its rows in any order.

        Parameters
        ----------
        model
            A fitted model.
        path
            A Parquet feature file of the same folder as of ``as_of``.
        addresses
            The ``addresses`` source table (at least ``address_id``, ``use_purpose``,
            ``district_code``, ``neighbourhood_code``).
        as_of
            The date the file's features were computed for.

        Raises
        ------
        ValueError
            When a dwelling or a model feature is not in the file.
        """
        dwelling = is_dwelling(addresses["use_purpose"]).to_numpy(dtype=bool)
        # masks of the columns, not their values as Python objects
        ids = pd.Index(addresses["address_id"][dwelling], name="address_id")
        features = read_feature_rows(path, ids, model.feature_names_in_)
        places = pd.DataFrame(
            {
                "district": addresses["district_code"][dwelling].array,
                "neighbourhood": addresses["neighbourhood_code"][dwelling].array,
            },
            index=features.index,
        )
        return cls(model, features, places, as_of)

    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, address_id: object) -> bool:
        return address_id in self._position.index

    def _scored(self, address_id: str, reasons: list[Reason]) -> ScoredAddress:
        return self._scored_many([address_id], [reasons])[0]

    def _rows(self, address_ids: Sequence[str]) -> np.ndarray:
        """The feature rows (positions) of known ids: a hash lookup each for a few ids, one
        index lookup for many (building an index costs more than a few lookups)."""
        index = self._position.index
        if len(address_ids) <= FEW_IDS and index.is_unique:
            return np.fromiter(
                (index.get_loc(a) for a in address_ids), dtype=np.int64, count=len(address_ids)
            )
        return np.asarray(index.get_indexer(pd.Index(address_ids)), dtype=np.int64)

    def _scored_many(
        self, address_ids: list[str], reasons: Sequence[list[Reason]]
    ) -> list[ScoredAddress]:
        """:class:`ScoredAddress` of these addresses (one table lookup for all of them)."""
        positions = self._rows(address_ids)
        at = self._table_row[positions]
        rows = {c: values[at].tolist() for c, values in self._numbers.items()}
        places = {
            c: [names[k] if k >= 0 else None for k in codes[at].tolist()]
            for c, (codes, names) in self._places.items()
        }
        kinds: list[str | None] = [None] * len(address_ids)
        shares: list[float | None] = [None] * len(address_ids)
        if self._kinds is not None:
            names, share = self._kinds
            kinds = [str(k) for k in names[positions].tolist()]
            shares = share[positions].tolist()
        columns = zip(
            address_ids,
            rows["probability"],
            rows["raw_score"],
            rows["rank"],
            rows["percentile"],
            places["district"],
            places["neighbourhood"],
            reasons,
            kinds,
            shares,
            strict=True,
        )
        return [
            ScoredAddress(
                address_id=address_id,
                probability=float(probability),
                raw_score=float(raw),
                rank=int(rank),
                percentile=float(percentile),
                district=_place(district),
                neighbourhood=_place(neighbourhood),
                reasons=listed,
                violation_type=kind,
                violation_type_share=kind_share,
            )
            for (
                address_id,
                probability,
                raw,
                rank,
                percentile,
                district,
                neighbourhood,
                listed,
                kind,
                kind_share,
            ) in columns
        ]

    def reasons(
        self, address_ids: Sequence[str], *, n: int = 3, language: Language = "en"
    ) -> list[list[Reason]]:
        """The ``n`` strongest risk-raising reasons of each address."""
        if not address_ids:
            return []
        positions = self._rows(address_ids)
        contrib = self.model.contribution_matrix(self.matrix[positions])
        column = self._column
        return ranked_reasons(
            list(self.model.feature_names_in_),
            contrib[:, :-1],
            contrib[:, -1],
            # read cell by cell: a copy of whole rows costs more than scoring
            lambda i, name: plain_value(self.features.iat[positions[i], column[name]]),
            self.catalogue,
            n=n,
            language=language,
            calibrator=self.model.calibrator_,
        )

    @cached_property
    def _numbers(self) -> dict[str, np.ndarray]:
        """The numeric columns of ``table`` as arrays (rows of ``table``)."""
        return {c: self.table[c].to_numpy() for c in _NUMBERS}

    @cached_property
    def _kinds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``violation_types``' two columns as arrays (feature rows), made once: a request
        takes its rows from them (converting the whole column per request cost more than the
        rest of the lookup)."""
        if self.violation_types is None:
            return None
        kinds = self.violation_types["violation_type"].to_numpy(dtype=object)
        shares = self.violation_types["violation_type_share"].to_numpy(dtype=np.float64)
        return kinds, shares

    @cached_property
    def _places(self) -> dict[str, tuple[np.ndarray, list[object]]]:
        """District and neighbourhood of each row of ``table``: codes into their names
        (-1 where missing), small beside the column itself."""
        out: dict[str, tuple[np.ndarray, list[object]]] = {}
        for c in ("district", "neighbourhood"):
            codes, names = pd.factorize(self.table[c])
            out[c] = (codes, names.tolist())
        return out

    @cached_property
    def _column(self) -> dict[str, int]:
        """Each feature's column in ``features``."""
        return {str(name): j for j, name in enumerate(self.features.columns)}

    def score(
        self, address_ids: Iterable[str], *, n_reasons: int = 3, language: Language = "en"
    ) -> tuple[list[ScoredAddress], list[str]]:
        """Scores with reasons for known ids, and the ids that are not scored dwellings."""
        ids = list(dict.fromkeys(address_ids))
        known = [a for a in ids if a in self]
        unknown = [a for a in ids if a not in self]
        reasons = (
            self.reasons(known, n=n_reasons, language=language)
            if n_reasons
            else [[] for _ in known]
        )
        return self._scored_many(known, reasons), unknown

    def score_features(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Probability and raw score for ready-made feature rows (unranked)."""
        raw = self.model.raw_score(rows)
        return pd.DataFrame(
            {"probability": self.model.calibrator_(raw), "raw_score": raw}, index=rows.index
        )

    def explain(self, address_id: str, *, language: Language = "en") -> tuple[ScoredAddress, float]:
        """Every contribution for one address, largest first, and the bias (log-odds)."""
        pos = int(self._position.loc[address_id])
        contrib = self.model.contributions(self.matrix[pos : pos + 1]).iloc[0]
        values = self.features.iloc[pos]
        reasons = all_reasons(
            contrib, values, self.catalogue, language, calibrator=self.model.calibrator_
        )
        return self._scored(address_id, reasons), float(contrib["bias"])

    @property
    def base_probability(self) -> float:
        """The chance at the average raw score (``bias``), where every explanation starts.

        An address's ``contribution_pp`` add up to its probability minus this, in
        percentage points.
        """
        return base_chance(pd.Series({"bias": self.bias}), self.model.calibrator_)

    @cached_property
    def bias(self) -> float:
        """The model's average raw score (log-odds), where every explanation starts.

        TreeSHAP's ``bias`` column: the same for every address.
        """
        return float(self.model.contributions(self.matrix[:1])["bias"].iloc[0])

    def in_points(
        self, address_ids: Sequence[str], reasons: Sequence[list[Reason]]
    ) -> list[list[Reason]]:
        """Reasons in log-odds (e.g. a run's stored ones) with ``contribution_pp`` added.

        As :meth:`reasons` gives them: each contribution times the calibrator's secant
        slope between the bias and the address's raw score, in percentage points.
        """
        if not address_ids:
            return []
        raw = self.table["raw_score"].reindex(list(address_ids)).to_numpy(dtype=np.float64)
        slope = secant_slope(raw, np.full(len(raw), self.bias), self.model.calibrator_)
        return [
            [replace(r, contribution_pp=100.0 * r.contribution * float(s)) for r in listed]
            for listed, s in zip(reasons, slope, strict=True)
        ]

    def priority_list(
        self,
        k: int,
        *,
        district: str | None = None,
        neighbourhood: str | None = None,
        min_probability: float | None = None,
        theme: str | None = None,
        n_reasons: int = 3,
        language: Language = "en",
        batch: int = 200,
        violation_type: str | None = None,
        explain: Callable[[list[str]], list[list[Reason]]] | None = None,
    ) -> list[ScoredAddress]:
        """The ``k`` highest-ranked dwellings passing the filters, explained.

        ``theme`` keeps addresses whose strongest reason belongs to that catalogue theme;
        candidates are explained in rank order, ``batch`` at a time, until ``k`` are found.
        ``violation_type`` keeps addresses whose most likely violation type it is (none
        when the model has no violation type model). ``explain`` gives the reasons of a
        chunk of addresses (default: :meth:`reasons` with ``n_reasons`` and ``language``;
        the service passes one that reads a stored run's reasons first).
        """
        if explain is None:

            def explain(chunk: list[str]) -> list[list[Reason]]:
                return self.reasons(chunk, n=n_reasons, language=language)

        rows = self.table
        if violation_type is not None:
            if self.violation_types is None:
                return []
            likely = self.violation_types["violation_type"].reindex(rows.index)
            rows = rows.loc[(likely == violation_type).to_numpy()]
        if district is not None:
            rows = rows.loc[rows["district"] == district]
        if neighbourhood is not None:
            rows = rows.loc[rows["neighbourhood"] == neighbourhood]
        if min_probability is not None:
            rows = rows.loc[rows["probability"] >= min_probability]
        picked: list[str] = []
        explained: list[list[Reason]] = []
        ids = rows.index.tolist()
        for start in range(0, len(ids), batch if theme else max(k, 1)):
            chunk = ids[start : start + (batch if theme else k)]
            for address_id, reasons in zip(chunk, explain(chunk), strict=True):
                if len(picked) < k and (theme is None or (reasons and reasons[0].theme == theme)):
                    picked.append(address_id)
                    explained.append(reasons)
            if theme is None or len(picked) == k:
                break
        return self._scored_many(picked, explained)

    def to_frame(self, k: int, *, language: Language = "en") -> pd.DataFrame:
        """Every dwelling ranked; the top ``k`` with their reasons (for files)."""
        out = self.table.reset_index().rename(columns={"index": "address_id"})
        out.insert(0, "scored_as_of", str(self.as_of))
        top = out["address_id"].head(k).tolist()
        reasons = self.reasons(top, language=language)
        for i in range(3):
            texts = [r[i].text if len(r) > i else None for r in reasons]
            out[f"reason_{i + 1}"] = pd.Series(texts + [None] * (len(out) - len(texts)))
        return out
