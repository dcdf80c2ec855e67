"""The agent's local HTTP port: the live page, its JSON, /health and Prometheus /metrics.

A standard-library server on its own thread: the page is for one engineer and a Prometheus scrape,
not for the internet. Data is taken from the event loop through `run_coroutine_threadsafe`, so the
server thread never reads the agent's state while the loop changes it.
"""

from __future__ import annotations

__all__ = ["LocalServer"]

import asyncio
import json
import logging
import math
import threading
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge_agent import strict_json

_log = logging.getLogger(__name__)

Snapshot = Callable[[], Coroutine[Any, Any, dict[str, Any]]]
_ANSWER_S = 5.0  # how long a request waits for the event loop before calling the agent stuck
Command = Callable[[dict[str, Any]], dict[str, Any]]


class LocalServer:
    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Snapshot,
        registry: CollectorRegistry,
        command: Command | None = None,
    ) -> None:
        self.command = command
        self.host = host
        self.port = port
        self._snapshot = snapshot
        self._registry = registry
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Bind and serve; raises OSError (e.g. port in use) before anything runs."""
        loop = asyncio.get_running_loop()
        handler = _handler(loop, self._snapshot, self._registry, self.command)
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
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


def _handler(
    loop: asyncio.AbstractEventLoop,
    snapshot: Snapshot,
    registry: CollectorRegistry,
    command: Command | None,
) -> type[BaseHTTPRequestHandler]:
    page = files("edge_agent").joinpath("web/index.html").read_bytes()
    reported: set[str] = set()  # where a non-finite number was found in an answer

    class Handler(BaseHTTPRequestHandler):
        server_version = "edge-agent"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/api/state":
                self._send_json(200, self._state())
            elif path in ("/health", "/health/ready", "/health/live"):
                self._health(live_only=path == "/health/live")
            elif path == "/api/alarms":
                self._send_json(200, {"alarms": self._state()["alarms"]})
            elif path == "/metrics":
                self._state()  # refreshes the buffer gauges
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._send_json(404, {"error": f"no such page: {path}"})

        def do_POST(self) -> None:
            # POST /api/alarms/<id>/<command> with an optional JSON body {"duration_s":..,"user":..}
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if command is None or len(parts) != 4 or parts[:2] != ["api", "alarms"]:
                self._send_json(404, {"ok": False, "error": f"no such command path: {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = strict_json.loads(self.rfile.read(length) or b"{}") if length else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                self._send_json(400, {"ok": False, "error": f"malformed body: {exc}"})
                return
            payload = {**body, "id": parts[2], "command": parts[3]}

            async def run() -> dict[str, Any]:
                return command(payload)

            reply = asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=5)
            self._send_json(200 if reply["ok"] else 400, reply)

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

        def _send_json(self, status: int, body: dict[str, Any]) -> None:
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
            self._send(status, "application/json; charset=utf-8", text.encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("http: " + format, *args)

    return Handler


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
