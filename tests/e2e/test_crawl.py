"""Every demo user follows every link the interface shows them: no page may fail, none may take long."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

USERS = [
    "admin",
    "village",
    "township",
    "county",
    "coordinator",
    "consortium",
    "expert",
    "official",
    "province",
    "insurer",
]
HREF = re.compile(r'href="([^"#]+)"')
LIMIT = 80  # pages per user: enough to reach every page kind, small enough for CI


def crawl(client: httpx.Client, start: str) -> dict[str, int]:
    seen: dict[str, int] = {}
    queue = [start]
    while queue and len(seen) < LIMIT:
        url = queue.pop(0)
        if url in seen:
            continue
        r = client.get(url)
        seen[url] = r.status_code
        if "text/html" not in r.headers.get("content-type", ""):
            continue
        for href in HREF.findall(r.text):
            target = urljoin(url, href.replace("&amp;", "&"))
            parts = urlsplit(target)
            # stay on the site; sign-out and language switches change the session, static files are not pages
            if parts.netloc or parts.path.startswith(("/logout", "/lang/", "/static/")):
                continue
            if target not in seen:
                queue.append(target)
    return seen


@pytest.mark.parametrize("username", USERS)
def test_no_page_a_demo_user_can_reach_fails(demo_site, username: str) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=demo_site.url, timeout=30, follow_redirects=True) as client:
        r = client.post("/login", data={"username": username, "password": "yilian2026"})
        assert r.status_code == 200 and "/login" not in str(r.url), f"{username} cannot sign in"
        statuses = crawl(client, "/")
    failed = {u: s for u, s in statuses.items() if s >= 500}
    assert not failed, f"{username} hit server errors: {failed}"
    assert len(statuses) > 3, f"{username} reached only {list(statuses)}"
