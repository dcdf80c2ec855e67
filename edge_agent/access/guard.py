"""What the local HTTP API lets through, decided from a request's headers and client address.

State changes (commands, login) need all of:
- a Host this agent answers to: a web page whose name an attacker points at this PC's address
  (DNS rebinding) carries the attacker's name;
- no Origin of another site, and no `Sec-Fetch-Site: cross-site`: a page open in the PC's browser
  must not post to the agent;
- a JSON content type: an HTML form can send text/plain across sites without asking first;
- a verified identity with the role the command needs: `Authorization: Bearer <token>`, or the
  session cookie of a login together with that session's CSRF token in `X-CSRF-Token`.
Reads are open to the PC itself (loopback) by default, to others after a login or with a token.
"""

from __future__ import annotations

__all__ = ["Guard", "Refusal"]

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Literal

from edge_agent.access.roles import Identity, Role, required_role
from edge_agent.access.sessions import Session, Sessions
from edge_agent.access.store import AccessError, AccessStore

COOKIE = "edge_session"
OpenRead = Literal["loopback", "everyone", "login"]


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    error: str


class Guard:
    def __init__(
        self,
        store: AccessStore,
        sessions: Sessions,
        *,
        listen_host: str,
        port: int,
        hostnames: Iterable[str] = (),
        open_read: OpenRead = "loopback",
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.open_read = open_read
        self.hosts = _allowed_hosts(listen_host, port, hostnames)

    # ------------------------------------------------------------------ who is asking

    def identity(self, headers: Mapping[str, str]) -> tuple[Identity | None, Session | None]:
        """The verified identity of a request (token or session), and its session if any."""
        try:
            self.store.reload()
        except AccessError:
            return None, None  # a broken users file admits no one; the agent logs it at start
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return self.store.verify_token(auth[7:].strip()), None
        session = self.sessions.get(session_id(headers))
        return (session.identity, session) if session else (None, None)

    # ------------------------------------------------------------------ decisions

    def read(self, headers: Mapping[str, str], client: str) -> Refusal | None:
        """May this request read the agent's state (the page, /api/state, /api/alarms)?"""
        if not self.host_ok(headers):
            return Refusal(421, "this agent does not answer to that host name")
        if self.open_read == "everyone" or (self.open_read == "loopback" and _loopback(client)):
            return None
        if self.identity(headers)[0] is None:
            return Refusal(401, "log in first (or send Authorization: Bearer <token>)")
        return None

    def change(self, headers: Mapping[str, str], needed: Role | None = None) -> Identity | Refusal:
        """May this request change something? The identity to record, or why not."""
        refusal = self.cross_site(headers)
        if refusal is not None:
            return refusal
        identity, session = self.identity(headers)
        if identity is None:
            return Refusal(401, "log in first (or send Authorization: Bearer <token>)")
        if session is not None and headers.get("x-csrf-token", "") != session.csrf:
            return Refusal(403, "missing or wrong X-CSRF-Token for this session")
        if needed is not None and not identity.role.may(needed):
            return Refusal(403, f"{identity.label} is {identity.role}; this needs {needed}")
        return identity

    def command(self, headers: Mapping[str, str], command: str) -> Identity | Refusal:
        return self.change(headers, required_role(command))

    def cross_site(self, headers: Mapping[str, str]) -> Refusal | None:
        """Refusals that hold before anyone is identified (login included)."""
        if not self.host_ok(headers):
            return Refusal(421, "this agent does not answer to that host name")
        origin = headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1].lower() != headers["host"].lower():
            return Refusal(403, f"requests from {origin} are not accepted")
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return Refusal(403, "requests from other sites are not accepted")
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return Refusal(415, "send the body as JSON (Content-Type: application/json)")
        return None

    def host_ok(self, headers: Mapping[str, str]) -> bool:
        return headers.get("host", "").lower() in self.hosts


def session_id(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    try:
        morsel = SimpleCookie(raw).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel else None


def _loopback(client: str) -> bool:
    try:
        return ipaddress.ip_address(client.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


def _allowed_hosts(listen_host: str, port: int, extra: Iterable[str]) -> set[str]:
    """Host header values of requests meant for this agent: its loopback names, the address it
    listens on and, when it listens on every interface, this PC's own names and addresses."""
    names = {"127.0.0.1", "localhost", "[::1]", *extra}
    if listen_host in ("", "0.0.0.0", "::"):
        hostname = socket.gethostname()
        names |= {hostname, socket.getfqdn()}
        try:
            infos = socket.getaddrinfo(hostname, None)
        except OSError:
            infos = []
        for info in infos:
            address = str(info[4][0])
            names.add(f"[{address}]" if ":" in address else address)
    else:
        names.add(f"[{listen_host}]" if ":" in listen_host else listen_host)
    return {f"{name}:{port}".lower() for name in names} | (
        {name.lower() for name in names} if port == 80 else set()
    )
