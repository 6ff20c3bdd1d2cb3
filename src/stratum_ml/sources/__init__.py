"""Read a source folder and validate it against the data contract.

Public API
----------
load_sources(dir) -> SourceTables        validated model-input tables (raises SourceValidationError)
load_audit_tables(dir) -> AuditTables | None   protected attributes, for the fairness audit only
validate_source_dir(dir) -> ValidationReport   every finding, for `stratum validate`
SourceStream.open(dir)                    the same checks, one table or block of rows at a time
extract_date(tables) -> ExtractDate       the first day the sources do not cover
read_extract_date(dir) -> ExtractDate     the same from a folder, reading only its dates
guard_as_of(as_of, extract)               refuse a reference date after the extract date
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
from stratum_ml.sources.extract import (
    AsOfAfterExtractError,
    ExtractDate,
    ExtractDateError,
    extract_date,
    guard_as_of,
)
from stratum_ml.sources.tables import AuditTables, SourceTables, normalise_table
from stratum_ml.sources.validate import (
    Finding,
    SourceStream,
    SourceValidationError,
    ValidationReport,
    load_audit_tables,
    load_sources,
    read_extract_date,
    validate_source_dir,
    validate_tables,
)

__all__ = [
    "CONTRACT",
    "MODEL_TABLES",
    "OPTIONAL_TABLES",
    "REQUIRED_TABLES",
    "TABLES",
    "AsOfAfterExtractError",
    "AuditTables",
    "ColumnSpec",
    "ExtractDate",
    "ExtractDateError",
    "Finding",
    "SourceStream",
    "SourceTables",
    "SourceValidationError",
    "TableSpec",
    "ValidationReport",
    "extract_date",
    "guard_as_of",
    "load_audit_tables",
    "load_sources",
    "normalise_table",
    "read_extract_date",
    "validate_source_dir",
    "validate_tables",
]
