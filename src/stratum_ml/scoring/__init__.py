"""Score a population as of a date: ranked, calibrated, explained priority lists."""

from stratum_ml.scoring.scorer import ScoredAddress, Scorer

__all__ = ["ScoredAddress", "Scorer"]
