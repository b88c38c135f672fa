"""Pure rules of the patient index: ID cards, names, birth dates, phones, comparison levels."""

from __future__ import annotations

from datetime import date

import pytest

from yilian.errors import Invalid
from yilian.patients import rules
from yilian.patients.address import parse_address
from yilian.patients.names import fold, name_keys, simplify, split_name


def _valid_id(first17: str) -> str:
    return first17 + rules.resident_id_check_char(first17)


def test_it_accepts_a_valid_resident_id_and_reads_birth_date_and_gender():
    card = rules.parse_resident_id("11010519491231002x")
    assert card.number == "11010519491231002X"
    assert card.division_code == "110105"
    assert card.birth_date == date(1949, 12, 31)
    assert card.gender == "female"  # 17th digit 2 is even
    male = rules.parse_resident_id(_valid_id("14100219800307001"))
    assert male.gender == "male"


@pytest.mark.parametrize("last", [c for c in "0123456789X" if c != "X"])
def test_it_refuses_a_resident_id_with_a_wrong_check_digit(last):
    with pytest.raises(Invalid) as exc:
        rules.parse_resident_id("11010519491231002" + last)
    assert "check digit" in exc.value.message
    assert exc.value.field == "identifier"


def test_the_check_digit_catches_every_single_digit_typo():
    number = _valid_id("14102419750612345")
    for i in range(17):
        for d in "0123456789":
            if d == number[i]:
                continue
            typo = number[:i] + d + number[i + 1 :]
            assert rules.valid_resident_id(typo) is None, typo


@pytest.mark.parametrize(
    ("first17", "why"),
    [
        ("14100219800230001", "impossible birth date"),  # 30 February
        ("14100219801301001", "impossible birth date"),  # month 13
        ("14100218000101001", "implausible birth date"),  # born in 1800
        ("99100219800101001", "unknown province"),
    ],
)
def test_it_refuses_a_resident_id_with_an_impossible_date_or_place(first17, why):
    with pytest.raises(Invalid) as exc:
        rules.parse_resident_id(_valid_id(first17))
    assert why in exc.value.message


def test_it_refuses_a_resident_id_born_in_the_future_when_told_the_date():
    number = _valid_id("14100220300101001")
    rules.parse_resident_id(number)  # without a clock, the structure is fine
    with pytest.raises(Invalid):
        rules.parse_resident_id(number, today=date(2026, 11, 23))


@pytest.mark.parametrize("value", ["", "1234", "1410021980030700", "14100219800307001A", "１４１００２"])
def test_it_refuses_resident_ids_of_the_wrong_shape(value):
    with pytest.raises(Invalid):
        rules.parse_resident_id(value)


@pytest.mark.parametrize(
    ("raw", "simplified"),
    [
        ("張偉", "张伟"),
        ("歐陽娜娜", "欧阳娜娜"),
        (" 王 芳 ", "王芳"),
        ("买买提·吐尔逊", "买买提吐尔逊"),
        ("陳麗華", "陈丽华"),
    ],
)
def test_it_normalises_names_to_simplified_characters(raw, simplified):
    assert simplify(raw) == simplified


def test_it_splits_compound_surnames():
    assert split_name("欧阳娜娜") == ("欧阳", "娜娜")
    assert split_name("张伟") == ("张", "伟")
    assert split_name("司马光") == ("司马", "光")


def test_homophone_characters_share_a_pinyin_key():
    assert name_keys("张伟").pinyin == name_keys("张玮").pinyin == "zhang wei"
    assert name_keys("张伟").simplified != name_keys("张玮").simplified


def test_dialect_confusions_share_the_fuzzy_key():
    assert fold("zhang") == "zan" and fold("zan") == "zan"
    assert fold("ning") == fold("lin") == "lin"
    assert fold("shi") == fold("si")
    assert name_keys("陈静").fuzzy == name_keys("岑晋").fuzzy  # chen jing / cen jin
    assert name_keys("刘宁").fuzzy == name_keys("刘林").fuzzy  # n/l and -ng/-n


def test_surnames_are_read_as_surnames():
    assert name_keys("曾伟").pinyin.startswith("zeng ")
    assert name_keys("单丽").pinyin.startswith("shan ")


def test_dropped_and_swapped_characters_are_name_variants():
    full = name_keys("李建华")
    assert name_keys("李华").fuzzy in full.variants
    assert name_keys("李华建").fuzzy in full.variants


def _features(ref: str, **kw) -> rules.Features:
    name = kw.pop("name", "张伟")
    keys = name_keys(name)
    dob = rules.dob_digits(kw.pop("dob", "1980-03-07"))
    return rules.Features(
        ref=ref,
        name=keys.simplified,
        name_pinyin=keys.pinyin,
        name_fuzzy=keys.fuzzy,
        surname_fuzzy=keys.surname_fuzzy,
        name_variants=keys.variants,
        dob=dob,
        dob_swap=rules.dob_swapped(dob),
        birth_year=int(dob[:4]) if dob else None,
        **kw,
    )


@pytest.mark.parametrize(
    ("left", "right", "level"),
    [
        ("张伟明", "張偉明", 5),
        ("张伟明", "张玮明", 4),
        ("陈静", "岑晋", 3),
        ("张伟明", "张明", 2),
        ("张伟明", "张明伟", 2),
        ("张伟明", "张伟强", 1),
        ("张伟明", "李秀英", 0),
    ],
)
def test_name_levels_follow_the_kind_of_error(left, right, level):
    assert rules.level_name(_features("a", name=simplify(left)), _features("b", name=simplify(right))) == level


@pytest.mark.parametrize(
    ("left", "right", "level"),
    [
        ("1980-03-07", "1980-03-07", 4),
        ("1980-03-07", "1980-07-03", 3),
        ("1980-03-07", "1980-03-01", 2),
        ("1980-03-07", "1981-03-07", 2),
        ("1980-03-07", "1980-11-25", 1),
        ("1980-03-07", "2006-09-15", 0),
    ],
)
def test_birth_dates_tolerate_swapped_day_and_month_and_one_digit_typos(left, right, level):
    assert rules.level_dob(_features("a", dob=left), _features("b", dob=right)) == level


def test_it_normalises_phone_numbers():
    assert rules.normalise_phone("+86 138 1234 5678") == "13812345678"
    assert rules.normalise_phone("0086-13812345678") == "13812345678"
    assert rules.normalise_phone("138-1234-5678") == "13812345678"
    assert rules.normalise_phone("0357-2123456") == "03572123456"
    assert rules.normalise_phone("12") is None
    assert rules.is_mobile("13812345678") and not rules.is_mobile("03572123456")


def test_it_parses_addresses_to_county_codes_offline():
    assert parse_address("山西省临汾市洪洞县大槐树镇贾村3号") == ("141024", "141024:大槐")
    assert parse_address("洪洞縣大槐樹鎮賈村")[0] == "141024"  # traditional forms
    assert parse_address("北京市朝阳区望京街道")[0] == "110105"
    assert parse_address("") == (None, None)


def test_two_different_valid_id_numbers_are_never_a_match():
    a = _features("a", resident_id=_valid_id("14100219800307001"), phone="13812345678", gender="male")
    b = _features("b", resident_id=_valid_id("14100219800307003"), phone="13812345678", gender="male")
    score = rules.score_pair(a, b)
    assert score.method == "hard-negative" and score.probability == 0.0
    assert rules.route(score, auto_link=0.5, review=0.1) == rules.Outcome.SEPARATE


def test_the_same_valid_id_number_links_whatever_else_differs():
    number = _valid_id("14100219800307001")
    score = rules.score_pair(_features("a", resident_id=number), _features("b", name="李秀英", resident_id=number))
    assert score.method == "exact-id"
    assert rules.route(score, auto_link=0.97, review=0.8) == rules.Outcome.LINK


def test_thresholds_route_pairs_to_link_review_or_separate():
    assert rules.outcome(0.99, auto_link=0.97, review=0.8) == rules.Outcome.LINK
    assert rules.outcome(0.9, auto_link=0.97, review=0.8) == rules.Outcome.REVIEW
    assert rules.outcome(0.5, auto_link=0.97, review=0.8) == rules.Outcome.SEPARATE


def test_a_pair_of_twins_without_id_cards_never_links_automatically():
    # Same birth date, address and phone; different given names: the score is high but a person decides.
    kw = {"phone": "13812345678", "county": "141024", "town": "141024:大槐", "gender": "male"}
    score = rules.score_pair(_features("a", name="张文博", **kw), _features("b", name="张文涛", **kw))
    assert score.probability > 0.97
    assert rules.route(score, auto_link=0.97, review=0.8) == rules.Outcome.REVIEW


def test_m_and_u_probabilities_are_distributions():
    for comparison in rules.COMPARISONS:
        assert sum(level.m for level in comparison.levels) == pytest.approx(1.0, abs=1e-6), comparison.name
        assert sum(level.u for level in comparison.levels) == pytest.approx(1.0, abs=1e-6), comparison.name
