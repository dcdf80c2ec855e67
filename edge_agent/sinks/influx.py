"""InfluxDB v2 sink: line protocol to /api/v2/write through influxdb-client, synchronously.

Synchronous writes on a worker thread, not the client's batching mode: batching reports a failed
write only to a callback and drops the batch, while this sink must advance its cursor only after
the server answered 2xx.
"""

from __future__ import annotations

__all__ = ["InfluxSink"]

import asyncio

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from edge_agent.config_models import InfluxSinkConfig
from edge_agent.errors import ConnectError, RejectedError
from edge_agent.outbox import StoredRecord
from edge_agent.redaction import scrub, without_credentials
from edge_agent.sinks.lineproto import lines_for

# Answers about the content of a batch: resending it unchanged cannot succeed. 400 bad line
# protocol, 413 too large (also from a proxy in front), 422 e.g. a field type conflict or a point
# outside the retention. Every other answer (401, 403, 404 bucket, 429, 5xx) is about the server or
# the configuration, and is retried with backoff until it is fixed.
_REFUSED = {400, 413, 422}


class InfluxSink:
    name = "influxdb"

    def __init__(self, config: InfluxSinkConfig, agent_id: str) -> None:
        self.config = config
        self.agent_id = agent_id
        self._client: InfluxDBClient | None = None
        self._connected: bool | None = None  # None: no request yet

    @property
    def connected(self) -> bool:
        """HTTP has no standing link: reachable unless the last request said otherwise (a sink
        that gathers a batch for a second has sent nothing yet, and is not down for it)."""
        return self._connected is not False

    @property
    def endpoint(self) -> str:
        return f"{without_credentials(self.config.url)} bucket {self.config.bucket}"

    async def start(self) -> None:
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

    async def deliver(self, records: list[StoredRecord]) -> None:
        try:
            # Formatting runs on the worker thread too: it is the sink's main CPU cost, and the
            # event loop must stay free for polling.
            await asyncio.to_thread(self._post, records)
        except ApiException as exc:
            self._connected = exc.status is not None and exc.status < 500
            # What the server says can hold what it was sent (a proxy echoing the token).
            answer = scrub(f"InfluxDB answered {exc.status} {exc.reason}: {_body(exc)}")
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
        if lines:
            # One string: influxdb-client serialises a list item by item, 12x slower here.
            self._write.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record="\n".join(lines),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # typed str upstream
            )

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None


def _body(exc: ApiException) -> str:
    text = (exc.body or "").strip() if isinstance(exc.body, str) else ""
    return text[:300] or "(no details)"
