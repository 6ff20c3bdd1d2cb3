"""The source data contract as data; ``docs/data-contract.md`` is rendered from it.

Every rule of the contract is written here once, as a :class:`ColumnSpec` or
:class:`TableSpec` field; the pandera schemas (``sources.schemas``), the
synthetic generator and the documentation are all derived from these specs.
Beside the tables, a folder may declare its extract date
(:data:`EXTRACT_DECLARATION`); the columns that date a folder are
:data:`EXTRACT_COLUMNS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["string", "int", "float", "date", "timestamp", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract table and the rules it must obey."""

    name: str
    kind: Kind
    nullable: bool = False
    pattern: str | None = None  # full-match regular expression (strings)
    domain: tuple[str, ...] | None = None  # allowed values (categories)
    min_value: float | None = None  # inclusive
    max_value: float | None = None  # inclusive; "current year" is resolved at validation time
    max_is_current_year: bool = False
    unique: bool = False
    references: tuple[str, str] | None = None  # (table, column) that must hold every value
    identifier: bool = False  # checked against the BSN elfproef; value never echoed
    description: str = ""
    optional: bool = False  # the column may be left out of the file altogether


@dataclass(frozen=True)
class DateOrder:
    """``later`` must be >= (or >, when ``strict``) ``earlier`` wherever both are set."""

    earlier: str
    later: str
    strict: bool = False


@dataclass(frozen=True)
class ConditionalNull:
    """``column`` may be set only where ``when_column`` equals ``when_value``."""

    column: str
    when_column: str
    when_value: str


@dataclass(frozen=True)
class PatternWhen:
    """``column`` must fully match ``pattern`` where ``when_column`` equals ``when_value``."""

    column: str
    when_column: str
    when_value: str
    pattern: str


@dataclass(frozen=True)
class GeometryRule:
    """``column`` holds a GeoJSON Polygon or MultiPolygon in the CRS that ``crs_column`` names.

    The geometry must parse, be a valid (multi)polygon and lie within the extent of
    its CRS around the Netherlands (:data:`CRS_EXTENTS`), which catches a wrong CRS
    and swapped coordinates.
    """

    column: str
    crs_column: str


@dataclass(frozen=True)
class TableSpec:
    """One source table: its columns, keys and cross-column rules."""

    name: str
    required: bool
    description: str
    columns: tuple[ColumnSpec, ...]
    date_orders: tuple[DateOrder, ...] = ()
    set_only_when: tuple[ConditionalNull, ...] = ()
    primary_key: tuple[str, ...] = ()
    own_date: str | None = None  # the column that dates a row for the as-of rule
    audit_only: bool = False  # never a model input
    patterns_when: tuple[PatternWhen, ...] = ()
    geometries: tuple[GeometryRule, ...] = ()
    when_absent: str = ""  # what its absence means, where not "its features are absent"
    notes: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


USE_PURPOSES = (
    "woonfunctie",
    "bijeenkomstfunctie",
    "celfunctie",
    "gezondheidszorgfunctie",
    "industriefunctie",
    "kantoorfunctie",
    "logiesfunctie",
    "onderwijsfunctie",
    "sportfunctie",
    "winkelfunctie",
    "overige gebruiksfunctie",
)
TENURES = ("owner_occupied", "social_rent", "private_rent", "unknown")
OWNER_TYPES = ("natural_person", "company", "housing_association", "municipality")
REPORT_CATEGORIES = (
    "overcrowding",
    "nuisance",
    "pollution",
    "subletting",
    "address_fraud",
    "exploitation",
    "other",
)
REPORT_SOURCES = ("resident", "police", "housing_association", "municipality", "anonymous")
INSPECTION_REASONS = ("random_sample", "report", "risk_model", "project", "other")
OUTCOMES = ("violation", "no_violation", "inconclusive")
VIOLATION_TYPES = (
    "address_fraud",
    "illegal_subletting",
    "overcrowding",
    "illegal_room_rental",
    "exploitation",
    "other",
)
AREA_LEVELS = ("district", "neighbourhood")
#: the coordinate systems an area geometry may be given in, and the extent (min x, min y,
#: max x, max y) of the Netherlands in each: RD New (metres) and WGS84 (longitude, latitude)
CRS_EXTENTS: dict[str, tuple[float, float, float, float]] = {
    "EPSG:28992": (-7_000.0, 289_000.0, 300_000.0, 629_000.0),
    "EPSG:4326": (2.0, 50.0, 8.0, 56.0),
}
CRS_CODES = tuple(CRS_EXTENTS)
GENDERS = ("female", "male", "other", "unknown")
BIRTH_COUNTRY_GROUPS = ("netherlands", "europe_other", "outside_europe", "unknown")

_ADDRESS_REF = ("addresses", "address_id")


def _address_fk() -> ColumnSpec:
    return ColumnSpec(
        "address_id",
        "string",
        references=_ADDRESS_REF,
        identifier=True,
        description="BAG verblijfsobject id; must exist in addresses",
    )


CONTRACT: tuple[TableSpec, ...] = (
    TableSpec(
        name="addresses",
        required=True,
        description="BAG verblijfsobject: one row per dwelling or unit",
        primary_key=("address_id",),
        columns=(
            ColumnSpec(
                "address_id",
                "string",
                pattern=r"[0-9]{16}",
                unique=True,
                identifier=True,
                description="BAG verblijfsobject id",
            ),
            ColumnSpec(
                "building_id",
                "string",
                pattern=r"[0-9]{16}",
                identifier=True,
                description="BAG pand id",
            ),
            ColumnSpec("postcode", "string", pattern=r"[1-9][0-9]{3}[A-Z]{2}"),
            ColumnSpec("house_number", "int", min_value=1),
            ColumnSpec("house_number_suffix", "string", nullable=True),
            ColumnSpec("district_code", "string", pattern=r"WK[0-9]{6}", description="CBS wijk"),
            ColumnSpec(
                "neighbourhood_code",
                "string",
                pattern=r"BU[0-9]{8}",
                references=("areas", "code"),
                description="CBS buurt; must exist in areas.code when areas is given",
            ),
            ColumnSpec(
                "floor_area_m2",
                "int",
                min_value=1,
                max_value=100000,
                description="gebruiksoppervlakte",
            ),
            ColumnSpec(
                "use_purpose", "category", domain=USE_PURPOSES, description="BAG gebruiksdoel"
            ),
            ColumnSpec("construction_year", "int", min_value=1000, max_is_current_year=True),
            ColumnSpec("tenure", "category", domain=TENURES),
            ColumnSpec("x_rd", "float", nullable=True, description="Rijksdriehoek metres"),
            ColumnSpec("y_rd", "float", nullable=True, description="Rijksdriehoek metres"),
            ColumnSpec(
                "street_name",
                "string",
                nullable=True,
                optional=True,
                description="BAG openbare ruimte (street); shown to people, never a feature",
            ),
            ColumnSpec(
                "city",
                "string",
                nullable=True,
                optional=True,
                description="BAG woonplaats; shown to people, never a feature",
            ),
        ),
        notes=(
            "",
            "`street_name` and `city` may be left out; without them lists show the postcode",
            "and house number only. When the `areas` table is given, every",
            "`neighbourhood_code` must be one of its codes.",
        ),
    ),
    TableSpec(
        name="areas",
        required=False,
        description="CBS wijken and buurten: names and boundaries, for lists and maps",
        primary_key=("code",),
        columns=(
            ColumnSpec(
                "code",
                "string",
                pattern=r"(WK[0-9]{6}|BU[0-9]{8})",
                unique=True,
                description="CBS wijk (WK) or buurt (BU) code",
            ),
            ColumnSpec("level", "category", domain=AREA_LEVELS),
            ColumnSpec("name", "string"),
            ColumnSpec("crs", "category", domain=CRS_CODES, description="CRS of `geometry`"),
            ColumnSpec(
                "geometry",
                "string",
                description="GeoJSON Polygon or MultiPolygon geometry, in `crs`",
            ),
        ),
        patterns_when=(
            PatternWhen("code", "level", "district", r"WK[0-9]{6}"),
            PatternWhen("code", "level", "neighbourhood", r"BU[0-9]{8}"),
        ),
        geometries=(GeometryRule("geometry", "crs"),),
        when_absent="lists show area codes instead of names, and there is no map",
        notes=(
            "",
            "Never a model input: names and boundaries label lists and draw the map.",
            "`crs` is `EPSG:28992` (RD New, metres, x then y) or `EPSG:4326` (WGS84,",
            "longitude then latitude). A geometry must parse as GeoJSON, be a valid polygon",
            "or multipolygon and lie within the Netherlands in its CRS.",
        ),
    ),
    TableSpec(
        name="registrations",
        required=True,
        description="BRP: one row per stay of a person at an address",
        own_date="registered_from",
        columns=(
            ColumnSpec(
                "person_id", "string", identifier=True, description="pseudonym, never a BSN"
            ),
            _address_fk(),
            ColumnSpec("registered_from", "date"),
            ColumnSpec("registered_until", "date", nullable=True),
            ColumnSpec("birth_year", "int", min_value=1900, max_is_current_year=True),
            ColumnSpec(
                "surname_key",
                "string",
                identifier=True,
                description="pseudonym of the family name (counts distinct families at an address)",
            ),
        ),
        date_orders=(DateOrder("registered_from", "registered_until"),),
    ),
    TableSpec(
        name="water_usage",
        required=False,
        description="drinking-water company: metered volume per period",
        own_date="period_end",
        columns=(
            _address_fk(),
            ColumnSpec("period_start", "date"),
            ColumnSpec("period_end", "date"),
            ColumnSpec("volume_m3", "float", min_value=0),
        ),
        date_orders=(DateOrder("period_start", "period_end", strict=True),),
    ),
    TableSpec(
        name="energy_usage",
        required=False,
        description="grid operator: yearly electricity and gas use",
        own_date="year",
        columns=(
            _address_fk(),
            ColumnSpec("year", "int"),
            ColumnSpec("electricity_kwh", "float", nullable=True, min_value=0),
            ColumnSpec("gas_m3", "float", nullable=True, min_value=0),
        ),
    ),
    TableSpec(
        name="businesses",
        required=False,
        description="Handelsregister establishments",
        own_date="registered_from",
        columns=(
            ColumnSpec(
                "business_id",
                "string",
                pattern=r"[0-9]{12}",
                identifier=True,
                description="vestigingsnummer",
            ),
            _address_fk(),
            ColumnSpec("registered_from", "date"),
            ColumnSpec("registered_until", "date", nullable=True),
            ColumnSpec(
                "sbi_code",
                "string",
                pattern=r"[0-9]{2,5}",
                description="SBI activity code; 78 = employment agencies",
            ),
        ),
        date_orders=(DateOrder("registered_from", "registered_until"),),
    ),
    TableSpec(
        name="ownership",
        required=False,
        description="Kadaster: who owned a dwelling, and when",
        own_date="owned_from",
        columns=(
            _address_fk(),
            ColumnSpec("owner_id", "string", identifier=True, description="pseudonym, never a BSN"),
            ColumnSpec("owner_type", "category", domain=OWNER_TYPES),
            ColumnSpec("owned_from", "date"),
            ColumnSpec("owned_until", "date", nullable=True),
        ),
        date_orders=(DateOrder("owned_from", "owned_until"),),
    ),
    TableSpec(
        name="reports",
        required=False,
        description="meldingen: reports about an address",
        own_date="reported_at",
        primary_key=("report_id",),
        columns=(
            ColumnSpec("report_id", "string", unique=True, identifier=True),
            _address_fk(),
            ColumnSpec("reported_at", "timestamp"),
            ColumnSpec("category", "category", domain=REPORT_CATEGORIES),
            ColumnSpec("source", "category", domain=REPORT_SOURCES),
        ),
    ),
    TableSpec(
        name="inspections",
        required=True,
        description="huisbezoeken: past visits and their outcomes (the labels)",
        own_date="inspected_at",
        primary_key=("inspection_id",),
        columns=(
            ColumnSpec("inspection_id", "string", unique=True, identifier=True),
            _address_fk(),
            ColumnSpec("inspected_at", "date"),
            ColumnSpec("reason", "category", domain=INSPECTION_REASONS),
            ColumnSpec("outcome", "category", domain=OUTCOMES),
            ColumnSpec("violation_type", "category", nullable=True, domain=VIOLATION_TYPES),
        ),
        set_only_when=(ConditionalNull("violation_type", "outcome", "violation"),),
        notes=(
            "",
            "`reason` records why the address was visited. Labels exist only for visited",
            "addresses, and which addresses were visited was decided by earlier policy:",
            "`random_sample` visits are the only unbiased labels.",
        ),
    ),
    TableSpec(
        name="audit_attributes",
        required=False,
        audit_only=True,
        description="protected attributes, for the fairness audit ONLY",
        columns=(
            ColumnSpec(
                "person_id", "string", references=("registrations", "person_id"), identifier=True
            ),
            ColumnSpec("gender", "category", domain=GENDERS),
            ColumnSpec("birth_country_group", "category", domain=BIRTH_COUNTRY_GROUPS),
        ),
    ),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in CONTRACT}
REQUIRED_TABLES: tuple[str, ...] = tuple(t.name for t in CONTRACT if t.required)
OPTIONAL_TABLES: tuple[str, ...] = tuple(t.name for t in CONTRACT if not t.required)
MODEL_TABLES: tuple[str, ...] = tuple(t.name for t in CONTRACT if not t.audit_only)


@dataclass(frozen=True)
class ExtractColumn:
    """A column that dates the rows of a source folder, for its extract date.

    ``year`` columns hold a calendar year, which counts as its last day (31 December):
    a year's total is complete, and known, only once the year has ended.
    """

    table: str
    column: str
    year: bool = False

    @property
    def qualified(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.column}"


#: every column that dates a row: the date and timestamp columns, and an own-date year
EXTRACT_COLUMNS: tuple[ExtractColumn, ...] = tuple(
    ExtractColumn(t.name, c.name, year=c.kind == "int")
    for t in CONTRACT
    for c in t.columns
    if c.kind in ("date", "timestamp") or (c.kind == "int" and c.name == t.own_date)
)


@dataclass(frozen=True)
class ExtractDeclaration:
    """The optional file in which a source folder declares its extract date."""

    file: str
    key: str
    example: str


EXTRACT_DECLARATION = ExtractDeclaration(
    file="extract.json", key="extract_date", example='{"extract_date": "2026-11-01"}'
)
