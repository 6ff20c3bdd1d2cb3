"""The training set: one row per past visit, features as of the visit date, label = violation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.sources.tables import SourceTables

VISIT_COLUMNS = ("inspection_id", "address_id", "inspected_at", "reason", "outcome")


@dataclass(frozen=True)
class TrainingSet:
    """Features ``X`` (index: inspection_id), labels ``y`` (1 = violation), and visit facts."""

    X: pd.DataFrame
    y: pd.Series
    visits: pd.DataFrame  # inspection_id index; address_id, inspected_at, reason, outcome

    def subset(self, mask: np.ndarray | pd.Series) -> TrainingSet:
        """Rows where ``mask`` holds."""
        m = np.asarray(mask, dtype=bool)
        return TrainingSet(self.X.loc[m], self.y.loc[m], self.visits.loc[m])

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last visit date."""
        dates = self.visits["inspected_at"]
        return dates.min(), dates.max()

    def __len__(self) -> int:
        return len(self.y)


def labelled_visits(inspections: pd.DataFrame) -> pd.DataFrame:
    """Visits with a usable outcome (violation / no_violation), in date order.

    Inconclusive visits say nothing about the address and are left out.
    """
    visits = inspections.loc[inspections["outcome"].isin(["violation", "no_violation"])]
    visits = visits.sort_values(["inspected_at", "inspection_id"], kind="stable")
    return visits.loc[:, list(VISIT_COLUMNS)].set_index("inspection_id", drop=False)


def build_training_set(
    tables: SourceTables, feature_set: FeatureSet, *, progress: bool = False
) -> TrainingSet:
    """Features as of each labelled visit's date, and its label.

    Every feature goes through the same as-of helper as scoring, with the visit date as
    reference date: the visit's own outcome, the report the municipality files after
    it and the deregistration that follows it are dated on or after that date and so
    cannot reach its row.
    """
    visits = labelled_visits(tables.inspections)
    if len(visits) == 0:
        raise ValueError("inspections holds no visit with outcome violation or no_violation")
    queries = make_queries(
        visits["address_id"],
        visits["inspected_at"],
        index=pd.Index(visits.index, name="inspection_id"),
    )
    X = build_features(
        tables, queries, features=feature_set.features, params=feature_set.params, progress=progress
    )
    y = (visits["outcome"] == "violation").astype("int64").rename("violation")
    meta = visits.drop(columns="inspection_id")
    return TrainingSet(X=X, y=y, visits=meta)


def with_recorded_visits(tables: SourceTables, recorded: pd.DataFrame) -> tuple[SourceTables, int]:
    """Add visit outcomes recorded since the export (the feedback loop) to ``inspections``.

    A recorded visit whose ``inspection_id`` is already in the source folder's
    inspections is left out: the export now carries it.

    Parameters
    ----------
    tables : SourceTables
        The validated source tables; not changed.
    recorded : pandas.DataFrame
        Recorded outcomes as a normalised ``inspections`` table (what
        ``serving.outcomes.read_outcomes`` returns).

    Returns
    -------
    (SourceTables, int)
        The tables with the new visits appended, and how many were added.
    """
    known = set(tables.inspections["inspection_id"])
    new = recorded.loc[~recorded["inspection_id"].isin(known)]
    if len(new) == 0:
        return tables, 0
    merged = pd.concat([tables.inspections, new], ignore_index=True)
    return dataclasses.replace(tables, inspections=merged), len(new)
