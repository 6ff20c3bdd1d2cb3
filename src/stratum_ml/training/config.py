"""The run configuration of a training: YAML -> pydantic, recorded with every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stratum_ml.evaluation.gates import FairnessGateConfig
from stratum_ml.evaluation.sensitive import RESIDENT_GROUPS
from stratum_ml.features.registry import FeatureParams
from stratum_ml.model.params import LightGBMParams

#: the protected groups the gate checks by default; district and neighbourhood are
#: audited and reported too, but prevalence differs between places by nature
PROTECTED_ATTRIBUTES = tuple(RESIDENT_GROUPS)


class SplitConfig(BaseModel):
    """Time-based split of the visits: train | tune | holdout, in date order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tune_fraction: float = Field(0.2, gt=0, lt=0.5, description="early stopping and calibration")
    holdout_fraction: float = Field(0.25, gt=0, lt=0.5, description="evaluation only")

    @model_validator(mode="after")
    def _leaves_training(self) -> SplitConfig:
        if self.tune_fraction + self.holdout_fraction >= 0.8:
            raise ValueError("tune_fraction + holdout_fraction must leave at least 20% to train")
        return self


class RunConfig(BaseModel):
    """Everything that decides a training run; logged to MLflow as ``run_config.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str | None = Field(None, description="registered model (default from settings)")
    feature_set: str = "default"
    exclude_features: tuple[str, ...] = ()
    feature_params: FeatureParams = FeatureParams()
    lightgbm: LightGBMParams = LightGBMParams()
    split: SplitConfig = SplitConfig()
    calibration: Literal["isotonic", "sigmoid"] = Field(
        "sigmoid",
        description=(
            "Platt scaling by default: the tune period holds a few hundred visits, too few for "
            "isotonic regression, whose steps put probability 1.0 on the top of the list"
        ),
    )
    weighting: Literal["none", "ipw"] = Field(
        "none",
        description=(
            "'ipw' trains on inverse visit-propensity weights (selective-labels correction). "
            "The propensity model is always fitted and its AUC and weight spread reported; "
            "weighting is off by default because, with visits this selective (propensity AUC "
            "~0.9), the weights are extreme and the effective sample collapses: on the "
            "generated 60k town IPW lowered true precision@100 from 0.96 to 0.44."
        ),
    )
    ipw_clip: float = Field(20.0, ge=1, description="largest weight relative to the mean")
    propensity_controls: int = Field(2, ge=1, description="unvisited control queries per visit")
    ks: tuple[int, ...] = (50, 100, 250, 500)
    headline_k: int = 100
    fairness: FairnessGateConfig = Field(
        FairnessGateConfig(
            attributes=PROTECTED_ATTRIBUTES,
            metrics=("false_positive_rate",),
            require_significance=True,
        ),
        description=(
            "The gate checks that dwellings WITHOUT a violation are not selected more often in "
            "one protected group than another (false-positive-rate ratio within the limits, "
            "significant differences only). Selection-rate parity is audited and reported but "
            "not gated by default: where true prevalence differs between groups (it does in "
            "the data; see the audit's per-group rates), equal selection rates would mean "
            "visiting more innocent dwellings of one group. Add 'selection_rate' to metrics to "
            "gate on it."
        ),
    )
    proxy_auc_threshold: float = Field(0.7, gt=0.5, le=1)
    mitigation: Literal["none", "reweight", "drop_proxies"] = Field(
        "none", description="fairness mitigation applied to the registered model"
    )
    evaluate_mitigations: bool = Field(
        True, description="also train each mitigation and report its effect side by side"
    )
    final_fit_folds: int = Field(
        5,
        ge=0,
        description=(
            "After the time-split evaluation, the registered model is refitted on every "
            "labelled visit (holdout and visits recorded through the service included), with "
            "boosting rounds and calibration chosen by this many folds grouped by address "
            "(training.refit). 0 registers the split model itself. The reported evaluation is "
            "always the split model's."
        ),
    )
    plan_visit_weighting: Literal["none", "inverse_inclusion"] = Field(
        "none",
        description=(
            "How the final fit (training.refit) weighs the visits of a visit plan: 'none' "
            "(weight 1, like every visit) or 'inverse_inclusion' (1 / the pick's inclusion "
            "probability, the Horvitz-Thompson weight: unbiased for the loss over each plan's "
            "whole population, at the cost of variance; policy and report visits keep weight "
            "1). The default is what bench/refit_weighting.py measured; see training.refit."
        ),
    )
    frontier_grid_size: int = Field(
        0,
        ge=0,
        description=(
            "Points of the fairness frontier (training.frontier): fairlearn GridSearch with a "
            "false-positive-rate-parity constraint on any_resident_born_outside_europe, each "
            "point measured like the model and logged as tables/fairness_frontier.csv and "
            "plots/fairness_frontier.png. 0: not fitted (it adds a fit and an audit per point)."
        ),
    )
    seed: int = 0
    exploration_share: float = Field(
        0.10,
        ge=0,
        le=1,
        description=(
            "share of a run's visit capacity drawn at random with known inclusion "
            "probabilities (`stratum run --capacity N`); see stratum_ml.runs.plan"
        ),
    )
    challenger_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description=(
            "share of a run's visit capacity drawn at random from the challenger stratum (the "
            "shadow-scored challenger's top N that are not top picks of the champion), so that "
            "the challenger's precision@k is estimable from the plan; applies only when a "
            "challenger is shadow-scored on the run (0 otherwise); see stratum_ml.runs.plan"
        ),
    )

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> RunConfig:
        """Read a YAML run config; ``None`` gives the defaults. Errors name the file and field."""
        if path is None:
            return cls()
        path = Path(path)
        try:
            data: Any = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read run config: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a run config is a mapping of settings")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{path}: invalid run config:\n{exc}") from exc

    def to_yaml(self) -> str:
        """The config as YAML (what gets logged)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
