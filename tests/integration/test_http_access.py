"""The local HTTP API of a real agent process against the requests a hostile page or peer sends.

Users are added with the real `edge-agent user add` (password at its prompt, from a pipe here);
the agent runs as `edge-agent run` on a free port beside a simulated press (`edge-agent
simulate`) whose temperature is over an alarm's limit, so there is something to acknowledge.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.hot_press import edge_agent, hot_press

PASSWORD = "furnace-line-2"


@dataclass
class Running:
    port: int
    config: Path
    log: Path
    token: str

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            all_headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            raw = response.read()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = raw.decode(errors="replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def post(
        self, path: str, body: dict[str, Any], **headers: str
    ) -> tuple[int, dict[str, str], Any]:
        base = {"Content-Type": "application/json"}
        return self.request("POST", path, json.dumps(body), {**base, **headers})

    def login(self, user: str, password: str = PASSWORD) -> tuple[str, str]:
        status, headers, data = self.post("/api/login", {"user": user, "password": password})
        assert status == 200, data
        return headers["set-cookie"].split(";", 1)[0], data["csrf"]


def alarm_events(db_path: Path, count: int) -> list[tuple[str, str | None]]:
    """(event, user) of the command records in the buffer, once `count` are committed."""
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(db_path) as db:
            rows = db.execute("SELECT body FROM records WHERE kind = 'alarm'").fetchall()
        bodies = [json.loads(body) for (body,) in rows]
        found = [(b["event"], b.get("user")) for b in bodies if b["event"] != "change"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    users = {"li.wei": ("operator", PASSWORD), "wang.fang": ("engineer", PASSWORD)}
    with hot_press(tmp_path_factory.mktemp("http-access"), users=users) as press:
        made = edge_agent(press.config, "token", "create", "--name", "scada", "--role", "engineer")
        assert made.returncode == 0, made.stderr
        yield Running(press.port, press.config, press.log, made.stdout.strip())


def test_a_password_is_never_taken_from_the_command_line(tmp_path: Path, agent: Running) -> None:
    refused = edge_agent(agent.config, "user", "add", "x.y", "--role", "viewer", "--password", "p")
    assert refused.returncode != 0  # no such option
    differ = edge_agent(
        agent.config, "user", "passwd", "li.wei", stdin="one-password\nanother-one\n"
    )
    assert differ.returncode == 1 and "differ" in differ.stderr
    listed = edge_agent(agent.config, "user", "list")
    assert "li.wei" in listed.stdout and PASSWORD not in listed.stdout


def test_what_a_page_on_another_site_sends_is_refused(agent: Running) -> None:
    cookie, csrf = agent.login("li.wei")
    path = "/api/alarms/hot/ack"
    form = agent.request("POST", path, "x=1", {"Content-Type": "text/plain", "Cookie": cookie})
    assert form[0] == 415
    foreign = agent.post(
        path, {}, Cookie=cookie, **{"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    )
    assert foreign[0] == 403
    rebinding = agent.request(
        "POST",
        path,
        "{}",
        {
            "Host": "evil.example",
            "Content-Type": "application/json",
            "Cookie": cookie,
            "X-CSRF-Token": csrf,
        },
    )
    assert rebinding[0] == 421
    no_csrf = agent.post(path, {}, Cookie=cookie)
    assert no_csrf[0] == 403
    anonymous = agent.post(path, {})
    assert anonymous[0] == 401
    page = agent.request("GET", "/", headers={"Host": "evil.example"})
    assert page[0] == 421


def test_login_sets_a_strict_http_only_cookie_and_is_rate_limited(agent: Running) -> None:
    status, headers, data = agent.post("/api/login", {"user": "li.wei", "password": PASSWORD})
    assert status == 200 and data["role"] == "operator" and data["csrf"]
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    me = agent.request("GET", "/api/me", headers={"Cookie": cookie.split(";", 1)[0]})
    assert me[2]["user"] == "li.wei"
    statuses = [
        agent.post("/api/login", {"user": "wang.fang", "password": "guess"})[0] for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    # Only that account, from this address: the others still log in.
    assert agent.post("/api/login", {"user": "li.wei", "password": PASSWORD})[0] == 200


def test_the_verified_user_is_recorded_and_roles_hold(agent: Running) -> None:
    deadline = time.monotonic() + 20
    while agent.request("GET", "/api/alarms")[2]["alarms"][0]["state"] != "unack_active":
        assert time.monotonic() < deadline, "the alarm did not activate"
        time.sleep(0.2)
    cookie, csrf = agent.login("li.wei")
    headers = {"Cookie": cookie, "X-CSRF-Token": csrf}
    refused = agent.post("/api/alarms/hot/out_of_service", {"reason": "x"}, **headers)
    assert refused[0] == 403 and "engineer" in refused[2]["error"]
    # A self-declared "user" in the body is not who did it: the login is.
    ack = agent.post("/api/alarms/hot/ack", {"user": "admin"}, **headers)
    assert ack[0] == 200 and ack[2]["state"] == "ack_active"
    bearer = {"Authorization": f"Bearer {agent.token}"}
    shelved = agent.post("/api/alarms/hot/shelve", {"duration_s": 60, "reason": "test"}, **bearer)
    assert shelved[0] == 200, shelved[2]
    users = alarm_events(agent.config.parent / "outbox.db", 2)
    assert ("ack", "li.wei") in users and ("shelve", "token:scada") in users
    assert all(u != "admin" for _, u in users)


def test_malformed_and_oversized_requests_get_a_json_4xx(agent: Running) -> None:
    token = {"Authorization": f"Bearer {agent.token}", "Content-Type": "application/json"}
    path = "/api/alarms/hot/ack"
    bad_length = agent.request("POST", path, None, {**token, "Content-Length": "abc"})
    assert bad_length[0] == 400 and "Content-Length" in bad_length[2]["error"]
    started = time.monotonic()
    huge = agent.request("POST", path, None, {**token, "Content-Length": str(4 << 30)})
    assert huge[0] == 413 and time.monotonic() - started < 2
    deep = agent.request("POST", path, "[" * 5000 + "]" * 5000, token)
    assert deep[0] == 400
    nan = agent.request("POST", path, '{"duration_s": NaN}', token)
    assert nan[0] == 400
    assert "Traceback" not in agent.log.read_text(errors="replace")


def test_idle_and_excess_connections_are_dropped(agent: Running) -> None:
    idle = [socket.create_connection(("127.0.0.1", agent.port)) for _ in range(64)]
    try:
        extra = socket.create_connection(("127.0.0.1", agent.port))
        extra.settimeout(5)
        assert extra.recv(1) == b""  # closed at once: over the connection limit
        extra.close()
    finally:
        for s in idle:
            s.close()
    time.sleep(0.5)
    assert agent.request("GET", "/health/live")[0] == 200
    slow = socket.create_connection(("127.0.0.1", agent.port))
    slow.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    slow.settimeout(15)
    started = time.monotonic()
    assert slow.recv(1024) == b""  # dropped by the server's timeout, not held for ever
    assert 9 < time.monotonic() - started < 13
    slow.close()


def test_the_history_is_read_over_http(agent: Running) -> None:
    """What the agent's history file holds, through the history API of the running process."""
    deadline = time.monotonic() + 15
    while True:
        status, _, data = agent.request("GET", "/api/history/alarms")
        assert status == 200, data
        if any(a["id"] == "hot" and a["state"] == "unack_active" for a in data["alarms"]):
            break
        assert time.monotonic() < deadline, data
        time.sleep(0.3)
    assert data["from"].endswith("T00:00:00Z")  # today, in UTC: no calendar here
    unknown = agent.request("GET", "/api/history/oee?machine=nope")
    assert unknown[0] == 400 and "unknown machine 'nope'" in unknown[2]["error"]
    months = "from=2026-01-01T00:00:00%2B08:00&to=2026-06-01T00:00:00Z"
    too_long = agent.request("GET", f"/api/history/alarms?{months}")
    assert too_long[0] == 400 and "at most 31 days" in too_long[2]["error"]
    remote = agent.request("GET", "/api/history/alarms", headers={"Host": "evil.example"})
    assert remote[0] == 421


def test_broken_off_requests_and_long_queries_get_no_traceback(agent: Running) -> None:
    many = "&".join(f"p{n}=1" for n in range(30))
    status, _, data = agent.request("GET", f"/api/history/alarms?{many}")
    assert status == 400 and "at most 20 query parameters" in data["error"]
    headers = (
        f"POST /api/alarms/hot/ack HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n"
        f"Authorization: Bearer {agent.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    )
    cut = socket.create_connection(("127.0.0.1", agent.port))
    cut.sendall(headers.encode())
    cut.close()  # announced 100 bytes, sent 1
    time.sleep(0.5)
    assert agent.request("GET", "/health/live")[0] == 200
    assert "Traceback" not in agent.log.read_text(errors="replace")
