"""The scored population: every dwelling, as of a date."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.population import (
    DWELLING_USE_PURPOSE,
    dwelling_ids,
    is_dwelling,
    population_queries,
)


def test_only_dwellings_are_in_the_population() -> None:
    addresses = pd.DataFrame(
        {
            "address_id": ["0479010000000001", "0479010000000002", "0479010000000003"],
            "use_purpose": [DWELLING_USE_PURPOSE, "winkelfunctie", DWELLING_USE_PURPOSE],
        }
    )
    assert is_dwelling(addresses["use_purpose"]).tolist() == [True, False, True]
    assert dwelling_ids(addresses).tolist() == ["0479010000000001", "0479010000000003"]
    queries = population_queries(addresses, pd.Timestamp("2025-06-01"))
    assert queries.index.tolist() == ["0479010000000001", "0479010000000003"]
    assert (queries["ref_date"] == pd.Timestamp("2025-06-01")).all()
