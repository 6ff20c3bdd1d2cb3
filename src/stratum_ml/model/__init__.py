"""The runtime: a fitted risk model, its calibrator, and the registry's read side.

Training writes models (``training.tracking``, ``training.registry.promote``);
scoring and serving read them through this package and never reach back into
training:

* :mod:`.risk_model` -- :class:`RiskModel` (LightGBM + calibrator), saved as plain files;
* :mod:`.calibration` -- :class:`Calibrator`; :mod:`.params` -- :class:`LightGBMParams`;
* :mod:`.pyfunc` -- the MLflow pyfunc a registered version loads as;
* :mod:`.store` -- the MLflow store named by the settings;
* :mod:`.registry` -- load a version or alias, champion info, alias and tag names.

Only the model classes are imported here; :mod:`.registry` and :mod:`.store` import
MLflow (a second of start-up), so they are imported by name where needed.
"""

from stratum_ml.model.calibration import Calibrator
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel

__all__ = ["Calibrator", "LightGBMParams", "RiskModel"]
