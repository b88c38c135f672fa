"""The referral slip (转诊单) as a PDF: what the HTML print view shows, with a QR code of the referral id.

reportlab draws it with its built-in CID font STSong-Light (Adobe's GB1 character collection, which every PDF reader
ships): no font file to install, and Chinese text stays text — searchable and copyable. WeasyPrint, the first choice
for print views, needs Debian's pango, which is not installed where Yilian runs.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "STSong-Light"


@lru_cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def qr_code(text: str, size: float = 32 * mm) -> Drawing:
    widget = QrCodeWidget(text, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def render_pdf(
    r: Any,
    names: dict[uuid.UUID, str],
    _: Callable[[str], str],
    label: Callable[[str], str],
    local: Callable[[Any], str],
) -> bytes:
    """The slip of referral `r` in the caller's language (`_` translates, `label` names codes, `local` formats times)."""
    font = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15, wordWrap="CJK")
    head = ParagraphStyle("head", parent=body, textColor=colors.HexColor("#333333"))
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=24)

    def p(text: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(str(text or "")), style)

    urgency = _(label(r.urgency)) + (f" · {_(label(r.green_channel))}" if r.green_channel else "")
    receiver = (
        f"{names.get(r.receiver_facility_id, '') if r.receiver_facility_id else ''} {r.receiver_department or ''}"
    )
    reason = r.reason + (f" (ICD-10 {', '.join(r.diagnosis_codes)})" if r.diagnosis_codes else "")
    rows: list[list[Any]] = [
        [p(_("Referral"), head), p(str(r.id)), "", ""],
        [p(_("Patient"), head), p(r.patient_name), p(_("State"), head), p(_(r.state))],
        [p(_("Urgency"), head), p(urgency), p(_("Doctor"), head), p(r.sender_username)],
        [p(_("From"), head), p(names.get(r.sender_facility_id, "")), p(_("To"), head), p(receiver.strip())],
        [p(_("Reason"), head), p(reason), "", ""],
        [p(_("Clinical summary"), head), p(r.summary), "", ""],
    ]
    if r.appointment:
        when = f"{local(r.appointment.get('start'))} {r.appointment.get('department') or ''}"
        rows.append([p(_("Appointment"), head), p(when), "", ""])
    if r.care_plan:
        rows.append([p(_("Care plan"), head), p(r.care_plan.get("plan")), "", ""])
    rows.append([p(_("Sent"), head), p(local(r.created_at)), "", ""])
    spans = [("SPAN", (1, i), (3, i)) for i, row in enumerate(rows) if row[2] == ""]
    table = Table(rows, colWidths=[28 * mm, 62 * mm, 22 * mm, 58 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#444444")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
                *spans,
            ]
        )
    )
    header = Table(
        [[p(_("Two-way referral slip"), title), qr_code(f"urn:yilian:referral:{r.id}")]],
        colWidths=[130 * mm, 40 * mm],
    )
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("ALIGN", (1, 0), (1, 0), "CENTER")]))
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"{_('Referral slip')} {r.id}",
        author="Yilian",
    )
    doc.build([header, Spacer(1, 6 * mm), table])
    return out.getvalue()
