"""Tests of stratum_ml.monitoring."""
