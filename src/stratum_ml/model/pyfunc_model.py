"""MLflow models-from-code entry point for :class:`~stratum_ml.model.pyfunc.RiskPyfunc`.

``training.tracking.log_training_run`` passes this file's path as ``python_model``; MLflow
stores it with the model and executes it when the model is loaded. The library
never imports it: importing it registers the model with MLflow, and that is its
only job.
"""

from mlflow.models import set_model

from stratum_ml.model.pyfunc import RiskPyfunc

set_model(RiskPyfunc())
