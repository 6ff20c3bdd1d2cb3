"""Prometheus gauges of the served run and the kill switch, added to BentoML's ``/metrics``.

BentoML 1.4 serves ``/metrics`` from prometheus_client's registry and appends
what the service's ``__metrics__`` method returns. The gauges here are read
from the operational store at scrape time (one run row, one pause lookup), so a
pause from the shell shows at the next scrape, without a request:

``stratum_run_info{run_id, model_version, as_of}``  1 for the run served
``stratum_run_drifted``                  1 when the run crossed a drift threshold, else 0
                                         (absent when its version has no reference)
``stratum_feature_psi{feature}``         PSI of each feature against the training reference
``stratum_feature_missing_rate_change{feature}``  missing rate now minus in training
``stratum_score_ks``                     KS statistic of the score
``stratum_out_of_range_share``           share of values outside the training range
``stratum_paused``                       1 while the model is paused (kill switch)

They are metric families built per scrape in a registry of their own, not
``Gauge`` objects: in BentoML's multiprocess mode a ``Gauge`` writes to the
shared files that its own collector already exports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stratum_ml.runs import drift_of_run
from stratum_ml.store.switch import current_pause

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from stratum_ml.serving.app_state import ServiceState


class _Families:
    """A collector that yields metric families built beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def run_families(state: ServiceState) -> list[Metric]:
    """The gauges of the run in force and of the kill switch, as metric families."""
    from prometheus_client.core import GaugeMetricFamily

    run = state.run
    info = GaugeMetricFamily(
        "stratum_run_info",
        "The scoring run the service serves (value 1).",
        labels=["run_id", "model_version", "as_of"],
    )
    info.add_metric([run.run_id, run.model_version, run.as_of.isoformat()], 1.0)
    families: list[Metric] = [info]
    paused = GaugeMetricFamily("stratum_paused", "1 while the model is paused (kill switch).")
    paused.add_metric([], 0.0 if current_pause(state.store) is None else 1.0)
    families.append(paused)
    if run.drifted is not None:
        families.append(
            GaugeMetricFamily(
                "stratum_run_drifted",
                "1 when the served run crossed a drift threshold, else 0.",
                value=1.0 if run.drifted else 0.0,
            )
        )
    drift = drift_of_run(state.store, run.run_id)
    if drift is None:
        return families
    psi = GaugeMetricFamily(
        "stratum_feature_psi",
        "PSI of a feature against the training reference.",
        labels=["feature"],
    )
    missing = GaugeMetricFamily(
        "stratum_feature_missing_rate_change",
        "Missing rate of a feature in the served run minus in training.",
        labels=["feature"],
    )
    for feature in drift.get("features", []):
        name = str(feature["feature"])
        if (value := _number(feature.get("psi"))) is not None:
            psi.add_metric([name], value)
        if (change := _number(feature.get("missing_rate_change"))) is not None:
            missing.add_metric([name], change)
    families += [psi, missing]
    for name, doc, value in (
        (
            "stratum_score_ks",
            "KS statistic of the score against the training reference.",
            drift.get("score", {}).get("ks_statistic"),
        ),
        (
            "stratum_out_of_range_share",
            "Share of values outside the training range.",
            drift.get("out_of_range_share"),
        ),
    ):
        if (number := _number(value)) is not None:
            families.append(GaugeMetricFamily(name, doc, value=number))
    return families


def run_metrics_text(state: ServiceState) -> str:
    """The gauges in Prometheus' text format, to append to BentoML's ``/metrics``."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(run_families(state)))
    return generate_latest(registry).decode("utf-8")
