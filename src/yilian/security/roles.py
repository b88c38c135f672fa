"""The roles people hold in the network. Each user is tied to a facility or to a jurisdiction (a division)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VILLAGE_DOCTOR = "village_doctor"
    TOWNSHIP_DOCTOR = "township_doctor"
    COUNTY_DOCTOR = "county_doctor"
    SPECIALIST = "specialist"
    REFERRAL_COORDINATOR = "referral_coordinator"
    CONSORTIUM_ADMIN = "consortium_admin"
    COMMISSION_OFFICIAL = "commission_official"
    INSURANCE_OFFICER = "insurance_officer"
    SYSTEM_ADMIN = "system_admin"


ROLE_LABELS: dict[Role, tuple[str, str]] = {
    Role.VILLAGE_DOCTOR: ("乡村医生", "Village doctor"),
    Role.TOWNSHIP_DOCTOR: ("乡镇卫生院医生", "Township doctor"),
    Role.COUNTY_DOCTOR: ("县医院医生", "County doctor"),
    Role.SPECIALIST: ("专科专家", "Specialist / expert"),
    Role.REFERRAL_COORDINATOR: ("转诊中心协调员", "Referral-centre coordinator"),
    Role.CONSORTIUM_ADMIN: ("医联体管理员", "Consortium administrator"),
    Role.COMMISSION_OFFICIAL: ("卫健委官员", "Health-commission official"),
    Role.INSURANCE_OFFICER: ("医保专员", "Insurance officer"),
    Role.SYSTEM_ADMIN: ("系统管理员", "System administrator"),
}

# Roles whose world is a jurisdiction (a division) rather than one facility.
JURISDICTION_ROLES = frozenset({Role.COMMISSION_OFFICIAL, Role.INSURANCE_OFFICER})
# Roles that treat patients and so read person-level records of their own patients.
CLINICAL_ROLES = frozenset(
    {Role.VILLAGE_DOCTOR, Role.TOWNSHIP_DOCTOR, Role.COUNTY_DOCTOR, Role.SPECIALIST, Role.REFERRAL_COORDINATOR}
)
FACILITY_ROLES = CLINICAL_ROLES | {Role.CONSORTIUM_ADMIN}


def role_label(role: str, lang: str = "zh") -> str:
    try:
        zh, en = ROLE_LABELS[Role(role)]
    except ValueError:
        return role
    return en if lang == "en" else zh
