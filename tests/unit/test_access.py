"""Users, tokens, sessions and the HTTP guard's decisions (pure, on a real users file)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from edge_agent.access import AccessError, AccessStore, Role, Sessions
from edge_agent.access.guard import Guard, Refusal

HOST = {"host": "127.0.0.1:8080"}
JSON = {**HOST, "content-type": "application/json"}


def store(tmp_path: Path) -> AccessStore:
    s = AccessStore(tmp_path / "var" / "access.json")
    s.add_user("li.wei", Role.OPERATOR, "correct horse")
    s.add_user("王芳", Role.ENGINEER, "battery staple")
    return s


def test_passwords_are_salted_slow_hashes_in_a_private_file(tmp_path: Path) -> None:
    s = store(tmp_path)
    text = s.path.read_text(encoding="utf-8")
    assert "correct horse" not in text and "$argon2id$" in text
    assert stat.S_IMODE(s.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(s.path.parent.stat().st_mode) == 0o700
    hashes = [u["hash"] for u in json.loads(text)["users"].values()]
    assert len(set(hashes)) == 2
    assert s.verify_password("li.wei", "correct horse") == s.verify_password(
        "li.wei", "correct horse"
    )
    assert s.verify_password("li.wei", "correct horse").role is Role.OPERATOR  # type: ignore[union-attr]
    assert s.verify_password("li.wei", "wrong") is None
    assert s.verify_password("nobody", "correct horse") is None
    assert s.verify_password("王芳", "battery staple").role is Role.ENGINEER  # type: ignore[union-attr]


def test_users_are_managed_and_names_checked(tmp_path: Path) -> None:
    s = store(tmp_path)
    with pytest.raises(AccessError, match="exists"):
        s.add_user("li.wei", Role.VIEWER, "whatever12")
    with pytest.raises(AccessError, match="8 to 256"):
        s.set_password("li.wei", "short")
    with pytest.raises(AccessError, match="not a usable name"):
        s.add_user("bad name\n", Role.VIEWER, "whatever12")
    s.set_role("li.wei", Role.VIEWER)
    s.remove_user("王芳")
    again = AccessStore(s.path)
    again.reload()  # what another process (the agent) reads
    assert again.users() == [{"name": "li.wei", "role": "viewer"}]


def test_tokens_are_shown_once_and_kept_as_hashes(tmp_path: Path) -> None:
    s = store(tmp_path)
    token = s.create_token("scada", Role.OPERATOR)
    assert token.startswith("eat_") and len(token) > 40
    assert token not in s.path.read_text()
    found = s.verify_token(token)
    assert found is not None and (found.label, found.role) == ("token:scada", Role.OPERATOR)
    assert s.verify_token(token + "x") is None
    s.revoke_token("scada")
    assert s.verify_token(token) is None


def test_a_broken_users_file_is_an_error_not_an_open_door(tmp_path: Path) -> None:
    path = tmp_path / "access.json"
    path.write_text("{not json")
    with pytest.raises(AccessError, match="not a users file"):
        AccessStore(path).reload()


def guard(tmp_path: Path) -> Guard:
    return Guard(store(tmp_path), Sessions(), listen_host="127.0.0.1", port=8080)


def test_state_changes_need_host_origin_json_identity_csrf_and_role(tmp_path: Path) -> None:
    g = guard(tmp_path)
    operator = g.store.verify_password("li.wei", "correct horse")
    assert operator is not None
    sid, session = g.sessions.create(operator)
    cookie = {"cookie": f"edge_session={sid}", "x-csrf-token": session.csrf}
    ok = {**JSON, **cookie}

    def status(headers: dict[str, str], command: str = "ack") -> int:
        result = g.command(headers, command)
        return result.status if isinstance(result, Refusal) else 200

    assert status(ok) == 200
    assert g.command(ok, "ack").label == "li.wei"  # type: ignore[union-attr]
    assert status({**ok, "host": "evil.example:8080"}) == 421  # DNS rebinding
    assert status({**ok, "origin": "http://evil.example"}) == 403  # CSRF from another page
    assert status({**ok, "sec-fetch-site": "cross-site"}) == 403
    assert status({**ok, "content-type": "text/plain"}) == 415  # a plain HTML form
    assert status({**ok, "x-csrf-token": "guess"}) == 403
    assert status({**JSON, "cookie": f"edge_session={sid}"}) == 403  # cookie alone is not enough
    assert status(JSON) == 401
    assert status(ok, "out_of_service") == 403  # an operator may not
    assert status({**ok, "origin": "http://127.0.0.1:8080"}) == 200  # the page itself


def test_tokens_need_no_csrf_and_reads_are_open_to_loopback_only(tmp_path: Path) -> None:
    g = guard(tmp_path)
    token = g.store.create_token("scada", Role.ENGINEER)
    bearer = {**JSON, "authorization": f"Bearer {token}"}
    assert g.command(bearer, "out_of_service").label == "token:scada"  # type: ignore[union-attr]
    assert g.read(HOST, "127.0.0.1") is None
    assert g.read(HOST, "::ffff:127.0.0.1") is None
    refused = g.read(HOST, "192.0.2.7")
    assert isinstance(refused, Refusal) and refused.status == 401
    assert g.read({**HOST, "authorization": f"Bearer {token}"}, "192.0.2.7") is None


def test_failed_logins_are_limited_per_client() -> None:
    sessions = Sessions()
    for _ in range(5):
        assert sessions.may_try("192.0.2.7")
        sessions.failed("192.0.2.7")
    assert not sessions.may_try("192.0.2.7")
    assert sessions.may_try("192.0.2.8")
