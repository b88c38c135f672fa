"""Free-text Chinese addresses → GB/T 2260 division codes (county) and a township key, with cpca (offline).

cpca 0.5 loads its division table through `pkg_resources`, which newer setuptools no longer ships; a two-line
stand-in that reads the same package file through importlib.resources keeps it working without setuptools.
"""

from __future__ import annotations

import importlib.resources
import re
import sys
import types
from functools import lru_cache
from typing import Any

from yilian.patients.names import simplify


def _load_cpca() -> Any:
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")
        shim.resource_stream = lambda pkg, name: importlib.resources.files(pkg).joinpath(name).open("rb")  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    import cpca

    return cpca


_cpca = _load_cpca()
_DETAIL_NOISE = re.compile(r"[\s\d０-９#＃号组栋楼室单元（）()\-—,，.。]+")


_HOUSE_NUMBER = re.compile(r"[\d０-９]+[号號]?.*$")


def parse_address(text: str) -> tuple[str | None, str | None]:
    """(county code, township key) for one address; (None, None) when no county can be recognised.

    The township key is the county code plus the first two characters below the county: township names are two
    characters followed by 镇/乡/街道, which clerks often drop ("解州镇" / "解州").
    """
    # House numbers never change the county or township: cut them so that the cache serves a whole village.
    return _parse(_HOUSE_NUMBER.sub("", text or ""))


@lru_cache(maxsize=200_000)
def _parse(text: str) -> tuple[str | None, str | None]:
    clean = simplify(text)
    if not clean:
        return None, None
    record = next(_cpca._extract_addrs(clean, False, {}))
    adcode = record.get("adcode")
    if not adcode or adcode.endswith("00"):
        return None, None
    detail = _DETAIL_NOISE.sub("", record.get("地址") or "")
    town = f"{adcode}:{detail[:2]}" if len(detail) >= 2 else None
    return adcode, town
