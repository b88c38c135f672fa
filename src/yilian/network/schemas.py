"""What goes in and out of the registry: pydantic models for the API, plain dataclasses for pages and callers.

The dataclasses carry no ORM objects, so a page can render them after the session has closed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yilian.network.rules import (
    CAPABILITIES,
    ConsortiumForm,
    Gender,
    Kind,
    Level,
    MemberRole,
    Membership,
    Ownership,
    PostingKind,
    Title,
)

T = TypeVar("T")


class FacilityIn(BaseModel):
    """A new facility. Unknown division codes are refused with field `division_code`."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=2, max_length=128)
    name_en: str | None = Field(default=None, max_length=200)
    level: Level
    kind: Kind = Kind.GENERAL
    ownership: Ownership = Ownership.PUBLIC
    division_code: str = Field(min_length=2, max_length=12)
    parent_id: uuid.UUID | None = None
    address: str | None = Field(default=None, max_length=255)
    lon: float | None = Field(default=None, ge=73, le=136)  # China's extent: a wrong sign or swapped pair is refused
    lat: float | None = Field(default=None, ge=3, le=54)
    beds: int = Field(default=0, ge=0, le=20000)
    doctors: int = Field(default=0, ge=0, le=20000)
    nurses: int = Field(default=0, ge=0, le=40000)
    staff_total: int | None = Field(default=None, ge=0, le=80000)
    departments: list[str] = Field(default_factory=list, max_length=200)
    capabilities: list[str] = Field(default_factory=list)

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CAPABILITIES))
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; known: {', '.join(CAPABILITIES)}")
        return sorted(set(value), key=CAPABILITIES.index)


class FacilityPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=2, max_length=128)
    name_en: str | None = Field(default=None, max_length=200)
    level: Level | None = None
    kind: Kind | None = None
    ownership: Ownership | None = None
    division_code: str | None = Field(default=None, min_length=2, max_length=12)
    parent_id: uuid.UUID | None = None
    address: str | None = Field(default=None, max_length=255)
    lon: float | None = Field(default=None, ge=73, le=136)
    lat: float | None = Field(default=None, ge=3, le=54)
    beds: int | None = Field(default=None, ge=0, le=20000)
    doctors: int | None = Field(default=None, ge=0, le=20000)
    nurses: int | None = Field(default=None, ge=0, le=40000)
    staff_total: int | None = Field(default=None, ge=0, le=80000)
    departments: list[str] | None = Field(default=None, max_length=200)
    capabilities: list[str] | None = None
    active: bool | None = None

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else FacilityIn._known_capabilities(value)


class FacilityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    name_en: str | None = None
    level: str
    kind: str
    ownership: str
    division_code: str
    parent_id: uuid.UUID | None = None
    address: str | None = None
    lon: float | None = None
    lat: float | None = None
    position_approximate: bool = True
    beds: int
    doctors: int
    nurses: int
    staff_total: int
    departments: list[str]
    capabilities: list[str]
    active: bool = True


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    facility_id: str = Field(description="Facility id or code")
    membership: Membership = Membership.TIGHT
    role: MemberRole = MemberRole.MEMBER


class ConsortiumIn(BaseModel):
    """A consortium with its members. The lead must be among the members (field `lead_facility_id`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=128)
    form: ConsortiumForm
    lead_facility_id: str = Field(description="Facility id or code of the lead")
    division_code: str | None = None
    start_date: date | None = None
    specialty: str | None = Field(default=None, max_length=64)
    description: str | None = None
    members: list[MemberIn] = Field(default_factory=list, max_length=5000)


class ConsortiumPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=2, max_length=128)
    lead_facility_id: str | None = None
    start_date: date | None = None
    specialty: str | None = Field(default=None, max_length=64)
    description: str | None = None
    add_members: list[MemberIn] = Field(default_factory=list)
    remove_members: list[str] = Field(default_factory=list, description="Facility ids or codes")


class ConsortiumOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    form: str
    lead_facility_id: uuid.UUID
    lead_name: str = ""
    division_code: str | None = None
    start_date: date | None = None
    specialty: str | None = None
    member_count: int = 0


class GridIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city_code: str = Field(min_length=4, max_length=6)
    name: str = Field(min_length=1, max_length=128)
    consortium_id: uuid.UUID
    township_codes: list[str] = Field(min_length=1, max_length=2000)


class PractitionerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    gender: Gender
    title: Title
    specialty: str | None = Field(default=None, max_length=64)
    home_facility_id: str = Field(description="Facility id or code")


class PostingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    facility_id: str = Field(description="Facility id or code where the practitioner is posted")
    specialty: str | None = Field(default=None, max_length=64)
    start: date | None = None
    end: date | None = None


class PractitionerRoleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    practitioner_id: uuid.UUID
    facility_id: uuid.UUID
    kind: PostingKind | str
    specialty: str | None = None
    start: date | None = None
    end: date | None = None


class PractitionerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    gender: str
    title: str
    specialty: str | None = None
    home_facility_id: uuid.UUID
    active: bool = True
    roles: list[PractitionerRoleOut] = Field(default_factory=list)


class DivisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: str
    parent_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    position_approximate: bool = False
    population: int | None = None
    urban: int | None = None
    rural: int | None = None
    households: int | None = None


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int
    next: str | None = None


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


@dataclass(frozen=True)
class ConsortiumSummary:
    id: uuid.UUID
    name: str
    form: str
    lead_facility_id: uuid.UUID
    lead_name: str
    member_count: int
    membership: str | None = None  # of the facility asked about (consortia_of_facility)
    role: str | None = None


@dataclass(frozen=True)
class FacilityPoint:
    name: str
    level: str
    lon: float
    lat: float
    id: uuid.UUID


@dataclass
class NetworkOverview:
    division_prefix: str
    division_name: str
    facilities: int
    counts_per_level: dict[str, int]
    beds_per_level: dict[str, int]
    beds: int
    population: int
    beds_per_1000: float
    practitioners: int
    consortia: list[ConsortiumSummary]
    points: list[FacilityPoint]


@dataclass(frozen=True)
class MemberView:
    facility_id: uuid.UUID
    code: str
    name: str
    level: str
    kind: str
    membership: str
    role: str
    division_code: str
    beds: int


@dataclass(frozen=True)
class GridView:
    id: uuid.UUID
    name: str
    city_code: str
    townships: list[tuple[str, str]]  # (code, name)


@dataclass
class GridPartition:
    city_code: str
    grids: list[GridView]
    area: list[str]  # township codes the grids should cover (the city's urban districts)
    gaps: list[tuple[str, str]]  # (code, name) of townships in no grid


@dataclass
class FacilityDetail:
    id: uuid.UUID
    code: str
    name: str
    name_en: str | None
    level: str
    kind: str
    ownership: str
    division_code: str
    division_path: list[tuple[str, str]]  # (code, name) from province down
    address: str | None
    lon: float | None
    lat: float | None
    position_approximate: bool
    beds: int
    doctors: int
    nurses: int
    staff_total: int
    departments: list[str]
    capabilities: list[str]
    parent: tuple[uuid.UUID, str] | None
    consortia: list[ConsortiumSummary]
    practitioners: int
    postings_in: int  # practitioners from elsewhere posted here (outreach)
    next_level_up: str | None


@dataclass
class ConsortiumDetail:
    id: uuid.UUID
    name: str
    form: str
    lead_facility_id: uuid.UUID
    lead_name: str
    division_code: str | None
    division_name: str | None
    start_date: date | None
    specialty: str | None
    description: str | None
    members: list[MemberView]
    counts_per_level: dict[str, int]
    beds: int
    tight_members: int
    loose_members: int
    grids: list[GridView] = field(default_factory=list)
    grid_gaps: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class LoadReport:
    """What load-divisions did, and everything that did not join (never dropped silently)."""

    province: str | None
    divisions_by_level: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    census_joined: int = 0
    census_joined_by_name: list[tuple[str, str, str]] = field(default_factory=list)  # (county code, name, census code)
    counties_without_census: list[tuple[str, str]] = field(default_factory=list)
    census_rows_unjoined: list[tuple[str, str]] = field(default_factory=list)
    centroids_joined: int = 0
    counties_without_centroid: list[tuple[str, str]] = field(default_factory=list)
    centroids_unjoined: list[tuple[str, str]] = field(default_factory=list)
    townships_placed: int = 0

    def lines(self) -> list[str]:
        levels = ", ".join(f"{n} {lvl}" for lvl, n in self.divisions_by_level.items())
        out = [
            f"divisions{' of province ' + self.province if self.province else ''}: {levels}",
            f"written: {self.inserted} new, {self.updated} updated, {self.unchanged} unchanged",
            f"census 2020: {self.census_joined} counties joined by code, {len(self.census_joined_by_name)} by name",
            f"  counties without a census row: {len(self.counties_without_census)}",
            f"  census county rows that match no division: {len(self.census_rows_unjoined)}",
            f"centroids: {self.centroids_joined} counties joined; {len(self.counties_without_centroid)} without a "
            f"centroid (placed at their city's seat, approximate); {len(self.centroids_unjoined)} centroid rows unjoined",
            f"townships placed around their county seat (approximate): {self.townships_placed}",
        ]
        for code, name, census_code in self.census_joined_by_name:
            out.append(f"  census joined by name: {code} {name} ← census {census_code}")
        for code, name in self.counties_without_census:
            out.append(f"  no census: {code} {name}")
        for code, name in self.census_rows_unjoined:
            out.append(f"  census row unjoined: {code} {name}")
        for code, name in self.counties_without_centroid:
            out.append(f"  no centroid: {code} {name}")
        for code, name in self.centroids_unjoined:
            out.append(f"  centroid unjoined: {code} {name}")
        return out


class AccountIn(BaseModel):
    """A new user account, created by an administrator for a facility or a jurisdiction."""

    model_config = ConfigDict(str_strip_whitespace=True)

    username: str = Field(min_length=2, max_length=64)
    display_name: str = Field(min_length=1, max_length=128)
    role: str
    password: str = Field(min_length=8, max_length=128)
    facility: str | None = None  # facility id or code (facility roles)
    division_code: str | None = Field(default=None, pattern=r"^\d{2,12}$")  # jurisdiction roles
    practitioner_id: str | None = None  # the clinician's registry record
    lang: str = "zh"


@dataclass(frozen=True)
class AccountRow:
    username: str
    display_name: str
    role: str
    active: bool
    facility_id: uuid.UUID | None
    facility_name: str | None
    division_code: str | None
    practitioner_id: uuid.UUID | None
    practitioner_name: str | None
