"""InfluxDB sink: line protocol, synchronously, on a worker thread.

api v2: /api/v2/write through influxdb-client. Synchronous writes, not the client's batching
mode: batching reports a failed write only to a callback and drops the batch, while this sink
must advance its cursor only after the server answered 2xx.
api v1 (InfluxDB 1.x): /write?db=…&rp=…&precision=ms through urllib3, with basic auth. The
client library speaks only the v2 API, which 1.x servers before 1.8 (Debian's is 1.6) lack.
"""

from __future__ import annotations

__all__ = ["InfluxSink"]

import asyncio
import urllib.parse
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from edge_agent.errors import ConnectError, RejectedError
from edge_agent.records import StoredRecord
from edge_agent.redaction import scrub, without_credentials
from edge_agent.sinks.base import SinkContext
from edge_agent.sinks.influxdb.config import InfluxSinkConfig
from edge_agent.sinks.influxdb.lineproto import KINDS, lines_for

# Answers about the content of a batch: resending it unchanged cannot succeed. 400 bad line
# protocol or (1.x) a field type conflict, 413 too large (also from a proxy in front), 422 (2.x)
# a field type conflict or a point outside the retention. Every other answer (401, 403, 404 no
# such bucket or database, 429, 5xx) is about the server or the configuration, and is retried
# with backoff until it is fixed.
_REFUSED = {400, 413, 422}


class _Answer(Exception):
    """A server's answer other than 2xx."""

    def __init__(self, status: int | None, reason: str, body: str) -> None:
        super().__init__(status, reason, body)
        self.status, self.reason, self.body = status, reason, body


class InfluxSink:
    KINDS = KINDS

    @classmethod
    def create(cls, name: str, config: InfluxSinkConfig, context: SinkContext) -> InfluxSink:
        return cls(config, context.config.agent.id, name=name)

    def __init__(self, config: InfluxSinkConfig, agent_id: str, *, name: str = "influxdb") -> None:
        self.name = name
        self.config = config
        self.agent_id = agent_id
        self._client: Any = None  # influxdb_client.InfluxDBClient (v2), loaded only for v2
        self._http: urllib3.PoolManager | None = None  # v1
        self._connected: bool | None = None  # None: no request yet

    @property
    def connected(self) -> bool:
        """HTTP has no standing link: reachable unless the last request said otherwise (a sink
        that gathers a batch for a second has sent nothing yet, and is not down for it)."""
        return self._connected is not False

    @property
    def endpoint(self) -> str:
        c = self.config
        where = f"database {c.database}" if c.api == "v1" else f"bucket {c.bucket}"
        return f"{without_credentials(c.url)} {where}"

    async def start(self) -> None:
        if self.config.api == "v1":
            self._start_v1()
            return
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = self.config.token.get_secret_value() if self.config.token else ""
        self._client = InfluxDBClient(
            url=self.config.url,
            token=token,
            org=self.config.org,
            timeout=int(self.config.timeout_s * 1000),
            verify_ssl=self.config.verify_ssl,
            enable_gzip=False,
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def _start_v1(self) -> None:
        c = self.config
        query = {"db": c.database, "precision": "ms"}
        if c.retention_policy:
            query["rp"] = c.retention_policy
        self._v1_url = f"{c.url.rstrip('/')}/write?{urllib.parse.urlencode(query)}"
        self._v1_headers = {"Content-Type": "text/plain; charset=utf-8"}
        if c.username:
            password = c.password.get_secret_value() if c.password else ""
            self._v1_headers |= urllib3.make_headers(basic_auth=f"{c.username}:{password}")
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=c.timeout_s),
            retries=False,
            cert_reqs="CERT_REQUIRED" if c.verify_ssl else "CERT_NONE",
        )

    async def deliver(self, records: list[StoredRecord]) -> None:
        try:
            # Formatting runs on the worker thread too: it is the sink's main CPU cost, and the
            # event loop must stay free for polling.
            await asyncio.to_thread(self._post, records)
        except _Answer as exc:
            self._connected = exc.status is not None and exc.status < 500
            # What the server says can hold what it was sent (a proxy echoing the token).
            answer = scrub(f"InfluxDB answered {exc.status} {exc.reason}: {exc.body}")
            if exc.status == 404 and self.config.api == "v1":
                answer += f" (create it: CREATE DATABASE {self.config.database})"
            if exc.status in _REFUSED:
                raise RejectedError(answer) from None
            raise ConnectError(answer) from None
        except (HTTPError, OSError) as exc:
            self._connected = False
            raise ConnectError(
                f"cannot reach InfluxDB at {without_credentials(self.config.url)}: "
                f"{type(exc).__name__}"
            ) from None
        self._connected = True

    def _post(self, records: list[StoredRecord]) -> None:
        lines: list[str] = []
        for record in records:
            lines += lines_for(record, self.agent_id)
        if not lines:
            return
        body = "\n".join(lines)
        if self._http is not None:
            self._post_v1(body)
            return
        from influxdb_client.rest import ApiException

        try:
            # One string: influxdb-client serialises a list item by item, 12x slower here.
            self._write.write(
                bucket=self.config.bucket, org=self.config.org, record=body, write_precision="ms"
            )
        except ApiException as exc:
            raise _Answer(exc.status, str(exc.reason), _text(exc.body)) from None

    def _post_v1(self, body: str) -> None:
        assert self._http is not None
        response = self._http.request(
            "POST", self._v1_url, body=body.encode(), headers=self._v1_headers
        )
        if not 200 <= response.status < 300:
            raise _Answer(response.status, response.reason or "", _text(response.data))

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None
        if self._http is not None:
            self._http.clear()
            self._http = None


def _text(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip() if isinstance(body, str) else ""
    return text[:300] or "(no details)"
