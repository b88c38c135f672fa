"""Realistic noisy Chinese patient records with ground truth, for linkage quality tests and benchmarks.

People live in the counties of Linfen (临汾, Shanxi; GB/T 2260 1410xx). Each person is registered at one to four
facilities (village clinic, township centre, county hospital, city hospital), and each registration is a noisy copy:
homophone characters (同音字) and dialect homophones, traditional forms, a dropped or swapped character, birth date
with day and month swapped or one digit mistyped, phone mistyped, changed or missing, address written many ways, and
no ID card at most village clinics. Hard negatives are planted on purpose: strangers with the same common name and
birth date, twins with consecutive ID numbers at the same address and phone, a father and son with the same name.

Everything derives from the seed: the same seed gives the same records and the same truth.
"""

from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

from yilian.patients import rules
from yilian.patients.names import fold


def _words(text: str) -> list[str]:
    return text.split()


# Surname shares (percent of the population, 2020 census order of magnitude); the long tail is cut.
SURNAMES: tuple[tuple[str, float], ...] = tuple(
    (s, float(w))
    for s, w in (
        pair.split(":")
        for pair in _words(
            "王:7.1 李:7.0 张:6.6 刘:5.4 陈:4.5 杨:3.1 黄:2.5 赵:2.3 吴:2.1 周:2.0 徐:1.7 孙:1.5 马:1.4 朱:1.3 胡:1.2 "
            "郭:1.1 何:1.1 林:1.0 高:1.0 罗:0.9 郑:0.8 梁:0.8 谢:0.6 宋:0.6 唐:0.6 许:0.5 韩:0.5 冯:0.5 邓:0.5 "
            "曹:0.5 彭:0.4 曾:0.4 肖:0.4 田:0.4 董:0.4 袁:0.4 潘:0.3 于:0.3 蒋:0.3 蔡:0.3 余:0.3 杜:0.3 叶:0.3 "
            "程:0.3 苏:0.3 魏:0.3 吕:0.3 丁:0.3 任:0.3 沈:0.3 姚:0.2 卢:0.2 姜:0.2 崔:0.2 钟:0.2 谭:0.2 陆:0.2 "
            "汪:0.2 范:0.2 金:0.2 石:0.2 廖:0.2 贾:0.2 夏:0.2 韦:0.2 付:0.2 方:0.2 白:0.2 邹:0.2 孟:0.2 熊:0.2 "
            "秦:0.2 邱:0.2 江:0.2 尹:0.2 薛:0.2 闫:0.2 段:0.2 雷:0.2 侯:0.2 龙:0.2 史:0.2 陶:0.1 黎:0.1 贺:0.1 "
            "顾:0.1 毛:0.1 郝:0.1 龚:0.1 邵:0.1 万:0.1 钱:0.1 严:0.1 覃:0.1 武:0.1 戴:0.1 莫:0.1 孔:0.1 "
            "欧阳:0.05 司马:0.01 诸葛:0.01 上官:0.01"
        )
    )
)

# Given-name characters, most popular first (the order drives a Zipf-like skew).
GIVEN_MALE = _words(
    "伟 强 磊 军 洋 勇 杰 涛 明 超 刚 平 辉 鹏 华 飞 鑫 波 斌 宇 浩 凯 健 俊 帆 帅 旭 宁 龙 林 建 国 志 文 成 东 海 "
    "峰 亮 晨 博 新 春 红 光 兵 坤 锋 良 雷 振 永 德 福 安 毅 祥 思 瑞 天 泽 子 轩 睿 晓 家 嘉 豪 铭 一 航 宏 荣 庆"
)
GIVEN_FEMALE = _words(
    "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 婷 颖 慧 梅 琳 雪 倩 洁 莉 萍 红 英 兰 秀 凤 丹 玉 桂 珍 佳 欣 怡 悦 彤 雨 "
    "晶 琴 云 璐 瑶 露 宁 晓 月 春 美 华 菲 萌 茜 爽 莹 婧 妍 诗 涵 梦 可 思 子 一 嘉 馨 文 淑 素 翠 金"
)
# Popular whole two-character given names (秀英, 桂英 …) that make common full names collide in real registers.
POPULAR_TWO = {
    "male": _words("建国 建华 志强 国强 建军 海燕 志明 永强 文华 晓东 俊杰 子轩 浩然 宇轩 明轩 建平 志刚 春生"),
    "female": _words("秀英 桂英 秀兰 玉兰 桂兰 淑珍 丽娟 晓燕 海燕 丽华 春梅 玉梅 雨涵 欣怡 子涵 梓涵 紫涵 思涵"),
}
# Extra characters used only as wrong picks from a pinyin keyboard (同音字 candidates).
CONFUSABLE = _words(
    "卫 位 维 玮 薇 炜 蔚 为 威 微 巍 唯 纬 力 利 丽 立 莉 历 理 礼 李 励 俐 莉 磊 垒 蕾 镭 累 军 君 均 钧 俊 峻 骏 竣 "
    "浚 涛 韬 滔 焘 陶 明 鸣 铭 名 茗 敏 民 闽 珉 静 婧 晶 靖 菁 京 精 经 景 境 井 颖 影 莹 滢 英 莺 鹰 应 迎 盈 娟 "
    "鹃 涓 隽 艳 燕 彦 妍 岩 言 颜 研 雁 宴 焰 芳 方 舫 昉 放 坊 华 桦 骅 化 花 画 强 墙 蔷 羌 超 潮 朝 晁 巢 辉 晖 "
    "徽 慧 惠 蕙 会 汇 卉 平 萍 评 苹 屏 凭 兵 冰 斌 彬 滨 宾 杰 洁 捷 婕 劫 节 结 勇 永 咏 泳 涌 雍 庸 宇 雨 羽 玉 "
    "语 予 禹 瑜 昱 钰 浩 昊 皓 灏 颢 好 鹏 朋 彭 蓬 澎 飞 非 菲 霏 妃 斐 龙 隆 珑 泷 笼 林 琳 霖 麟 淋 临 玲 琳 凌 "
    "灵 伶 铃 龄 羚 宁 凝 柠 咛 丹 单 郸 殚 凤 峰 锋 丰 枫 风 封 蜂 文 雯 闻 纹 汶 东 冬 栋 董 冻 春 纯 淳 椿 思 斯 "
    "丝 司 诗 师 施 湿 狮 子 紫 梓 姿 滋 志 智 治 至 稚 致 秀 修 袖 绣 秀 兰 岚 蓝 澜 篮 珍 真 贞 祯 桢 瑞 锐 睿 蕊 "
    "芮 轩 宣 萱 暄 喧 涵 寒 含 函 韩 晗 国 果 郭 新 欣 馨 心 鑫 昕 芯 建 健 剑 坚 鉴 荐 生 声 胜 升 晟 笙 长 常 昌 "
    "畅 嫦 山 珊 杉 衫 姗 善 扇 章 彰 樟 漳 璋 张 正 争 征 铮 筝 政 震 振 镇 阵 枕 诊 南 楠 男 难 能 农 浓 侬 弄"
)

# Linfen counties (GB/T 2260) and the way people write them.
COUNTIES: tuple[tuple[str, str], ...] = (
    ("141002", "尧都区"),
    ("141021", "曲沃县"),
    ("141022", "翼城县"),
    ("141023", "襄汾县"),
    ("141024", "洪洞县"),
    ("141025", "古县"),
    ("141026", "安泽县"),
    ("141027", "浮山县"),
    ("141028", "吉县"),
    ("141029", "乡宁县"),
    ("141030", "大宁县"),
    ("141031", "隰县"),
    ("141032", "永和县"),
    ("141033", "蒲县"),
    ("141034", "汾西县"),
    ("141081", "侯马市"),
    ("141082", "霍州市"),
)
COUNTY_NAMES = dict(COUNTIES)
# Population weights: the city district and the big counties hold most people.
COUNTY_WEIGHTS = (9, 2, 3, 4, 7, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 2)
_PLACE_CHARS = "大小东西南北新老龙凤安平太和兴福贾王李张赵刘杨白石桥河山沟岭坡庄堡营湾泉槐柳杏桃城关底上下前后高"
VILLAGE_SUFFIX = ("村", "庄", "村", "村", "堡", "营")


@dataclass
class Person:
    key: str
    surname: str
    given: str
    gender: str
    born: date
    county: str
    town: str
    village: str
    house: int
    phone: str | None
    resident_id: str
    kind: str = "person"  # person | doppelganger | twin | son

    @property
    def name(self) -> str:
        return self.surname + self.given


@dataclass
class Generated:
    patients: list[dict[str, Any]]
    truth: dict[str, str]  # "Patient/<id>" → person key
    hard_negatives: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, person a, person b)

    def true_pairs(self) -> set[tuple[str, str]]:
        by_person: dict[str, list[str]] = {}
        for ref, person in self.truth.items():
            by_person.setdefault(person, []).append(ref)
        pairs: set[tuple[str, str]] = set()
        for refs in by_person.values():
            refs.sort()
            for i in range(len(refs)):
                for j in range(i + 1, len(refs)):
                    pairs.add((refs[i], refs[j]))
        return pairs


class _Namer:
    """Draws names with the real skew and knows which characters a pinyin keyboard confuses."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.surnames = [s for s, _ in SURNAMES]
        self.surname_cum = list(accumulate(w for _, w in SURNAMES))
        self.given = {"male": GIVEN_MALE, "female": GIVEN_FEMALE}
        self.given_cum = {
            g: list(accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(c)))) for g, c in self.given.items()
        }
        pool = sorted(set(CONFUSABLE) | set(GIVEN_MALE) | set(GIVEN_FEMALE))
        self.by_pinyin: dict[str, list[str]] = {}
        self.by_fold: dict[str, list[str]] = {}
        for ch in pool:
            py = lazy_pinyin(ch, style=Style.NORMAL)[0]
            self.by_pinyin.setdefault(py, []).append(ch)
            self.by_fold.setdefault(fold(py), []).append(ch)

    def surname(self) -> str:
        return self.rng.choices(self.surnames, cum_weights=self.surname_cum)[0]

    def given_name(self, gender: str) -> str:
        r = self.rng.random()
        if r < 0.12:
            return self.rng.choice(POPULAR_TWO[gender])
        chars = self.given[gender]
        first = self.rng.choices(chars, cum_weights=self.given_cum[gender])[0]
        if r < 0.45:
            return first
        second = self.rng.choices(chars, cum_weights=self.given_cum[gender])[0]
        return first + second if second != first else first

    def homophone(self, ch: str, *, dialect: bool = False) -> str | None:
        py = lazy_pinyin(ch, style=Style.NORMAL)[0]
        pool = self.by_fold.get(fold(py), []) if dialect else self.by_pinyin.get(py, [])
        if dialect:
            pool = [c for c in pool if lazy_pinyin(c, style=Style.NORMAL)[0] != py]
        candidates = [c for c in pool if c != ch]
        return self.rng.choice(candidates) if candidates else None


def _check_char(first17: str) -> str:
    return rules.resident_id_check_char(first17)


class _Registry:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used_ids: set[str] = set()
        self.used_phones: set[str] = set()
        self.towns: dict[str, list[str]] = {}
        self.villages: dict[tuple[str, str], list[str]] = {}
        for code, _ in COUNTIES:
            towns: list[str] = []
            while len(towns) < 10:
                t = "".join(rng.sample(_PLACE_CHARS, 2)) + rng.choice(("镇", "镇", "乡"))
                if t[:2] not in {x[:2] for x in towns}:
                    towns.append(t)
            self.towns[code] = towns
            for t in towns:
                self.villages[(code, t)] = [
                    "".join(rng.sample(_PLACE_CHARS, 2)) + rng.choice(VILLAGE_SUFFIX) for _ in range(12)
                ]

    def resident_id(self, county: str, born: date, gender: str, sequence: int | None = None) -> str:
        while True:
            seq = sequence if sequence is not None else self.rng.randrange(0, 999)
            if (seq % 2 == 1) != (gender == "male"):
                seq = (seq + 1) % 1000
            first17 = f"{county}{born:%Y%m%d}{seq:03d}"
            number = first17 + _check_char(first17)
            if number not in self.used_ids or sequence is not None:
                self.used_ids.add(number)
                return number
            sequence = None

    def phone(self) -> str:
        while True:
            number = self.rng.choice(("13", "15", "18", "17", "19")) + f"{self.rng.randrange(0, 10**9):09d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number


@dataclass
class _Facility:
    code: str
    name: str
    kind: str  # village | township | county | city


def _facilities_for(person: Person) -> dict[str, _Facility]:
    county_name = COUNTY_NAMES[person.county]
    # crc32, not hash(): facility codes must be the same in every process for the same seed.
    town_index = zlib.crc32(person.town.encode()) % 100
    village_index = zlib.crc32(person.village.encode()) % 100
    return {
        "village": _Facility(
            f"{person.county}V{town_index:02d}{village_index:02d}", f"{person.village}卫生室", "village"
        ),
        "township": _Facility(f"{person.county}T{town_index:02d}", f"{person.town}卫生院", "township"),
        "county": _Facility(f"{person.county}H01", f"{county_name}人民医院", "county"),
        "city": _Facility("141000H01", "临汾市中心医院", "city"),
    }


class Generator:
    def __init__(self, seed: int = 1):
        self.rng = random.Random(seed)
        self.namer = _Namer(self.rng)
        self.registry = _Registry(self.rng)
        self._s2t = OpenCC("s2t")
        self._s2t_chars: dict[str, str] = {}
        self.mrn: dict[str, int] = {}
        self.seq = 0

    def s2t(self, text: str) -> str:
        """Traditional forms, character by character (cached): what an old record or a Hong Kong form shows."""
        out = []
        for ch in text:
            if ch not in self._s2t_chars:
                self._s2t_chars[ch] = self._s2t.convert(ch)
            out.append(self._s2t_chars[ch])
        return "".join(out)

    # -- people -------------------------------------------------------------------------------------------------
    def _birth_date(self) -> date:
        # Ages skew old in county registers (chronic disease follow-up), 0–95 years.
        age_days = int(min(95, max(0, self.rng.gauss(48, 20))) * 365.25) + self.rng.randrange(0, 365)
        return date(2026, 6, 30) - timedelta(days=age_days)

    def _place(self) -> tuple[str, str, str, int]:
        county = self.rng.choices([c for c, _ in COUNTIES], weights=COUNTY_WEIGHTS)[0]
        town = self.rng.choice(self.registry.towns[county])
        village = self.rng.choice(self.registry.villages[(county, town)])
        return county, town, village, self.rng.randrange(1, 200)

    def _key(self) -> str:
        self.seq += 1
        return f"P{self.seq:07d}"

    def person(self) -> Person:
        gender = self.rng.choice(("male", "female"))
        born = self._birth_date()
        county, town, village, house = self._place()
        return Person(
            key=self._key(),
            surname=self.namer.surname(),
            given=self.namer.given_name(gender),
            gender=gender,
            born=born,
            county=county,
            town=town,
            village=village,
            house=house,
            phone=self.registry.phone() if self.rng.random() < 0.9 else None,
            resident_id=self.registry.resident_id(county, born, gender),
        )

    def common_name(self, p: Person) -> None:
        """Give p one of the most common names (the names that strangers share)."""
        p.surname = self.rng.choice(self.namer.surnames[:8])
        p.given = self.rng.choice((*self.namer.given[p.gender][:6], *POPULAR_TWO[p.gender][:4]))

    def doppelganger(self, p: Person) -> Person:
        """A stranger with the same name, sex and birth date, living elsewhere in the city."""
        county, town, village, house = self._place()
        while county == p.county:
            county, town, village, house = self._place()
        return Person(
            self._key(), p.surname, p.given, p.gender, p.born, county, town, village, house,
            self.registry.phone(), self.registry.resident_id(county, p.born, p.gender), "doppelganger",
        )  # fmt: skip

    def twin(self, p: Person) -> Person:
        """Born the same day, same home and parents' phone, consecutive ID numbers, a sibling's given name."""
        gender = p.gender if self.rng.random() < 0.6 else ("female" if p.gender == "male" else "male")
        given = p.given
        for _ in range(20):
            candidate = (
                (p.given[:1] + self.namer.given_name(gender)[:1])
                if len(p.given) == 2
                else self.namer.given_name(gender)[:1]
            )
            if fold(lazy_pinyin(candidate, style=Style.NORMAL)[-1]) != fold(
                lazy_pinyin(p.given, style=Style.NORMAL)[-1]
            ):
                given = candidate
                break
        seq = int(p.resident_id[14:17]) + (2 if gender == p.gender else 1)
        return Person(
            self._key(), p.surname, given, gender, p.born, p.county, p.town, p.village, p.house, p.phone,
            self.registry.resident_id(p.county, p.born, gender, sequence=seq % 1000), "twin",
        )  # fmt: skip

    def son(self, p: Person) -> Person:
        """Named after his father (it happens), born 22–38 years later, same household."""
        born = p.born + timedelta(days=self.rng.randrange(22 * 365, 38 * 365))
        if born > date(2026, 6, 1):
            born = date(2026, 6, 1) - timedelta(days=self.rng.randrange(30, 3000))
        return Person(
            self._key(), p.surname, p.given, "male", born, p.county, p.town, p.village, p.house,
            p.phone if self.rng.random() < 0.5 else self.registry.phone(),
            self.registry.resident_id(p.county, born, "male"), "son",
        )  # fmt: skip

    # -- records ------------------------------------------------------------------------------------------------
    def _noisy_name(self, p: Person) -> str:
        given = p.given
        r = self.rng.random()
        if r < 0.06 and given:
            i = self.rng.randrange(len(given))
            sub = self.namer.homophone(given[i])
            if sub:
                given = given[:i] + sub + given[i + 1 :]
        elif r < 0.08 and given:
            i = self.rng.randrange(len(given))
            sub = self.namer.homophone(given[i], dialect=True)
            if sub:
                given = given[:i] + sub + given[i + 1 :]
        elif r < 0.095 and len(given) == 2:
            given = given[self.rng.randrange(2)]
        elif r < 0.10 and len(given) == 2:
            given = given[::-1]
        elif r < 0.11 and given:
            i = self.rng.randrange(len(given))
            given = given[:i] + self.rng.choice(CONFUSABLE) + given[i + 1 :]
        name = p.surname + given
        if self.rng.random() < 0.04:
            name = self.s2t(name)
        return name

    def _noisy_dob(self, p: Person) -> str:
        born = p.born
        r = self.rng.random()
        text = born.isoformat()
        if r < 0.02 and born.day <= 12 and born.day != born.month:
            text = f"{born.year:04d}-{born.day:02d}-{born.month:02d}"
        elif r < 0.05:
            for _ in range(10):
                digits = list(born.strftime("%Y%m%d"))
                i = self.rng.choice((2, 3, 5, 6, 7))
                digits[i] = str(self.rng.randrange(10))
                candidate = "".join(digits)
                if rules.dob_digits(candidate) and candidate != born.strftime("%Y%m%d"):
                    text = f"{candidate[:4]}-{candidate[4:6]}-{candidate[6:]}"
                    break
        return text

    def _noisy_phone(self, p: Person) -> str | None:
        if not p.phone or self.rng.random() < 0.12:
            return None
        phone = p.phone
        r = self.rng.random()
        if r < 0.04:
            i = self.rng.randrange(3, 11)
            phone = phone[:i] + str((int(phone[i]) + self.rng.randrange(1, 10)) % 10) + phone[i + 1 :]
        elif r < 0.08:
            phone = self.registry.phone()  # a new number since the last visit
        fmt = self.rng.random()
        if fmt < 0.15:
            return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
        if fmt < 0.25:
            return f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
        return phone

    def _noisy_address(self, p: Person) -> str:
        county_name = COUNTY_NAMES[p.county]
        town, village = p.town, p.village
        if self.rng.random() < 0.02:  # moved within the county
            town = self.rng.choice(self.registry.towns[p.county])
            village = self.rng.choice(self.registry.villages[(p.county, town)])
        r = self.rng.random()
        if r < 0.35:
            text = f"山西省临汾市{county_name}{town}{village}{p.house}号"
        elif r < 0.6:
            text = f"临汾市{county_name}{town}{village}"
        elif r < 0.8:
            text = f"{county_name}{town[:2]}{village}{p.house}号"
        elif r < 0.9:
            text = f"山西临汾{county_name}{town}{village}"
        elif r < 0.95:
            text = f"{town}{village}"  # the village clinic knows where it is; no county written
        else:
            text = self.s2t(f"山西省临汾市{county_name}{town}{village}")
        return text

    def record(self, p: Person, facility: _Facility) -> dict[str, Any]:
        self.mrn[facility.code] = self.mrn.get(facility.code, 0) + 1
        identifiers: list[dict[str, Any]] = []
        missing_id = {"village": 0.7, "township": 0.3, "county": 0.05, "city": 0.03}[facility.kind]
        if self.rng.random() >= missing_id:
            number = p.resident_id
            if self.rng.random() < 0.01:  # a mistyped digit: the check digit will catch it
                i = self.rng.randrange(0, 17)
                number = number[:i] + str((int(number[i]) + 1) % 10) + number[i + 1 :]
            identifiers.append(
                {
                    "use": "official",
                    "type": {"coding": [{"system": rules.V2_0203, "code": rules.RESIDENT_ID_TYPE}]},
                    "system": rules.RESIDENT_ID_SYSTEM,
                    "value": number,
                }
            )
        identifiers.append(
            {
                "use": "usual",
                "type": {"coding": [{"system": rules.V2_0203, "code": "MR"}]},
                "system": f"urn:yilian:facility:{facility.code}:mrn",
                "value": f"{facility.code[-3:]}{self.mrn[facility.code]:07d}",
            }
        )
        name = self._noisy_name(p)
        gender = p.gender if self.rng.random() > 0.003 else ("female" if p.gender == "male" else "male")
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "identifier": identifiers,
            "active": True,
            "name": [
                {"use": "official", "text": name, "family": name[: len(p.surname)], "given": [name[len(p.surname) :]]}
            ],
            "gender": gender,
            "birthDate": self._noisy_dob(p),
            "address": [{"use": "home", "text": self._noisy_address(p)}],
            "managingOrganization": {
                "identifier": {"system": "urn:yilian:facility", "value": facility.code},
                "display": facility.name,
            },
        }
        phone = self._noisy_phone(p)
        if phone:
            patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
        return patient

    def registrations(self, p: Person) -> list[dict[str, Any]]:
        """Where this person was seen: one facility for most people, two to four for a third of them."""
        facilities = _facilities_for(p)
        r = self.rng.random()
        count = 1 if r < 0.62 else 2 if r < 0.88 else 3 if r < 0.97 else 4
        first = self.rng.choices(("village", "township", "county", "city"), weights=(4, 3, 3, 1))[0]
        kinds = [first]
        others = [k for k in ("village", "township", "county", "city") if k != first]
        self.rng.shuffle(others)
        kinds += others[: count - 1]
        return [self.record(p, facilities[k]) for k in kinds]


def generate(records: int = 1_000, seed: int = 1, *, hard_negative_rate: float = 0.03) -> Generated:
    """About `records` Patient resources with the truth and the planted hard negatives."""
    gen = Generator(seed)
    patients: list[dict[str, Any]] = []
    truth: dict[str, str] = {}
    negatives: list[tuple[str, str, str]] = []

    def add(p: Person) -> None:
        for patient in gen.registrations(p):
            patients.append(patient)
            truth[f"Patient/{patient['id']}"] = p.key

    while len(patients) < records:
        p = gen.person()
        kind = gen.rng.choice(("doppelganger", "twin", "son")) if gen.rng.random() < hard_negative_rate else None
        if kind == "son" and (p.gender != "male" or p.born.year > 1985):
            kind = "doppelganger"
        if kind == "doppelganger":
            gen.common_name(p)
        add(p)
        if kind:
            other = {"doppelganger": gen.doppelganger, "twin": gen.twin, "son": gen.son}[kind](p)
            add(other)
            negatives.append((kind, p.key, other.key))
    return Generated(patients=patients, truth=truth, hard_negatives=negatives)
