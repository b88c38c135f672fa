"""Pure decisions of the master patient index: resident ID cards, birth dates, phones, comparison vectors, scores.

No database, no clock, no files. The batch matcher (linkage.py, Splink on DuckDB) evaluates the same comparison
levels in SQL; `COMPARISONS` below is the single table of levels and m/u probabilities both use, so a pair gets the
same match probability whether it arrived in a bulk import or as one registration at a village clinic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz.distance import Levenshtein

from yilian.errors import Invalid

# ---------------------------------------------------------------------------------------------------------------
# Resident identity card (居民身份证), GB 11643-1999: 6-digit division code, 8-digit birth date, 3-digit sequence
# (odd = male), check character by ISO 7064 MOD 11-2.
# ---------------------------------------------------------------------------------------------------------------

RESIDENT_ID_SYSTEM = "urn:yilian:sid:cn-resident-id"
RESIDENT_ID_TYPE = "NNCHN"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _words(text: str) -> list[str]:
    return text.split()


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# GB/T 2260 province-level codes (first two digits); 71 Taiwan, 81 Hong Kong, 82 Macao, 83 residence permits.
PROVINCE_CODES = frozenset(
    _words("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83")
)
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")


@dataclass(frozen=True)
class ResidentId:
    number: str
    division_code: str
    birth_date: date
    sequence: str
    gender: str  # FHIR administrative gender: male | female


def resident_id_check_char(first17: str) -> str:
    """The 18th character for the first 17 digits (ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def parse_resident_id(value: str, *, today: date | None = None, field: str = "identifier") -> ResidentId:
    """Validate an 18-character resident ID number and read what it carries; raise Invalid saying what is wrong."""
    number = (value or "").strip().upper()
    if len(number) != 18:
        raise Invalid(f"A resident ID card number has 18 characters; this one has {len(number)}.", field=field)
    if not _ID_SHAPE.match(number):
        raise Invalid("A resident ID card number is 17 digits followed by a digit or X.", field=field)
    if number[:2] not in PROVINCE_CODES:
        raise Invalid(f"Resident ID card number starts with an unknown province code {number[:2]}.", field=field)
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise Invalid(
            f"Resident ID card number carries an impossible birth date {number[6:14]}.", field=field
        ) from None
    if born.year < 1890 or (today is not None and born > today):
        raise Invalid(f"Resident ID card number carries an implausible birth date {born.isoformat()}.", field=field)
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise Invalid("Resident ID card number fails its check digit (GB 11643): a character is mistyped.", field=field)
    sequence = number[14:17]
    return ResidentId(
        number=number,
        division_code=number[:6],
        birth_date=born,
        sequence=sequence,
        gender="male" if int(sequence[-1]) % 2 == 1 else "female",
    )


def valid_resident_id(value: str | None) -> str | None:
    """The normalised number if valid, else None (an invalid number is no evidence at all)."""
    if not value:
        return None
    try:
        return parse_resident_id(value).number
    except Invalid:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Birth dates and phones
# ---------------------------------------------------------------------------------------------------------------


def dob_digits(value: str | None) -> str | None:
    """'1980-03-07' → '19800307'; anything that is not a full valid date → None."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if len(digits) != 8:
        return None
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return digits


def dob_swapped(digits: str | None) -> str | None:
    """The same date with day and month swapped, when that is a different valid date (07-03 ↔ 03-07)."""
    if not digits:
        return None
    month, day = digits[4:6], digits[6:]
    if month == day:
        return None
    return dob_digits(digits[:4] + day + month)


def hamming(a: str, b: str) -> int:
    if len(a) != len(b):
        return max(len(a), len(b))
    return sum(x != y for x, y in zip(a, b, strict=True))


_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalise_phone(value: str | None) -> str | None:
    """Mainland mobile numbers to their 11 digits (dropping +86/0086/86 and punctuation); landlines keep their digits.

    Fewer than 7 digits is not a phone number.
    """
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and _MOBILE.match(digits[len(prefix) :]):
            digits = digits[len(prefix) :]
            break
    if len(digits) < 7:
        return None
    return digits


def is_mobile(phone: str | None) -> bool:
    return bool(phone and _MOBILE.match(phone))


# ---------------------------------------------------------------------------------------------------------------
# Features and comparison levels (Fellegi–Sunter)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """What the matcher compares, precomputed once per record. Missing values are None/empty."""

    ref: str  # "Patient/<id>"
    resident_id: str | None = None  # only if valid
    name: str = ""  # simplified characters
    name_pinyin: str = ""
    name_fuzzy: str = ""
    surname_fuzzy: str = ""
    name_variants: tuple[str, ...] = ()
    dob: str | None = None  # YYYYMMDD
    dob_swap: str | None = None
    birth_year: int | None = None
    gender: str | None = None  # male | female
    phone: str | None = None
    county: str | None = None  # 6-digit GB/T 2260
    town: str | None = None  # county code + first characters of the address below the county
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def city(self) -> str | None:
        return self.county[:4] if self.county else None


NULL = -1


def level_resident_id(a: Features, b: Features) -> int:
    if not a.resident_id or not b.resident_id:
        return NULL
    return 1 if a.resident_id == b.resident_id else 0


def level_name(a: Features, b: Features) -> int:
    if not a.name or not b.name:
        return NULL
    if a.name == b.name:
        return 5
    if a.name_pinyin == b.name_pinyin:
        return 4
    if a.name_fuzzy == b.name_fuzzy:
        return 3
    if b.name_fuzzy in a.name_variants or a.name_fuzzy in b.name_variants:
        return 2
    if a.surname_fuzzy == b.surname_fuzzy and _levenshtein(a.name_fuzzy, b.name_fuzzy) <= 2:
        return 1
    return 0


def level_dob(a: Features, b: Features) -> int:
    if not a.dob or not b.dob:
        return NULL
    if a.dob == b.dob:
        return 4
    if a.dob == b.dob_swap:
        return 3
    if hamming(a.dob, b.dob) == 1:
        return 2
    if a.birth_year == b.birth_year:
        return 1
    return 0


def level_gender(a: Features, b: Features) -> int:
    if not a.gender or not b.gender or a.gender not in ("male", "female") or b.gender not in ("male", "female"):
        return NULL
    return 1 if a.gender == b.gender else 0


def level_phone(a: Features, b: Features) -> int:
    if not a.phone or not b.phone:
        return NULL
    if a.phone == b.phone:
        return 2
    if hamming(a.phone, b.phone) == 1:
        return 1
    return 0


def level_address(a: Features, b: Features) -> int:
    if not a.county or not b.county:
        return NULL
    if a.county == b.county:
        return 3 if a.town and a.town == b.town else 2
    if a.county[:4] == b.county[:4]:
        return 1
    return 0


def _levenshtein(a: str, b: str) -> int:
    # Unit-cost edit distance, the same as DuckDB's levenshtein() used by the batch matcher.
    return int(Levenshtein.distance(a, b))


@dataclass(frozen=True)
class Level:
    value: int
    label: str
    m: float  # P(level | same person)
    u: float  # P(level | different people)
    tf: bool = False  # term-frequency adjusted (common names agree by chance more often)


@dataclass(frozen=True)
class Comparison:
    name: str
    levels: tuple[Level, ...]  # highest first; the null level is implicit (weight 1)


# m and u are fixed, not trained: see docs/mpi.md ("Why fixed m/u"). Reasoning per level in short:
# - m: how often the SAME person's two records land at this level, from the error rates seen at registration
#   desks (≈ 10% homophone/traditional name variants, a few % dropped characters, ≈ 5% birth-date typos or swaps,
#   phone changed or mistyped in ≈ 10% of pairs).
# - u: how often two DIFFERENT people's records land there by chance: 1/20,000 for a full birth date (ages cluster in 20–80),
#   1 in 10 million for an ID number, share of pairs in the same county for a regional index (≈ 0.1), and 1 in 1,000
#   for a phone number because children and the elderly are often registered with a relative's phone.
# Fellegi–Sunter assumes fields are independent; families break that (twins share birth date, address and phone;
# a father and son share name, address and phone), so `route` adds two vetoes on top of the score.
# Hard negative: two different valid ID card numbers get m = 1e-9, i.e. no other evidence can ever outweigh them
# (and linkage.py also refuses such pairs outright).
COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "resident_id",
        (
            Level(1, "same valid ID card number", m=1.0 - 1e-9, u=1e-7),
            Level(0, "different valid ID card numbers", m=1e-9, u=1.0 - 1e-7),
        ),
    ),
    Comparison(
        "name",
        (
            Level(5, "same characters", m=0.84, u=1e-3, tf=True),
            Level(4, "homophone characters (same pinyin)", m=0.07, u=3e-4),
            Level(3, "dialect homophone (zh/z, n/l, -ng/-n)", m=0.03, u=2e-4),
            Level(2, "dropped or swapped character", m=0.03, u=3e-4),
            Level(1, "same surname, similar given name", m=0.02, u=6e-3),
            Level(0, "different", m=0.01, u=0.9922),
        ),
    ),
    Comparison(
        "dob",
        (
            Level(4, "same birth date", m=0.90, u=5e-5),
            Level(3, "day and month swapped", m=0.03, u=2e-5),
            Level(2, "one digit different", m=0.045, u=1.5e-3),
            Level(1, "same birth year", m=0.022, u=0.012),
            Level(0, "different", m=0.003, u=0.98643),
        ),
    ),
    Comparison(
        "gender",
        (
            Level(1, "same", m=0.99, u=0.5),
            Level(0, "different", m=0.01, u=0.5),
        ),
    ),
    Comparison(
        "phone",
        (
            Level(2, "same number", m=0.85, u=1e-3),
            Level(1, "one digit different", m=0.06, u=1e-5),
            Level(0, "different", m=0.09, u=0.99899),
        ),
    ),
    Comparison(
        "address",
        (
            Level(3, "same county and township", m=0.75, u=2e-3),
            Level(2, "same county", m=0.17, u=0.1),
            Level(1, "same city", m=0.05, u=0.3),
            Level(0, "different city", m=0.03, u=0.598),
        ),
    ),
)

LEVEL_FUNCTIONS = {
    "resident_id": level_resident_id,
    "name": level_name,
    "dob": level_dob,
    "gender": level_gender,
    "phone": level_phone,
    "address": level_address,
}

# Prior: one pair in 100,000 random pairs of records is the same person. A county index of ~10^5 records in
# which a quarter of the people were registered at two or three facilities has about that many true pairs.
PRIOR_MATCH = 1e-5

# Floor on the name term frequency: agreement on even a unique name never counts for more than 1 in 10,000
# (a small index cannot tell a rare name from an unseen common one, and names recur across a country).
TF_MINIMUM = 1e-4


def comparison_vector(a: Features, b: Features) -> dict[str, int]:
    """The level of agreement per field (−1 when either side is missing)."""
    return {name: fn(a, b) for name, fn in LEVEL_FUNCTIONS.items()}


def _level(comparison: Comparison, value: int) -> Level | None:
    for level in comparison.levels:
        if level.value == value:
            return level
    return None


def match_weight(vector: dict[str, int], *, name_tf: float | None = None) -> float:
    """log2 of the posterior odds, exactly as Splink computes it (prior + Σ log2 m/u, TF on exact names)."""
    weight = math.log2(PRIOR_MATCH / (1 - PRIOR_MATCH))
    for comparison in COMPARISONS:
        level = _level(comparison, vector[comparison.name])
        if level is None:
            continue
        weight += math.log2(level.m / level.u)
        if level.tf and name_tf is not None:
            weight += math.log2(level.u / max(name_tf, TF_MINIMUM))
    return weight


def probability(weight: float) -> float:
    odds = 2.0**weight
    return odds / (1 + odds)


def hard_negative(a: Features, b: Features) -> bool:
    """Two different valid ID card numbers are two different people (twins, father and son), whatever else agrees."""
    return bool(a.resident_id and b.resident_id and a.resident_id != b.resident_id)


def exact_link(a: Features, b: Features) -> bool:
    return bool(a.resident_id and a.resident_id == b.resident_id)


@dataclass(frozen=True)
class PairScore:
    left: str
    right: str
    probability: float
    weight: float
    vector: dict[str, int]
    method: str  # exact-id | probabilistic | hard-negative


def score_pair(a: Features, b: Features, *, name_tf: float | None = None) -> PairScore:
    vector = comparison_vector(a, b)
    weight = match_weight(vector, name_tf=name_tf)
    if hard_negative(a, b):
        return PairScore(a.ref, b.ref, 0.0, weight, vector, "hard-negative")
    if exact_link(a, b):
        return PairScore(a.ref, b.ref, 1.0, weight, vector, "exact-id")
    return PairScore(a.ref, b.ref, probability(weight), weight, vector, "probabilistic")


class Outcome:
    LINK = "link"
    REVIEW = "review"
    SEPARATE = "separate"


def outcome(probability_: float, *, auto_link: float, review: float) -> str:
    """Route a probability: auto-link at or above `auto_link`, review between the thresholds, separate below."""
    if probability_ >= auto_link:
        return Outcome.LINK
    if probability_ >= review:
        return Outcome.REVIEW
    return Outcome.SEPARATE


def auto_link_allowed(vector: dict[str, int]) -> bool:
    """A machine may link two records only when the name and the birth date agree, allowing for the usual typos.

    Everything else (phone, address) can add or remove confidence but is shared inside families, so a pair of twins
    (different given names) or a father and son (different birth years) never links without a person deciding.
    """
    if vector["name"] != NULL and vector["name"] < 2:
        return False
    if vector["dob"] != NULL and vector["dob"] < 1:
        return False
    if vector["gender"] == 0:
        return False
    # A stranger with the same name and birthday is a real event in a city of millions (and planted by the
    # generator): a different phone or a different county must be offset by an agreement in the other.
    contradiction = vector["phone"] == 0 or vector["address"] in (0, 1)
    corroboration = vector["phone"] >= 1 or vector["address"] >= 2
    return corroboration or not contradiction


def route(score: PairScore, *, auto_link: float, review: float) -> str:
    """The outcome of one scored pair: hard negatives apart, same valid ID card linked, else thresholds + vetoes."""
    if score.method == "hard-negative":
        return Outcome.SEPARATE
    if score.method == "exact-id":
        return Outcome.LINK
    result = outcome(score.probability, auto_link=auto_link, review=review)
    if result == Outcome.LINK and not auto_link_allowed(score.vector):
        return Outcome.REVIEW
    return result
