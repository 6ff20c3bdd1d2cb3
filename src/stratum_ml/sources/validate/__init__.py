"""Validate source tables against the data contract, and load them.

Every rule comes from the specs in :mod:`stratum_ml.sources.contract`. Validation
runs in three steps per table:

1. *parse*: each contract column is converted to its kind (text, ``Int64``,
   ``float64``, naive ``datetime64[ns]``); a present value that does not convert
   is a ``type`` error for its row and is missing from then on, so that later
   rules do not report it again;
2. *schema*: the single-column rules (not null, unique, pattern, domain,
   minimum, maximum, BSN elfproef) run as the pandera schema of
   :func:`stratum_ml.sources.schemas.table_schema`, lazily, and its failure cases
   become findings;
3. *cross-column and cross-table rules*, vectorised in pandas: date order,
   "set only when", and references (foreign keys).

Row numbers in findings are 1-based data rows: row 1 is the first row after the
header, so a CSV's line number is the row number plus one.

No finding ever shows a value of an identifier column (person, address,
business, owner, report and inspection ids); other columns show at most
:data:`MAX_EXAMPLES` offending values.
"""

from stratum_ml.sources.validate._api import (
    load_audit_tables,
    load_sources,
    read_extract_date,
    validate_source_dir,
    validate_tables,
)
from stratum_ml.sources.validate._findings import (
    MAX_EXAMPLES,
    MAX_ROWS,
    Finding,
    Severity,
    SourceValidationError,
    ValidationReport,
)
from stratum_ml.sources.validate._rules import ReferenceLookup
from stratum_ml.sources.validate._stream import BATCH_ROWS, BrokenRule, SourceStream

__all__ = [
    "BATCH_ROWS",
    "BrokenRule",
    "ReferenceLookup",
    "SourceStream",
    "MAX_EXAMPLES",
    "MAX_ROWS",
    "Finding",
    "Severity",
    "SourceValidationError",
    "ValidationReport",
    "load_audit_tables",
    "load_sources",
    "read_extract_date",
    "validate_source_dir",
    "validate_tables",
]
