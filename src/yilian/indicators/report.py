"""The monthly report of a set as a PDF: what the print view shows, one table per county, ready to forward.

reportlab with its built-in CID font STSong-Light (as the referral slip does): no font file to install, and the
Chinese text stays text. WeasyPrint would need Debian's pango, which is not installed where Yilian runs."""

from __future__ import annotations

import io
from functools import lru_cache
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from yilian.indicators import definitions, rules
from yilian.indicators.engine import Result
from yilian.indicators.service import Computed

FONT = "STSong-Light"


@lru_cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _num(v: float | None, no_data: str) -> str:
    if v is None:
        return no_data
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}".rstrip("0").rstrip(".")


def render_pdf(computed: Computed, lang: str = "zh") -> bytes:
    zh = lang != "en"
    font = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=16, leading=22)
    head = ParagraphStyle("head", parent=body, fontSize=12, leading=18, spaceBefore=6)

    def p(text: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(str(text if text is not None else "")), style)

    no_data = "无数据" if zh else "no data"
    yes, no = ("达标", "未达标") if zh else ("met", "not met")
    cols = (
        ["指标", "数值", "单位", "目标值", "是否达标", "分子", "分母", "说明"]
        if zh
        else ["Indicator", "Value", "Unit", "Target", "Target met", "Numerator", "Denominator", "Note"]
    )
    story: list[object] = [
        p(computed.set.name.pick(lang), title),
        p(
            ("统计期：" if zh else "Period: ")
            + computed.period.label
            + ("　数据快照：" if zh else " · Snapshot: ")
            + computed.snapshot.id
        ),
        p(("来源：" if zh else "Source: ") + computed.set.source_text),
        Spacer(1, 4 * mm),
    ]
    by_scope: dict[str, list[Result]] = {}
    for r in computed.results:
        by_scope.setdefault(r.scope_name, []).append(r)
    for i, (scope_name, results) in enumerate(by_scope.items()):
        if i:
            story.append(PageBreak())
        story.append(p(scope_name, head))
        rows = [[p(c) for c in cols]]
        for r in results:
            ind = definitions.get_indicator(r.id)
            unit = rules.UNITS[r.unit][1 if zh else 2]
            met = r.meets_target
            rows.append(
                [
                    p(ind.name.pick(lang)),
                    p(_num(r.value, no_data)),
                    p(unit),
                    p(_num(r.target, "—")),
                    p("—" if met is None else (yes if met else no)),
                    p(_num(r.numerator, "—")),
                    p(_num(r.denominator, "—")),
                    p(r.note or ""),
                ]
            )
        table = Table(
            rows, colWidths=[80 * mm, 20 * mm, 22 * mm, 18 * mm, 18 * mm, 20 * mm, 20 * mm, 72 * mm], repeatRows=1
        )
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1F4E79")),
                    ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    buf = io.BytesIO()
    SimpleDocTemplate(
        buf,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=computed.set.name.pick(lang) + " " + computed.period.label,
    ).build(story)
    return buf.getvalue()
