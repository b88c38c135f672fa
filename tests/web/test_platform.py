from __future__ import annotations

import pytest
from sqlalchemy import Engine

from yilian import db, migrations
from yilian.errors import Unavailable


def test_it_reports_a_healthy_migrated_database(http) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok"
    assert body["database"]["migration"] == body["database"]["expected"]


def test_it_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path) -> None:
    empty = db.get_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(Unavailable) as info:
        migrations.require_current(empty)
    assert "yilian db upgrade" in info.value.message


def test_it_sends_a_signed_out_visitor_to_the_login_page(http) -> None:
    response = http.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    page = http.get("/login")
    assert page.status_code == 200
    assert "登录" in page.text


def test_it_answers_api_callers_without_a_token_with_json_401(http, engine: Engine) -> None:
    response = http.get("/api/v1/network/facilities")
    assert response.status_code in (401, 404)
    assert response.headers["content-type"].startswith("application/json")


def test_switching_language_returns_to_the_same_page_with_its_filters(http) -> None:
    import re
    from html import unescape

    page = http.get("/login", params={"next": "/indicators?scope=141000&period=2026-10"})
    link = unescape(re.search(r'href="(/lang/en\?next=[^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    switched = http.get(link)
    assert switched.status_code == 303
    # Back on the very page, its own query string (here the login page's onward target with its filters) intact.
    assert switched.headers["location"] == "/login?next=%2Findicators%3Fscope%3D141000%26period%3D2026-10"
    assert "yilian_lang=en" in switched.headers["set-cookie"]


def test_the_language_switch_never_sends_a_user_to_another_site(http) -> None:
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        assert http.get("/lang/en", params={"next": target}).headers["location"] == "/"


def test_several_workers_answer_without_waiting_for_nagle() -> None:
    """`yilian serve --workers N` shares one listening socket; its accepted connections must have TCP_NODELAY, or
    every answer written in two parts waits for the client's delayed ACK (≈ 40 ms)."""
    import asyncio
    import socket

    from yilian.web.serving import TCPConfig

    listener = TCPConfig("yilian.app:create_app", factory=True, host="127.0.0.1", port=0).bind_socket()
    listener.listen()

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await asyncio.start_server(on_connect, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        value = await asyncio.wait_for(seen, 10)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_nodelay()) == 1
