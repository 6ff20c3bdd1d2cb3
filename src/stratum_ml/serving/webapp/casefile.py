"""The case file: a dossier exported as PDF for a RIEC case, under pseudonyms only.

:func:`check_request` refuses an export without a purpose and a legal basis (the
case handler enters both; they are written into the PDF and kept with the export).
:func:`case_file_markdown` writes what the dossier page shows -- the model's reasons
and the evidence: registrations (pseudonyms), water use against the registered
household, reports, visits, businesses, owners (pseudonyms) with portfolio size and
linked addresses -- and :func:`case_file_pdf` renders it with fpdf2
(:func:`stratum_ml.docs.pdf.markdown_to_pdf`). :func:`record_export` stores the
export (who, purpose, legal basis, run, version, the PDF's SHA-256) and
:func:`exports_of` lists an address's exports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from stratum_ml.docs.pdf import markdown_to_pdf
from stratum_ml.serving.api_models import DossierResponse, ReasonOut
from stratum_ml.serving.auth import Principal
from stratum_ml.serving.webapp.i18n import Language, label, portfolio_words, text
from stratum_ml.store import Store
from stratum_ml.store.tables import CaseFileExportRow

#: the shortest purpose and legal basis accepted (characters, after trimming)
MIN_PURPOSE, MIN_LEGAL_BASIS = 10, 5
#: the longest (the columns' sizes)
MAX_PURPOSE, MAX_LEGAL_BASIS = 1000, 500


class CaseFileRefused(ValueError):
    """The export is refused; the message is a plain sentence in the page's language."""


@dataclass(frozen=True)
class CaseFileRequest:
    """What the case handler entered."""

    purpose: str
    legal_basis: str


@dataclass(frozen=True)
class CaseFileExport:
    """One stored export."""

    export_id: str
    address_id: str
    key_name: str
    role: str
    purpose: str
    legal_basis: str
    run_id: str | None
    model_version: str
    pdf_sha256: str
    created_at: dt.datetime


def check_request(form: dict[str, str], language: Language) -> CaseFileRequest:
    """The purpose and legal basis of the form, or :class:`CaseFileRefused` saying what lacks."""
    purpose = " ".join(form.get("purpose", "").split())
    basis = " ".join(form.get("legal_basis", "").split())
    if len(purpose) < MIN_PURPOSE or len(basis) < MIN_LEGAL_BASIS:
        raise CaseFileRefused(text(language, "casefile_needs_purpose"))
    if len(purpose) > MAX_PURPOSE or len(basis) > MAX_LEGAL_BASIS:
        raise CaseFileRefused(
            text(language, "casefile_too_long", purpose=MAX_PURPOSE, basis=MAX_LEGAL_BASIS)
        )
    return CaseFileRequest(purpose=purpose, legal_basis=basis)


def _cell(value: object) -> str:
    return "" if value is None else str(value).replace("|", "/")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def case_file_markdown(
    dossier: DossierResponse,
    *,
    request: CaseFileRequest,
    reasons: Sequence[ReasonOut],
    water: Sequence[dict[str, Any]],
    portfolio: dict[str, int],
    principal: Principal,
    run_id: str | None,
    model_version: str,
    created: dt.datetime,
    language: Language,
) -> str:
    """The case file as Markdown: the header, the model's reasons and the evidence."""

    def t(key: str, **values: object) -> str:
        return text(language, key, **values)

    a = dossier.address
    none = t("none")
    lines = [
        f"# {t('casefile_title', address=dossier.address_id)}",
        "",
        f"- **{t('casefile_purpose')}:** {request.purpose}",
        f"- **{t('casefile_legal_basis')}:** {request.legal_basis}",
        f"- **{t('casefile_made')}:** {created:%Y-%m-%d %H:%M} UTC, "
        f"{principal.name} ({label(language, principal.role.value)})",
        f"- **{t('casefile_source')}:** {t('casefile_source_text', date=dossier.as_of, run=run_id or '-', version=model_version)}",  # noqa: E501
        "",
        t("casefile_pseudonyms"),
        "",
        f"## {t('address')}",
        "",
        f"{a.postcode} {a.house_number}{a.house_number_suffix or ''}, {a.district} / "
        f"{a.neighbourhood}; {a.floor_area_m2} m2, {label(language, a.use_purpose)}, "
        f"{a.construction_year}, {label(language, a.tenure)}",
        "",
        f"## {t('reasons')}",
        "",
    ]
    if reasons:
        lines += [
            f"- {r.text}"
            + (f" ({r.contribution_pp:+.1f} {t('pp')})" if r.contribution_pp is not None else "")
            for r in reasons
        ]
    else:
        lines.append(none)
    lines += ["", f"## {t('registrations')}", ""]
    if dossier.registrations:
        lines += _table(
            [t("person"), t("family"), t("birth_year"), t("from"), t("until")],
            [
                (s.person_id, s.surname_key, s.birth_year, s.registered_from, s.registered_until)
                for s in sorted(dossier.registrations, key=lambda s: s.registered_from)
            ],
        )
    else:
        lines.append(none)
    lines += ["", f"## {t('water')}", ""]
    if water:
        lines += _table(
            [t("year"), "", "m3"], [(w["year"], w["what"], f"{w['m3']:.0f}") for w in water]
        )
    else:
        lines.append(none)
    lines += ["", f"## {t('reports')}", ""]
    lines += [
        f"- {r.reported_at.date()}: {label(language, r.category)} ({label(language, r.source)})"
        for r in dossier.reports
    ] or [none]
    lines += ["", f"## {t('visits')}", ""]
    lines += [
        f"- {v.inspected_at}: {label(language, v.outcome)}"
        + (f" ({label(language, v.violation_type)})" if v.violation_type else "")
        + f", {label(language, v.reason)}"
        for v in dossier.visits
    ] or [none]
    lines += ["", f"## {t('businesses')}", ""]
    lines += [
        f"- {b.business_id} SBI {b.sbi_code}, {b.registered_from} - "
        f"{b.registered_until or t('ongoing')}"
        for b in dossier.businesses
    ] or [none]
    lines += ["", f"## {t('owners')}", ""]
    lines += [
        f"- {o.owner_id} ({label(language, o.owner_type)}), {o.owned_from} - "
        f"{o.owned_until or t('ongoing')}"
        + (
            f": {portfolio_words(language, portfolio[o.owner_id])}"
            if portfolio.get(o.owner_id)
            else ""
        )
        for o in dossier.ownership
    ] or [none]
    lines += ["", f"## {t('linked')}", ""]
    lines += [
        f"- {link.address_id} - {t('via')} {label(language, link.via)} ({link.through})"
        for link in dossier.linked_addresses
    ] or [none]
    return "\n".join(lines) + "\n"


def case_file_pdf(markdown: str, title: str, created: dt.datetime) -> bytes:
    """The case file's PDF (text left readable in the bytes, so it can be checked)."""
    return markdown_to_pdf([(title, markdown)], created=created, compress=False)


def record_export(
    store: Store,
    *,
    address_id: str,
    principal: Principal,
    request: CaseFileRequest,
    run_id: str | None,
    model_version: str,
    pdf: bytes,
    created: dt.datetime,
) -> CaseFileExport:
    """Store one export (in its own transaction)."""
    row = CaseFileExportRow(
        export_id=str(uuid.uuid4()),
        address_id=address_id,
        key_id=principal.key_id,
        role=principal.role.value,
        key_name=principal.name,
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        run_id=run_id,
        model_version=model_version,
        pdf_sha256=hashlib.sha256(pdf).hexdigest(),
        created_at=created,
    )
    with store.transaction() as session:
        session.add(row)
    return _export(row)


def _export(row: CaseFileExportRow) -> CaseFileExport:
    return CaseFileExport(
        export_id=row.export_id,
        address_id=row.address_id,
        key_name=row.key_name,
        role=row.role,
        purpose=row.purpose,
        legal_basis=row.legal_basis,
        run_id=row.run_id,
        model_version=row.model_version,
        pdf_sha256=row.pdf_sha256,
        created_at=row.created_at,
    )


def exports_of(store: Store, address_id: str) -> list[CaseFileExport]:
    """The case files exported for an address, oldest first."""
    with store.transaction() as session:
        rows = session.scalars(
            select(CaseFileExportRow)
            .where(CaseFileExportRow.address_id == address_id)
            .order_by(CaseFileExportRow.created_at)
        ).all()
        return [_export(r) for r in rows]
