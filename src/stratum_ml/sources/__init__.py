"""Read a source folder and validate it against the data contract.

Public API
----------
load_sources(dir) -> SourceTables        validated model-input tables (raises SourceValidationError)
load_audit_tables(dir) -> AuditTables | None   protected attributes, for the fairness audit only
validate_source_dir(dir) -> ValidationReport   every finding, for `stratum validate`
"""

from stratum_ml.sources.contract import (
    CONTRACT,
    MODEL_TABLES,
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    TABLES,
    ColumnSpec,
    TableSpec,
)
from stratum_ml.sources.tables import AuditTables, SourceTables, normalise_table
from stratum_ml.sources.validate import (
    Finding,
    SourceValidationError,
    ValidationReport,
    load_audit_tables,
    load_sources,
    validate_source_dir,
    validate_tables,
)

__all__ = [
    "CONTRACT",
    "MODEL_TABLES",
    "OPTIONAL_TABLES",
    "REQUIRED_TABLES",
    "TABLES",
    "AuditTables",
    "ColumnSpec",
    "Finding",
    "SourceTables",
    "SourceValidationError",
    "TableSpec",
    "ValidationReport",
    "load_audit_tables",
    "load_sources",
    "normalise_table",
    "validate_source_dir",
    "validate_tables",
]
