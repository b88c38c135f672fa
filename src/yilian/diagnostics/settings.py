"""Knobs of shared diagnostics, each a YILIAN_* environment variable (read on use, so a restart is not needed)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DiagnosticsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YILIAN_", extra="ignore")

    dicomweb_url: str = Field(
        default="",
        description="DICOMweb root of a PACS (e.g. Orthanc: http://pacs:8042/dicom-web); empty: uploads only.",
    )
    dicomweb_timeout: float = Field(default=10.0, gt=0, le=120)
    meeting_url_template: str = Field(
        default="",
        description="Video link of a teleconsultation; {id} is replaced, e.g. https://meet.example.org/yl-{id}",
    )
    diagnostics_max_upload_mb: int = Field(default=20, ge=1, le=500)


def settings() -> DiagnosticsSettings:
    return DiagnosticsSettings()
