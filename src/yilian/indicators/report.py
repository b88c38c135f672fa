"""The monthly report of a set as a PDF: what the print view shows, one table per county, ready to forward.

reportlab with its built-in CID font STSong-Light (as the referral slip does): no font file to install, and the
Chinese text stays text. WeasyPrint would need Debian's pango, which is not installed where Yilian runs."""

from __future__ import annotations

import io
import re
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

# What the snapshot tables hold, in the words of the Chinese pages (the engine's notes name the tables).
TABLES_ZH = {
    "encounter": "就诊记录",
    "patient": "患者",
    "procedure": "手术操作",
    "diagnostic_report": "诊断报告",
    "referral": "转诊记录",
    "posting": "下沉派驻",
    "claim": "医保结算",
    "staff_income": "人员薪酬",
    "chronic_managed": "慢病管理",
    "death": "死亡登记",
    "outreach_clinic_day": "专家坐诊日",
    "outreach_activity": "专家下沉活动",
    "outreach_checkin": "专家到岗签到",
    "diagnostic_order": "诊断申请单",
    "recognition_decision": "互认决定",
    "teleconsultation": "远程会诊",
    "recognition_qualification": "互认质控",
    "assessment": "评估记录",
}

# The engine writes its notes in English (they go to the JSON contract as they are); the zh pages, the PDF and the
# Excel export say the same in Chinese. A note no pattern knows is shown as it is rather than dropped.
_NOTES_ZH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"no data: (\w+) is not recorded yet"), "无数据：尚无{t1}记录"),
    (re.compile(r"no data: (\w+)\.(\w+) is not recorded"), "无数据：{t1}未填写字段 {2}"),
    (
        re.compile(r"no data for (\w+) in (\S+) \(recorded (\S+) to (\S+)\)"),
        "无数据：{2} 无{t1}（已有记录 {3} 至 {4}）",
    ),
    (re.compile(r"no data for (\w+) since (\S+)"), "数据不全：{2} 之后无{t1}"),
    (re.compile(r"no data: no domain of Yilian records this activity yet"), "无数据：医联尚未记录此项活动"),
    (
        re.compile(r"no data: counted for a county's residents, not per facility"),
        "无数据：按县域居民统计，不按机构统计",
    ),
    (re.compile(r"no data: census population of (.+)"), "无数据：缺少{1}的常住人口"),
    (re.compile(r"no assessment recorded for (\S+)"), "无数据：{1} 尚未录入评估结果"),
    (re.compile(r"no data for this period or the one a year before"), "无数据：本期或上年同期无数据"),
    (re.compile(r"denominator is 0: nothing to measure in this scope and period"), "分母为 0：本范围本期无可统计对象"),
    (re.compile(r"the year before is 0: growth is undefined"), "上年同期为 0：无法计算增长率"),
    (re.compile(r"no data"), "无数据"),
]


STATUS_ZH = {"ok": "正常", "no_data": "无数据", "zero_denominator": "分母为0", "partial": "数据不完整"}


def status_text(status: str, lang: str = "zh") -> str:
    return status if lang == "en" else STATUS_ZH.get(status, status)


def note_text(note: str | None, lang: str = "zh") -> str:
    """An engine note for a reader of `lang` (English notes pass through)."""
    if not note or lang == "en":
        return note or ""
    for pattern, zh in _NOTES_ZH:
        m = pattern.fullmatch(note)
        if m:
            groups = m.groups()
            return zh.format("", *groups, t1=TABLES_ZH.get(groups[0], groups[0]) if groups else "")
    return note


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
                    p(note_text(r.note, lang)),
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
