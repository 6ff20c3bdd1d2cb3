"""The fallback ranking: current practice, used while the model is paused.

Current practice ranks dwellings by the number of reports (meldingen) in the
past year (:data:`~stratum_ml.features.population.CURRENT_PRACTICE_FEATURE`),
computed as of the scoring date with the same feature code as training. Ties
are broken by ``address_id`` (ascending), so the ranking is the same on every
run and every worker.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratum_ml.features.build import build_features
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE, population_queries
from stratum_ml.scoring.scorer import Scorer, feature_params_of
from stratum_ml.sources.tables import SourceTables

__all__ = ["FALLBACK_DESCRIPTION", "fallback_ranking"]

#: what the fallback ranking is, in words
FALLBACK_DESCRIPTION = "the fallback ranking (reports in the past year)"


def _reports_past_year(scorer: Scorer, tables: SourceTables) -> pd.Series:
    if CURRENT_PRACTICE_FEATURE in scorer.features.columns:
        return scorer.features[CURRENT_PRACTICE_FEATURE]
    queries = population_queries(tables.addresses, pd.Timestamp(scorer.as_of))
    queries = queries.loc[queries.index.isin(scorer.features.index)]
    built = build_features(
        tables,
        queries,
        features=[CURRENT_PRACTICE_FEATURE],
        params=feature_params_of(scorer.model),
    )
    if CURRENT_PRACTICE_FEATURE not in built.columns:
        # no reports table: nobody was reported, every dwelling counts zero
        return pd.Series(0, index=scorer.features.index)
    column: pd.Series = built[CURRENT_PRACTICE_FEATURE]
    return column


def fallback_ranking(scorer: Scorer, tables: SourceTables) -> pd.DataFrame:
    """Every dwelling the scorer holds, ranked by reports in the past year.

    Parameters
    ----------
    scorer
        The scorer of the scoring date (its dwellings, places and date are used,
        not its model's scores).
    tables
        The source tables the scorer was built from.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``address_id``, sorted by rank: ``reports_past_year`` (int),
        ``rank`` (1 = most reports; ties by ``address_id``), ``percentile`` (100 =
        most reports), ``district`` and ``neighbourhood``.
    """
    ids = scorer.features.index
    reports = _reports_past_year(scorer, tables).reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    order = np.lexsort((ids.to_numpy(dtype=str), -reports))
    n = len(ids)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    places = scorer.table.reindex(ids)
    return pd.DataFrame(
        {
            "reports_past_year": reports,
            "rank": rank,
            "percentile": 100.0 * (n - rank + 1) / max(n, 1),
            "district": places["district"].to_numpy(),
            "neighbourhood": places["neighbourhood"].to_numpy(),
        },
        index=ids,
    ).sort_values("rank")
