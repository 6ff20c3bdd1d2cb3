"""Point-in-time features, one module per theme; see ``asof`` and ``registry``.

Importing this package registers every feature: the intermediates in ``common`` and
one module per theme in :data:`~stratum_ml.features.registry.THEMES`. Public API:
``build.build_feature_table`` (scoring), ``build.build_visit_features`` (training),
``catalogue.load_catalogue``.
"""

from importlib import import_module
from types import ModuleType

from stratum_ml.features.registry import THEMES

THEME_MODULES: tuple[ModuleType, ...] = tuple(
    import_module(f"{__name__}.{module}") for module in ("common", *THEMES)
)

__all__ = ["THEME_MODULES"]
