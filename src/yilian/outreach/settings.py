"""Outreach's own knobs (YILIAN_OUTREACH_*): the public page's limits on verification codes, and how often the
attendance alerts are raised by the server itself."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OutreachSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YILIAN_OUTREACH_", extra="ignore")

    # A code is 6 digits: these limits keep guessing hopeless and stop the page being used to flood a phone with texts.
    codes_per_phone_per_hour: int = Field(default=5, ge=1, description="Codes sent to one phone in an hour.")
    codes_per_ip_per_hour: int = Field(default=20, ge=1, description="Codes asked for from one address in an hour.")
    attempts_per_code: int = Field(default=5, ge=1, description="Wrong tries before a code is void.")
    wrong_codes_per_phone_per_hour: int = Field(
        default=10, ge=1, description="Wrong codes for one phone in an hour before the phone is locked."
    )
    code_minutes: int = Field(default=10, ge=1, le=60, description="How long a code is good for.")
    alert_interval_minutes: float = Field(
        default=60, ge=0, description="How often the server raises attendance alerts; 0 turns the job off."
    )


def outreach_settings() -> OutreachSettings:
    """Read afresh each time (cheap): a test or an operator changing the environment takes effect at once."""
    return OutreachSettings()
