"""The LightGBM settings a :class:`~stratum_ml.model.risk_model.RiskModel` is fitted with.

They travel with a saved model (``model.json``), and a training run's config
(``training.config.RunConfig.lightgbm``) holds them, so they live beside the model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LightGBMParams"]


class LightGBMParams(BaseModel):
    """LightGBM settings (binary objective); see the LightGBM parameter docs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_leaves: int = Field(15, ge=2)
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: int = Field(600, ge=1, description="upper bound; early stopping picks fewer")
    min_child_samples: int = Field(20, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    subsample_freq: int = Field(1, ge=0)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    early_stopping_rounds: int = Field(50, ge=1)
    n_jobs: int = Field(
        1,
        ge=1,
        description="LightGBM threads; on small shared machines 2 threads were seen to slow a "
        "fit 20-70x when the cores were busy, so the default is 1",
    )
