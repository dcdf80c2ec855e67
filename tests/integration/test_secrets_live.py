"""A running agent shows no secret: a server that echoes the Authorization header, a device URL
with a user and password. Checked on the snapshot (/api/state), the /health reasons and the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edge_agent.http import _health_reasons
from edge_agent.redaction import SafeLogFormatter
from edge_agent.web.view_model import page_state
from tests.integration.test_pipeline import running
from tests.support.servers import free_port

TOKEN = "tok-echoed-4be1d07c93"
DEVICE_PASSWORD = "pw-device-9a3f51"


class _EchoingAuth(BaseHTTPRequestHandler):
    """Refuses every write and says what it was sent, as some proxies and servers do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {"code": "unauthorized", "message": f"bad {self.headers.get('Authorization')}"}
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def echoing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _EchoingAuth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What the agent's log handler would write (the formatter `setup_logging` installs)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeLogFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_no_secret_on_the_page_in_health_or_in_the_log(
    tmp_path: Path, echoing_server: str, log_text: io.StringIO
) -> None:
    token_file = tmp_path / "influx-token"
    token_file.write_text(TOKEN + "\n")
    closed = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent:\n  id: secrets-{closed}\n  buffer_path: {tmp_path / 'outbox.db'}\n"
        f"  pki_path: {tmp_path / 'pki'}\n  http: {{enabled: false}}\n"
        "devices:\n"
        "  press:\n"
        "    driver: opcua\n"
        f"    url: opc.tcp://operator:{DEVICE_PASSWORD}@127.0.0.1:{closed}\n"
        "    timeout_s: 1\n"
        "    tags: {temp: {node: 'ns=2;i=1'}}\n"
        "sinks:\n"
        f"  influxdb: {{url: '{echoing_server}', bucket: b, org: o, token: '${{file:{token_file}}}'}}\n"
    )
    async with running(config) as agent:
        deadline = time.monotonic() + 20
        await asyncio.sleep(0.5)  # the buffer opens first
        while True:
            state = await page_state(agent)
            if state["devices"][0]["error"] and state["sinks"][0]["error"]:
                break
            assert time.monotonic() < deadline, state
            await asyncio.sleep(0.2)
    shown = json.dumps(state) + "\n".join(_health_reasons(state))
    assert TOKEN not in shown and DEVICE_PASSWORD not in shown and "operator:" not in shown
    assert (
        state["sinks"][0]["error"]
        == 'InfluxDB answered 401 Unauthorized: {"code": "unauthorized", "message": "bad Token ***"}'
    )
    assert state["devices"][0]["endpoint"] == f"opc.tcp://127.0.0.1:{closed}"
    assert f"opc.tcp://127.0.0.1:{closed}" in state["devices"][0]["error"]
    logged = log_text.getvalue()
    assert "bad Token ***" in logged
    assert TOKEN not in logged and DEVICE_PASSWORD not in logged and "operator:" not in logged
