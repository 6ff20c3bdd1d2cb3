"""The pack's Markdown documents as one PDF, with fpdf2 (pure Python, nothing downloaded).

Renders the small Markdown subset the generators write: ``#`` headings, paragraphs,
``- `` bullets, ``**bold**`` and ``| tables |`` (as wrapped rows). The PDF's
creation date is fixed by the caller, so the same documents give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

__all__ = ["markdown_to_pdf"]

_REPLACE = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u2192": "->",
    "\u2265": ">=",
    "\u2264": "<=",
}
_CODE = re.compile(r"`([^`]*)`")
_ITALIC = re.compile(r"(?<![A-Za-z0-9_])_([^_]+)_(?![A-Za-z0-9_])")


def _latin1(text: str) -> str:
    """The core fonts hold Latin-1 only: map typographic characters, replace the rest."""
    for old, new in _REPLACE.items():
        text = text.replace(old, new)
    return text.encode("latin-1", "replace").decode("latin-1")


def _inline(text: str) -> str:
    return _latin1(_ITALIC.sub(r"\1", _CODE.sub(r"\1", text)))


def _write_lines(pdf: FPDF, lines: Sequence[str]) -> None:
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for line in lines:
        stripped = line.strip()
        if not stripped:
            pdf.ln(2)
            continue
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            size = {1: 15, 2: 12.5, 3: 11}.get(level, 10.5)
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", size)
            pdf.multi_cell(
                width,
                size * 0.5,
                _inline(stripped.lstrip("#").strip()),
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
                wrapmode=WrapMode.CHAR,
            )
            pdf.set_font("Helvetica", "", 9.5)
            continue
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            pdf.set_font("Courier", "", 7.5)
            pdf.multi_cell(
                width,
                3.6,
                _inline(" | ".join(cells)),
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
                wrapmode=WrapMode.CHAR,
            )
            pdf.set_font("Helvetica", "", 9.5)
            continue
        text = stripped
        indent = 0.0
        if text.startswith("- "):
            text, indent = "- " + text[2:], 3.0
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(
            width - indent,
            4.6,
            _inline(text),
            markdown=True,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            wrapmode=WrapMode.CHAR,
        )


def markdown_to_pdf(
    documents: Sequence[tuple[str, str]], *, created: dt.datetime, compress: bool = True
) -> bytes:
    """One PDF of several Markdown documents, each starting on a new page.

    Parameters
    ----------
    documents : sequence of (title, markdown)
        In order.
    created : datetime
        The creation date written into the PDF (fixed, so the bytes are reproducible).
    compress : bool, default True
        Deflate the page streams; False leaves the text readable in the bytes.

    Returns
    -------
    bytes
    """
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_creation_date(created if created.tzinfo else created.replace(tzinfo=dt.UTC))
    pdf.set_title(_latin1(documents[0][0]) if documents else "")
    pdf.set_producer("stratum_ml")
    pdf.set_auto_page_break(auto=True, margin=15)
    for _, markdown in documents:
        pdf.add_page()
        pdf.set_font("Helvetica", "", 9.5)
        _write_lines(pdf, markdown.splitlines())
    return bytes(pdf.output())
