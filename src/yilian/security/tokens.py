"""Signed bearer tokens (API) and session cookies (UI): both are short JWTs naming the user."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt

from yilian.config import Settings, get_settings
from yilian.db import utcnow
from yilian.errors import Unauthorized

ALGORITHM = "HS256"

_key: tuple[Settings, str] | None = None


def _secret() -> str:
    """The signing key, read once per settings object: without a configured key it lives in a file of the data dir,
    and reading that file on every request cost more than checking the signature."""
    global _key
    settings = get_settings()
    if _key is None or _key[0] is not settings:
        _key = (settings, settings.resolved_secret_key())
    return _key[1]


def issue(username: str, *, kind: str = "api", hours: int | None = None) -> str:
    settings = get_settings()
    now = utcnow()
    claims = {
        "sub": username,
        "kind": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=hours or settings.token_hours)).timestamp()),
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


# Tokens whose signature was checked: token → (its user, its expiry). A bearer client sends the same token on every
# request, and PyJWT's decode (base64 checks, JSON, HMAC) cost more CPU than a FHIR read's SQL. The key is the whole
# token, signature included, so only a token identical to one that verified can hit; its expiry is checked again on
# every use; the memo belongs to one signing key.
_verified: dict[str, tuple[str, int]] = {}
_verified_key: str | None = None
VERIFIED_MAX = 10_000


def username_from(token: str) -> str:
    global _verified_key
    secret = _secret()
    if _verified_key != secret:
        _verified.clear()
        _verified_key = secret
    hit = _verified.get(token)
    if hit is not None:
        if time.time() < hit[1]:
            return hit[0]
        _verified.pop(token, None)
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired; sign in again or run `yilian token --user NAME`") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("the token is not valid") from exc
    sub = claims.get("sub")
    if not isinstance(sub, str):
        raise Unauthorized("the token names no user")
    exp = claims.get("exp")
    if isinstance(exp, int):  # issue() always sets it; a token without one is checked every time
        if len(_verified) >= VERIFIED_MAX:
            _verified.clear()
        _verified[token] = (sub, exp)
    return sub
