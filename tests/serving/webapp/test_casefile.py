"""The case file: refused without purpose and legal basis, pseudonyms only, stored exports."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from stratum_ml.serving.api_models import DossierResponse, ReasonOut
from stratum_ml.serving.auth import Principal, Role
from stratum_ml.serving.webapp import casefile
from stratum_ml.store import Store

ADDRESS = "0363010000000042"
HANDLER = Principal(key_id="k" * 16, name="team west", role=Role.CASE_HANDLER)
CREATED = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
PURPOSE = "voorbereiding casusoverleg RIEC over mogelijke uitbuiting"
BASIS = "art. 4 Convenant RIEC"


def _dossier() -> DossierResponse:
    return DossierResponse.model_validate(
        {
            "address_id": ADDRESS,
            "as_of": "2026-11-01",
            "address": {
                "postcode": "1011AB",
                "house_number": 12,
                "house_number_suffix": "A",
                "district": "WK036301",
                "neighbourhood": "BU03630105",
                "floor_area_m2": 48,
                "use_purpose": "residential",
                "construction_year": 1931,
                "tenure": "private_rent",
            },
            "registrations": [
                {
                    "person_id": "P-7f3a9c",
                    "surname_key": "S-11b2",
                    "birth_year": 1990,
                    "registered_from": "2025-01-01",
                    "registered_until": None,
                }
            ],
            "water_usage": [],
            "reports": [
                {
                    "report_id": "R-1",
                    "reported_at": "2026-03-02T10:00:00",
                    "category": "nuisance",
                    "source": "resident",
                }
            ],
            "visits": [],
            "businesses": [],
            "ownership": [
                {
                    "owner_id": "O-9d0e",
                    "owner_type": "company",
                    "owned_from": "2020-05-01",
                    "owned_until": None,
                }
            ],
            "linked_addresses": [],
            "n_linked_addresses": 0,
            "absent_sources": [],
        }
    )


def _reason() -> ReasonOut:
    return ReasonOut(
        feature="m2_per_registered_person",
        theme="registrations",
        value=6.0,
        contribution_log_odds=0.8,
        direction="raises",
        text="6 m² per ingeschreven persoon",
        contribution_pp=4.2,
    )


def _pdf_text(pdf: bytes) -> str:
    """The PDF's bytes as text (the case file's streams are not compressed)."""
    assert b"/FlateDecode" not in pdf
    return pdf.decode("latin-1")


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"purpose": PURPOSE},
        {"legal_basis": BASIS},
        {"purpose": "   ", "legal_basis": BASIS},
        {"purpose": "kort", "legal_basis": BASIS},
        {"purpose": PURPOSE, "legal_basis": " \t\n "},
    ],
)
def test_an_export_without_purpose_and_legal_basis_is_refused_in_a_sentence(
    form: dict[str, str],
) -> None:
    with pytest.raises(casefile.CaseFileRefused, match="^Vul het doel .* rechtsgrond .*\\.$"):
        casefile.check_request(form, "nl")
    with pytest.raises(casefile.CaseFileRefused, match="^Enter the purpose"):
        casefile.check_request(form, "en")
    with pytest.raises(casefile.CaseFileRefused, match="at most 1000"):
        casefile.check_request({"purpose": "x" * 1001, "legal_basis": BASIS}, "en")


def test_the_case_file_holds_the_request_reasons_and_evidence_under_pseudonyms() -> None:
    request = casefile.check_request({"purpose": f"  {PURPOSE} ", "legal_basis": BASIS}, "nl")
    assert request.purpose == PURPOSE
    markdown = casefile.case_file_markdown(
        _dossier(),
        request=request,
        reasons=[_reason()],
        water=[{"year": "2025", "what": "gemeten", "m3": 150.0}],
        portfolio={"O-9d0e": 7},
        principal=HANDLER,
        run_id="r" * 32,
        model_version="3",
        created=CREATED,
        language="nl",
    )
    for expected in (
        PURPOSE,
        BASIS,
        "team west (casusbehandelaar)",
        "P-7f3a9c",
        "S-11b2",
        "O-9d0e (bedrijf)",
        "7 adressen in bezit",
        "6 m² per ingeschreven persoon (+4.2 procentpunt)",
        "overlast (bewoner)",
        "alleen pseudoniemen",
        "modelversie 3",
    ):
        assert expected in markdown, expected
    pdf = casefile.case_file_pdf(markdown, "Casusdossier", CREATED)
    assert pdf.startswith(b"%PDF")
    words = _pdf_text(pdf)
    for expected in ("P-7f3a9c", "O-9d0e", "RIEC", "Convenant"):
        assert expected in words, expected


def test_an_export_is_stored_and_listed_on_the_address(store: Store) -> None:
    request = casefile.CaseFileRequest(purpose=PURPOSE, legal_basis=BASIS)
    pdf = b"%PDF-1.3 test bytes"
    stored = casefile.record_export(
        store,
        address_id=ADDRESS,
        principal=HANDLER,
        request=request,
        run_id=None,
        model_version="3",
        pdf=pdf,
        created=CREATED,
    )
    later = casefile.record_export(
        store,
        address_id=ADDRESS,
        principal=HANDLER,
        request=request,
        run_id="r" * 32,
        model_version="3",
        pdf=pdf + b"2",
        created=CREATED + dt.timedelta(hours=1),
    )
    listed = casefile.exports_of(store, ADDRESS)
    assert [e.export_id for e in listed] == [stored.export_id, later.export_id]
    assert listed[0].pdf_sha256 == hashlib.sha256(pdf).hexdigest()
    assert (listed[0].purpose, listed[0].legal_basis, listed[0].role) == (
        PURPOSE,
        BASIS,
        "case_handler",
    )
    assert listed[0].created_at == CREATED
    assert casefile.exports_of(store, "0363010000000043") == []
