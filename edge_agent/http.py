"""The agent's local HTTP port: the live page, its JSON, /health and Prometheus /metrics.

A standard-library server on its own thread: the page is for one engineer and a Prometheus scrape,
not for the internet. Data is taken from the event loop through `run_coroutine_threadsafe`, so the
server thread never reads the agent's state while the loop changes it.
"""

from __future__ import annotations

__all__ = ["Action", "Download", "LocalServer"]

import asyncio
import json
import logging
import math
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge_agent import strict_json
from edge_agent.access import AccessError, AccessStore, Session, Sessions
from edge_agent.access.guard import COOKIE, Guard, OpenRead, Refusal, session_id
from edge_agent.access.roles import Identity, Role
from edge_agent.web.history_api import QueryError

_log = logging.getLogger(__name__)

Snapshot = Callable[[], Coroutine[Any, Any, dict[str, Any]]]
_ANSWER_S = 5.0  # how long a request waits for the event loop before calling the agent stuck
Command = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Download:
    """A read answered with a file (a report) instead of JSON."""

    body: bytes
    content_type: str
    filename: str  # ASCII: it goes into a header


# Answers a dict (JSON) or a Download; a coroutine function, run on the agent's loop.
Read = Callable[[Mapping[str, str]], Coroutine[Any, Any, Any]]
ActionRun = Callable[
    [list[str], dict[str, Any], Identity], Coroutine[Any, Any, tuple[int, dict[str, Any]]]
]


@dataclass(frozen=True, slots=True)
class Action:
    """A POST that changes something, by a verified identity of at least `role`.

    Routed by path pattern, `*` standing for one path segment (e.g. a stop's id); `run` gets the
    segments that matched `*`, the JSON body and who asks, and answers (HTTP status, JSON body).
    """

    role: Role
    run: ActionRun


# The page's own scripts and styles, served from the package (no CDN: plants are offline).
_STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_QUERY_MAX = 2048
_QUERY_FIELDS_MAX = 20


_BODY_MAX = 16 * 1024  # a command or a login is a few hundred bytes
_SOCKET_TIMEOUT_S = 10.0  # a client that stops sending (slowloris) is dropped after this
_CONNECTIONS_MAX = 64  # beyond it a new connection is closed at once


class LocalServer:
    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Snapshot,
        registry: CollectorRegistry,
        command: Command | None = None,
        *,
        access: AccessStore | None = None,
        hostnames: tuple[str, ...] = (),
        open_read: OpenRead = "loopback",
        reads: Mapping[str, Read] | None = None,
        actions: Mapping[str, Action] | None = None,
    ) -> None:
        self.command = command
        self._reads = dict(reads or {})  # more JSON answers by path (the history API)
        self._actions = dict(actions or {})  # more commands by path pattern (stop reasons, …)
        self.host = host
        self.port = port
        self._snapshot = snapshot
        self._registry = registry
        # Without a users file nobody can log in, and no command is taken: safe by default.
        self._access = access or AccessStore(Path("/nonexistent/edge-agent-access.json"))
        self._hostnames = hostnames
        self._open_read = open_read
        self.sessions = Sessions()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Bind and serve; raises OSError (e.g. port in use) before anything runs."""
        loop = asyncio.get_running_loop()
        server = _BoundedServer((self.host, self.port), BaseHTTPRequestHandler)
        guard = Guard(
            self._access,
            self.sessions,
            listen_host=self.host,
            port=server.server_address[1],
            hostnames=self._hostnames,
            open_read=self._open_read,
        )
        server.RequestHandlerClass = _handler(
            loop, self._snapshot, self._registry, self.command, guard, self._reads, self._actions
        )
        self._server = server
        # Handler threads are daemons, and not joined at close: a browser's idle keep-alive or
        # pre-connected socket holds one until it goes, and must not hold up a stop.
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop serving within `timeout_s`; requests in progress are not waited for."""
        server, self._server = self._server, None
        if server is None:
            return
        # shutdown() waits for serve_forever to notice (its 0.5 s poll): bounded here all the same.
        stopper = threading.Thread(target=server.shutdown, name="http-stop", daemon=True)
        stopper.start()
        stopper.join(timeout_s)
        server.server_close()


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `_CONNECTIONS_MAX` of them; the rest are closed at once."""

    # The listen queue holds connections until they are accepted (and then counted): with the
    # default of 5 a burst waits in the kernel, half-open, instead of being answered.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(_CONNECTIONS_MAX)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _log.warning(
                "http: over %d connections; one from %s closed", _CONNECTIONS_MAX, client_address[0]
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line for a request that broke off (a client that stopped sending, a reset), not
        the standard library's traceback on stderr; the traceback at DEBUG."""
        _log.warning("http: a request from %s failed: %s", client_address[0], _current_error())
        _log.debug("http: traceback", exc_info=True)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _handler(
    loop: asyncio.AbstractEventLoop,
    snapshot: Snapshot,
    registry: CollectorRegistry,
    command: Command | None,
    guard: Guard,
    reads: Mapping[str, Read],
    actions: Mapping[str, Action],
) -> type[BaseHTTPRequestHandler]:
    page = files("edge_agent").joinpath("web/index.html").read_bytes()
    static = _static_files()
    reported: set[str] = set()  # where a non-finite number was found in an answer

    class Handler(BaseHTTPRequestHandler):
        server_version = "edge-agent"
        timeout = _SOCKET_TIMEOUT_S

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/health/ready", "/health/live"):
                self._health(live_only=path == "/health/live")
                return
            if path == "/metrics":
                self._state()  # refreshes the buffer gauges
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                return
            if path in ("/", "/index.html"):  # the login form is on it: open, with the host check
                if not guard.host_ok(self._headers()):
                    self._refuse(Refusal(421, "this agent does not answer to that host name"))
                    return
                self._send(200, "text/html; charset=utf-8", page)
                return
            if path.startswith("/static/"):  # the page's scripts: as open as the page itself
                if not guard.host_ok(self._headers()):
                    self._refuse(Refusal(421, "this agent does not answer to that host name"))
                elif path[8:] in static:
                    self._send(200, *static[path[8:]])
                else:
                    self._send_json(404, {"error": f"no such file: {path}"})
                return
            if path == "/api/me":
                self._me()
                return
            refusal = guard.read(self._headers(), self.client_address[0])
            if refusal is not None:
                self._refuse(refusal)
            elif path == "/api/state":
                self._send_json(200, self._state())
            elif path == "/api/alarms":
                self._send_json(200, {"alarms": self._state()["alarms"]})
            elif path in reads:
                self._read(reads[path])
            else:
                self._send_json(404, {"error": f"no such page: {path}"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            parts = path.strip("/").split("/")
            is_command = command is not None and len(parts) == 4 and parts[:2] == ["api", "alarms"]
            action = _match(actions, parts)
            if not is_command and action is None and path not in ("/api/login", "/api/logout"):
                self._refuse(Refusal(404, f"no such command path: {path}"), close=True)
                return
            # Before the body is read: what another site sends is refused unread.
            refusal = guard.cross_site(self._headers())
            if refusal is not None:
                self._refuse(refusal, close=True)
                return
            body = self._body()
            if body is None:
                return  # refused already
            if path == "/api/login":
                self._login(body)
            elif path == "/api/logout":
                self._logout()
            elif action is not None:
                self._action(*action, body)
            else:
                self._command(parts[2], parts[3], body)

        def _read(self, read: Read) -> None:
            query = self.path.partition("?")[2]
            if len(query) > _QUERY_MAX:
                self._refuse(Refusal(414, f"a query of at most {_QUERY_MAX} characters"))
                return
            try:
                fields = parse_qs(query, max_num_fields=_QUERY_FIELDS_MAX)
            except ValueError:
                self._refuse(Refusal(400, f"at most {_QUERY_FIELDS_MAX} query parameters"))
                return
            params = {k: v[-1] for k, v in fields.items()}
            try:
                answer = asyncio.run_coroutine_threadsafe(read(params), loop).result(_ANSWER_S)
            except QueryError as exc:
                self._refuse(Refusal(400, str(exc)))
                return
            except TimeoutError:
                self._refuse(Refusal(503, f"the agent did not answer within {_ANSWER_S:.0f} s"))
                return
            if isinstance(answer, Download):
                self._send(200, answer.content_type, answer.body, filename=answer.filename)
            else:
                self._send_json(200, answer)

        def _action(self, action: Action, args: list[str], body: dict[str, Any]) -> None:
            checked = guard.change(self._headers(), action.role)
            if isinstance(checked, Refusal):
                self._refuse(checked)
                return
            try:
                status, reply = asyncio.run_coroutine_threadsafe(
                    action.run(args, body, checked), loop
                ).result(timeout=_ANSWER_S)
            except TimeoutError:
                self._refuse(Refusal(503, f"the agent did not answer within {_ANSWER_S:.0f} s"))
                return
            self._send_json(status, reply)

        def _command(self, alarm_id: str, name: str, body: dict[str, Any]) -> None:
            # POST /api/alarms/<id>/<command>, JSON body {"duration_s": .., "reason": ..}
            checked = guard.command(self._headers(), name)
            if isinstance(checked, Refusal):
                self._refuse(checked)
                return
            assert command is not None
            # Who did it is who was verified; a "user" in the body is not taken for it.
            claimed = ("user", "declared_user")  # a name in the body is not who did it
            payload = {k: v for k, v in body.items() if k not in claimed}
            payload.update(id=alarm_id, command=name, user=checked.label)

            async def run() -> dict[str, Any]:
                return command(payload)

            try:
                reply = asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=_ANSWER_S)
            except TimeoutError:
                self._refuse(Refusal(503, f"the agent did not answer within {_ANSWER_S:.0f} s"))
                return
            self._send_json(200 if reply["ok"] else 400, reply)

        def _login(self, body: dict[str, Any]) -> None:
            name, password = body.get("user"), body.get("password")
            # Per address and name: guessing one account is slowed, and nobody can lock the
            # others out from the same address (the PC itself, a NAT).
            client = f"{self.client_address[0]} {str(name)[:64]!r}"
            if not guard.sessions.may_try(client):
                self._refuse(Refusal(429, "too many failed logins; wait a minute"))
                return
            identity = None
            if isinstance(name, str) and isinstance(password, str):
                try:
                    guard.store.reload()
                    identity = guard.store.verify_password(name, password)
                except AccessError as exc:
                    _log.error("http: login refused: %s", exc)
            if identity is None:
                guard.sessions.failed(client)
                _log.warning("http: failed login for %r from %s", name, self.client_address[0])
                self._refuse(Refusal(401, "wrong user name or password"))
                return
            sid, session = guard.sessions.create(identity)
            _log.info("http: %s logged in from %s", identity.name, self.client_address[0])
            cookie = f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/"
            self._send_json(200, _me(session), cookie=cookie)

        def _logout(self) -> None:
            guard.sessions.end(session_id(self._headers()))
            cookie = f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
            self._send_json(200, {"ok": True, "user": None}, cookie=cookie)

        def _me(self) -> None:
            identity, session = guard.identity(self._headers())
            if session is not None:
                self._send_json(200, _me(session))
            else:
                who = {"user": identity.label, "role": identity.role} if identity else {}
                self._send_json(200, {"ok": True, "user": None, **who})

        def _body(self) -> dict[str, Any] | None:
            """The request's JSON object, or None after answering why it cannot be had."""
            raw_length = self.headers.get("Content-Length")
            try:
                length = int(raw_length) if raw_length is not None else 0
                if length < 0:
                    raise ValueError
            except ValueError:
                self._refuse(Refusal(400, "Content-Length is not a length"), close=True)
                return None
            if length > _BODY_MAX:
                self._refuse(Refusal(413, f"a body of at most {_BODY_MAX} bytes"), close=True)
                return None
            try:
                raw = self.rfile.read(length) if length else b"{}"
                if len(raw) < length:  # the client closed before sending what it announced
                    self.close_connection = True
                    return None
                body = strict_json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                self._refuse(Refusal(400, f"malformed body: {exc}"))
                return None
            except RecursionError:
                self._refuse(Refusal(400, "malformed body: nested too deeply"))
                return None
            return body

        def _headers(self) -> dict[str, str]:
            return {k.lower(): v for k, v in self.headers.items()}

        def _refuse(self, refusal: Refusal, *, close: bool = False) -> None:
            if close:  # the rest of the request cannot be told from the next one: end there
                self.close_connection = True
            self._send_json(refusal.status, {"ok": False, "error": refusal.error})

        def _health(self, *, live_only: bool) -> None:
            """Liveness: the agent's loop answers. Readiness: also every device and sink works."""
            try:
                state = self._state()
            except TimeoutError:
                reason = f"the agent did not answer within {_ANSWER_S:.0f} s (event loop blocked)"
                self._send_json(503, {"ok": False, "live": False, "reasons": [reason]})
                return
            reasons = [] if live_only else _health_reasons(state)
            self._send_json(
                200 if not reasons else 503, {"ok": not reasons, "live": True, "reasons": reasons}
            )

        def _state(self) -> dict[str, Any]:
            return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=_ANSWER_S)

        def _send_json(self, status: int, body: dict[str, Any], cookie: str | None = None) -> None:
            try:
                text = json.dumps(body, ensure_ascii=False, allow_nan=False)
            except ValueError:
                # What the page shows is sanitized before it gets here (drivers and compute make
                # NaN and infinity bad values): one here is a bug. Never NaN on the wire: a 500.
                where = _non_finite_at(body) or "?"
                error = f"internal error: {where} is not a finite number (NaN or infinity)"
                if where not in reported:  # once per place, not once per page refresh
                    reported.add(where)
                    _log.error("http %s: %s; answered 500", self.path.split("?", 1)[0], error)
                status, text = 500, json.dumps({"ok": False, "error": error}, ensure_ascii=False)
            self._send(status, "application/json; charset=utf-8", text.encode(), cookie)

        def _send(
            self,
            status: int,
            content_type: str,
            body: bytes,
            cookie: str | None = None,
            *,
            filename: str | None = None,
        ) -> None:
            self.send_response(status)
            if cookie is not None:
                self.send_header("Set-Cookie", cookie)
            if filename is not None:
                self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
            if self.close_connection:
                self.send_header("Connection", "close")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("http: " + format, *args)

    return Handler


def _static_files() -> dict[str, tuple[str, bytes]]:
    """name -> (content type, bytes) of the page's files, read once at start."""
    folder = files("edge_agent").joinpath("web/static")
    if not folder.is_dir():
        return {}
    return {
        f.name: (_STATIC_TYPES[suffix], f.read_bytes())
        for f in folder.iterdir()
        if (suffix := Path(f.name).suffix) in _STATIC_TYPES
    }


def _match(actions: Mapping[str, Action], parts: list[str]) -> tuple[Action, list[str]] | None:
    """The action whose pattern the path's segments fit, and the segments that matched `*`."""
    for pattern, action in actions.items():
        wanted = pattern.strip("/").split("/")
        if len(wanted) != len(parts):
            continue
        if all(w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
            return action, [p for w, p in zip(wanted, parts, strict=True) if w == "*"]
    return None


def _current_error() -> str:
    exc = sys.exc_info()[1]
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"


def _me(session: Session) -> dict[str, Any]:
    identity = session.identity
    return {"ok": True, "user": identity.name, "role": identity.role, "csrf": session.csrf}


def _non_finite_at(value: Any, path: str = "") -> str | None:
    """Where the first NaN or infinite number in `value` is, e.g. 'devices[0].values.temp'."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "the answer"
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for p, v in items if (found := _non_finite_at(v, p)) is not None), None)


def _health_reasons(state: dict[str, Any]) -> list[str]:
    """Why the agent is not fully healthy; empty when every device and sink is fine."""
    reasons = [
        f"device {d['name']} is not answering: {d['error']}"
        for d in state["devices"]
        if d["up"] is False
    ]
    reasons += [
        f"sink {s['name']} cannot deliver: {s['error']} ({s['pending']} records wait, the oldest "
        f"for {s['oldest_pending_s']:.0f} s)"
        for s in state["sinks"]
        if s["error"]
    ]
    reasons += [f"sink {s['name']}: {s['conflict']}" for s in state["sinks"] if s["conflict"]]
    buffer = state["buffer"]
    if buffer["write_error"]:
        reasons.append(f"the buffer cannot write: {buffer['write_error']}")
    if buffer["dropping"]:
        reasons.append(
            f"the buffer is over its limits: the oldest records are dropped "
            f"({buffer['dropped']} so far)"
        )
    if buffer["full"]:
        reasons.append("the buffer is full: polling is paused until the sinks make room")
    return reasons
