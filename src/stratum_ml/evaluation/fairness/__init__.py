"""Fairness audit of a top-k selection, built on fairlearn's ``MetricFrame``.

Protected attributes (``audit_attributes`` in the data contract, aggregated to
address level, plus district or neighbourhood) reach this module only; they are
never model features. The audit asks, per attribute:

* is one group selected for a visit more often than another (selection rate)?
* are addresses *without* a violation in one group more often selected
  (false positive rate), or addresses *with* one more often missed (false
  negative rate)? Is a visit in one group less often a hit (precision)?
* does a model feature stand in for an attribute (:func:`proxy_check`)?

**Missing labels.** The selection covers the whole scored population, but
outcomes exist only for visited addresses. Pass ``y_true`` with NaN for
unlabelled rows: the selection rate uses every row; the false positive rate,
false negative rate and precision use only the labelled rows of each group
(their ``support`` column says how many). Those three are unbiased for the
population when the labelled rows are a random sample (``random_sample``
visits); on policy-chosen visits they describe the visited addresses only.

**Privacy.** A group of fewer than ``min_group_size`` addresses is flagged, and
any number resting on fewer than ``min_group_size`` addresses is suppressed in
:meth:`FairnessResult.to_frame` and :meth:`FairnessResult.to_dict`, so no
person or single visit outcome can be singled out.

**One computation.** Every rate here depends on a row only through its
(group, label, selected) cell, so each attribute is reduced to at most
``6 x groups`` distinct cells with their counts; results are identical to
computing on rows. One function computes every group's rates and their ratios
to the reference group from cells and counts: on the cells' own counts it gives
the point values, on multinomial counts over the same cells (the same bootstrap
as resampling rows) each bootstrap replicate. fairlearn's ``MetricFrame`` of
the same cells is kept beside the table (``FairnessResult.metric_frames``, same
values, built when first looked up); replicates do not go through it, as it costs
about 40 ms per call even on 12 rows, so 200 replicates would take seconds per
attribute instead of milliseconds. Nor do they call a metric per group: each rate
of every group is one weighted ``bincount`` over the cells, so the 2,500
neighbourhoods of a 1M town cost what two groups cost.
"""

from stratum_ml.evaluation.fairness._audit import MISSING_GROUP, FairnessResult, fairness_audit
from stratum_ml.evaluation.fairness._proxy import proxy_check
from stratum_ml.evaluation.fairness._spec import METRICS_SPEC, GroupMetric

__all__ = [
    "METRICS_SPEC",
    "MISSING_GROUP",
    "FairnessResult",
    "GroupMetric",
    "fairness_audit",
    "proxy_check",
]
