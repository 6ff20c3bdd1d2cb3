"""The knobs of the synthetic municipality.

Every rate is per *dwelling* (a ``woonfunctie`` address) unless it says
otherwise. Prevalences are *point* prevalences before enforcement: the share
of dwellings in which an episode of the mechanism would be running on a given
day if nobody ever visited. Visits that find a violation end episodes early,
so the realised prevalence (in the summary) is somewhat lower.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GeneratorConfig(BaseModel):
    """Configuration of :func:`stratum_ml.synthetic.generate_tables`.

    Examples
    --------
    >>> cfg = GeneratorConfig(n_addresses=2_000, seed=7)
    >>> cfg.extract_date
    datetime.date(2026, 11, 1)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_addresses: int = Field(ge=10, description="Number of BAG units (dwellings and others).")
    seed: int = Field(default=0, ge=0, description="Same seed, same municipality.")
    start_date: dt.date = Field(
        default=dt.date(2016, 1, 1), description="Start of the recorded history."
    )
    extract_date: dt.date = Field(
        default=dt.date(2026, 11, 1),
        description="Day the extract was made: nothing is dated on or after it.",
    )
    municipality_code: str = Field(
        default="0479", pattern=r"^[0-9]{4}$", description="CBS/BAG municipality code."
    )
    chunk_size: int = Field(
        default=50_000,
        ge=10,
        le=5_000_000,
        description="Addresses generated (and held in memory) at a time.",
    )
    addresses_per_neighbourhood: int = Field(default=400, ge=20)
    neighbourhoods_per_district: int = Field(default=10, ge=1, le=99)

    # planted mechanisms: point prevalence among dwellings before enforcement
    prevalence_address_fraud: float = Field(default=0.012, ge=0, le=0.2)
    prevalence_illegal_room_rental: float = Field(default=0.010, ge=0, le=0.2)
    prevalence_overcrowding: float = Field(default=0.007, ge=0, le=0.2)
    prevalence_exploitation: float = Field(default=0.004, ge=0, le=0.2)

    # reports (meldingen)
    background_report_rate: float = Field(
        default=0.04, ge=0, description="Reports per dwelling-year not caused by a violation."
    )
    mechanism_report_rate: float = Field(
        default=1.0, ge=0, description="Multiplier on the report rates of running episodes."
    )

    # past visits (huisbezoeken)
    visit_rate: float = Field(
        default=0.06, ge=0, le=2, description="Visits per address over the visit window."
    )
    visit_years: float = Field(default=4.0, gt=0, description="Length of the visit window.")
    random_sample_share: float = Field(default=0.10, ge=0, le=1)
    project_share: float = Field(default=0.15, ge=0, le=1)
    follow_up_probability: float = Field(
        default=0.3, ge=0, le=1, description="Chance of a re-check visit after a violation."
    )
    detection_rate: float = Field(default=0.85, ge=0, le=1)
    false_positive_rate: float = Field(default=0.03, ge=0, le=1)
    inconclusive_rate: float = Field(default=0.04, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> GeneratorConfig:
        if self.extract_date <= self.start_date + dt.timedelta(days=2 * 365):
            raise ValueError("extract_date must be at least two years after start_date")
        if self.random_sample_share + self.project_share > 1:
            raise ValueError("random_sample_share + project_share must not exceed 1")
        if self.visit_years * 365.25 > (self.extract_date - self.start_date).days:
            raise ValueError("the visit window must lie within the history")
        if -(-self.n_addresses // self.chunk_size) >= 0x7FFF:
            raise ValueError("too many chunks: raise chunk_size")
        if self.extract_date.year > 9000:
            raise ValueError("extract_date is too far in the future")
        return self

    @property
    def prevalences(self) -> dict[str, float]:
        """Point prevalence before enforcement, by mechanism."""
        return {
            "address_fraud": self.prevalence_address_fraud,
            "illegal_room_rental": self.prevalence_illegal_room_rental,
            "overcrowding": self.prevalence_overcrowding,
            "exploitation": self.prevalence_exploitation,
        }
