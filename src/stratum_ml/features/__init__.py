"""Point-in-time features, one module per theme; see ``asof`` and ``registry``.

Importing this package registers every feature. Public API: ``build.build_feature_table``
(scoring), ``build.build_visit_features`` (training), ``catalogue.load_catalogue``.
"""

from stratum_ml.features import (
    businesses,
    common,
    dwelling,
    energy,
    household,
    network,
    ownership,
    reports,
    visits,
    water,
)

THEME_MODULES = (
    common,
    dwelling,
    household,
    water,
    energy,
    businesses,
    ownership,
    reports,
    visits,
    network,
)

__all__ = ["THEME_MODULES"]
