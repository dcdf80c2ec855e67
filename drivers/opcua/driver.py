"""OPC UA driver on asyncua: subscriptions and batched reads, security, status codes as quality.

The agent's poller drives it like any device: `read()` checks the session (a lost one raises
ConnectError, so the poller marks every tag bad and backs off), reconnects when due, re-creating
subscriptions and reading every tag once so no change made while disconnected is missed, and reads
the polled tags in one batched Read. Subscribed values arrive through `listener` as the server
reports them, with their source timestamps. Every value carries its own status: one bad node
never spoils the others.
"""

from __future__ import annotations

__all__ = ["OpcUaDriver"]

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import (
    DataChangeEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)
from asyncua.crypto import security_policies as policies

from drivers.base import Changes, Reading
from drivers.opcua.config import OpcUaDeviceConfig, OpcUaSecurityConfig, OpcUaTagConfig
from drivers.opcua.pki import fingerprint, is_trusted, own_certificate
from edge_agent.errors import ConnectError
from edge_agent.redaction import without_credentials
from edge_agent.samples import Quality, Value

_log = logging.getLogger(__name__)

# Strongest first: what `policy: auto` picks among the endpoints a server offers.
_POLICIES: dict[str, type[policies.SecurityPolicy]] = {
    "Aes256_Sha256_RsaPss": policies.SecurityPolicyAes256Sha256RsaPss,
    "Basic256Sha256": policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": policies.SecurityPolicyAes128Sha256RsaOaep,
}
_READ_CHUNK = 500  # nodes per Read request: well inside common server limits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_QUEUE_MAX = 20_000  # changes waiting per subscription: 2 x asyncua's MaxNotificationsPerPublish
_NSU = re.compile(r"^nsu=([^;]+);(.+)$")

Listener = Callable[[Changes], None]

# A data value without a status is Good (Part 4, 7.7.1); made once, not per value.
_GOOD = ua.StatusCode(ua.UInt32(ua.StatusCodes.Good))


class OpcUaDriver:
    def __init__(self, name: str, config: OpcUaDeviceConfig, *, agent_id: str, pki: Path) -> None:
        self.name = name
        self.config = config
        self.agent_id = agent_id
        self.pki = pki
        self.listener: Listener | None = None
        self._client: Client | None = None
        self._lost: str | None = None
        self._nodes: dict[str, Node] = {}
        self._unresolved: dict[str, str] = {}
        self._namespaces: dict[str, int] = {}
        self._polled: list[str] = []
        self._reread = True
        self._pending: list[Changes] = []
        self._consumers: list[asyncio.Task[None]] = []
        self._flush_scheduled = False

    @property
    def endpoint(self) -> str:
        return without_credentials(self.config.url)  # opc.tcp://user:pass@host is possible

    @property
    def tag_names(self) -> list[str]:
        return list(self.config.tags)

    def _mode(self, tag: OpcUaTagConfig) -> str:
        return tag.mode or self.config.mode

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        await self.close()
        client = await self.open_session(lost=self._connection_lost)
        self._client, self._lost = client, None
        try:
            await self._resolve(client)
            await self._subscribe(client)
        except (OSError, TimeoutError, ua.UaError, ConnectionError) as exc:
            await self.close()
            raise ConnectError(
                f"{self.config.url}: setting up tags failed: {_short(exc)}"
            ) from None
        self._reread = True

    async def open_session(
        self, lost: Callable[[Exception], Coroutine[Any, Any, None]] | None = None
    ) -> Client:
        """A session as the device's configuration says (security, user, the agent's own
        certificate), and nothing more: `connect` sets up the tags on it, `opcua browse` looks
        around with it. Raises ConnectError."""
        c = self.config
        # The keep-alive is not tied to the poll interval: under load a 1 s check times out and a
        # busy but healthy server would be taken for a dead one.
        client = Client(c.url, timeout=c.timeout_s, watchdog_intervall=max(5.0, c.timeout_s))
        client.name = client.description = f"edge-agent {self.agent_id}"
        client.application_uri = f"urn:edge-agent:{self.agent_id}"
        client.product_uri = "urn:edge-agent"
        if c.username is not None:
            client.set_user(c.username)
            if c.password is not None:
                client.set_password(c.password.get_secret_value())
        if c.user_certificate is not None and c.user_private_key is not None:
            await client.load_client_certificate(str(c.user_certificate))  # type: ignore[unused-ignore]
            await client.load_private_key(c.user_private_key)
        try:
            await self._secure(client)
            client.connection_lost_callback = lost
            await client.connect()
        except ConnectError:
            raise
        except (OSError, TimeoutError, ua.UaError, ConnectionError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise ConnectError(f"cannot connect to {c.url}: {_short(exc)}") from None
        return client

    async def _secure(self, client: Client) -> None:
        c = self.config
        if c.security_none:
            return
        wanted = (
            c.security if isinstance(c.security, OpcUaSecurityConfig) else OpcUaSecurityConfig()
        )
        mode = getattr(ua.MessageSecurityMode, wanted.mode)
        probe = Client(c.url, timeout=c.timeout_s)
        try:
            endpoints = await probe.connect_and_get_server_endpoints()
        except (OSError, TimeoutError, ua.UaError, ConnectionError) as exc:
            raise ConnectError(f"cannot connect to {c.url}: {_short(exc)}") from None
        offered = {(e.SecurityPolicyUri, e.SecurityMode): e for e in endpoints}
        names = list(_POLICIES) if wanted.policy == "auto" else [wanted.policy]
        for name in names:
            endpoint = offered.get((_POLICIES[name].URI, mode))
            if endpoint is not None:
                break
        else:
            have = sorted(
                {
                    f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}"
                    for e in endpoints
                }
            )
            raise ConnectError(
                f"{c.url} offers no {wanted.policy} endpoint with {wanted.mode} (it offers: {', '.join(have)}); "
                "choose one of those, or 'security: none' for a server without security"
            )
        server_cert = _first_certificate(endpoint.ServerCertificate)
        if not is_trusted(self.pki, server_cert):
            raise ConnectError(
                f"the certificate of {c.url} is not trusted (SHA-256 {fingerprint(server_cert)}); "
                f"check it and run: edge-agent opcua trust {c.url}"
            )
        own = await own_certificate(self.pki, self.agent_id)
        await client.set_security(
            _POLICIES[name],
            certificate=str(own.cert),
            private_key=str(own.key),
            server_certificate=server_cert,
            mode=mode,
        )

    async def _connection_lost(self, exc: Exception) -> None:
        self._lost = _short(exc) or "connection lost"

    async def close(self) -> None:
        """Close the session and the channel politely within `timeout_s`, else drop the socket.

        Not `asyncio.wait_for`: on Python 3.11 it waits for the cancelled disconnect to end, which
        a hung server stretches by a timeout per request (and asyncua's cleanup can swallow the
        cancellation). A wait with a timeout, then dropping the TCP connection, cannot hang; the
        socket is dropped too when the caller gives up first (the agent's stop is bounded).
        """
        client, self._client = self._client, None
        self._nodes = {}
        consumers, self._consumers = self._consumers, []
        for task in consumers:
            task.cancel()
        if client is None:
            return
        client.connection_lost_callback = None
        goodbye = asyncio.ensure_future(client.disconnect())
        try:
            await asyncio.wait({goodbye}, timeout=self.config.timeout_s)
        finally:
            if not goodbye.done():
                goodbye.cancel()
                with contextlib.suppress(Exception):
                    client.disconnect_socket()
        if not goodbye.cancelled() and goodbye.done():
            goodbye.exception()  # retrieved: a failed goodbye to a server that is gone is no news

    # ------------------------------------------------------------------ tags

    async def _resolve(self, client: Client) -> None:
        """NodeIds for every tag; namespace URIs are looked up anew at each connect.

        The namespace array is read once per connect, not once per tag: with 10,000 tags that
        was 8.6 s of a 13 s connect.
        """
        self._nodes, self._unresolved = {}, {}
        self._namespaces = {uri: i for i, uri in enumerate(await client.get_namespace_array())}
        for name, tag in self.config.tags.items():
            try:
                if tag.node is not None:
                    self._nodes[name] = client.get_node(await self._node_id(client, tag.node))
                else:
                    assert tag.path is not None
                    self._nodes[name] = await client.nodes.objects.get_child(tag.path.split("/"))
            except ua.UaStatusCodeError as exc:
                self._unresolved[name] = f"{tag.node or tag.path}: {_short(exc)}"
            except ValueError as exc:
                self._unresolved[name] = f"{tag.node or tag.path}: {exc}"

    async def _node_id(self, client: Client, text: str) -> ua.NodeId:
        match = _NSU.match(text)
        if match is None:
            return ua.NodeId.from_string(text)
        uri, rest = match.groups()
        index = self._namespaces.get(uri)
        if index is None:
            raise ValueError(f"the server has no namespace {uri}")
        return ua.NodeId.from_string(f"ns={index};{rest}")

    async def _subscribe(self, client: Client) -> None:
        c = self.config
        names = [n for n, t in c.tags.items() if self._mode(t) == "subscribe" and n in self._nodes]
        self._by_node = {self._nodes[n].nodeid: n for n in names}
        self._polled = [
            n for n, t in c.tags.items() if self._mode(t) == "poll" and n in self._nodes
        ]
        for start in range(0, len(names), c.max_items_per_subscription):
            chunk = names[start : start + c.max_items_per_subscription]
            # Iterator mode: asyncua queues the changes of a publish response and one task per
            # subscription takes them (in handler mode it makes a task per changed value, half
            # the agent's CPU at 10,000 values/s). The queue holds two responses at asyncua's
            # MaxNotificationsPerPublish; if it overflows the session starts again and every
            # tag is read anew, rather than changes going missing unnoticed.
            subscription = await client.create_subscription(
                c.publishing_interval_ms,
                None,
                queue_maxsize=_QUEUE_MAX,
                overflow=OverflowPolicy.DISCONNECT,
            )
            subscription.set_overflow_disconnect_handler(self._overflowed)
            self._consumers.append(
                asyncio.create_task(self._consume(subscription), name=f"opcua {self.name}")
            )
            plain = [n for n in chunk if c.tags[n].deadband is None]
            for sampling in sorted({self._sampling(n) for n in plain}):
                nodes = [self._nodes[n] for n in plain if self._sampling(n) == sampling]
                results = await subscription.subscribe_data_change(
                    nodes, queuesize=c.queue_size, sampling_interval=ua.Double(sampling)
                )
                for name, result in zip(
                    [n for n in plain if self._sampling(n) == sampling], results, strict=True
                ):
                    if isinstance(result, ua.StatusCode):
                        self._unresolved[name] = f"subscription refused: {result.name}"
            for name in chunk:
                tag = c.tags[name]
                if tag.deadband is not None:
                    kind = ua.UInt32(1 if tag.deadband_type == "absolute" else 2)
                    await subscription.deadband_monitor(
                        self._nodes[name],
                        ua.Double(tag.deadband),
                        deadbandtype=kind,
                        queuesize=c.queue_size,
                    )

    def _sampling(self, name: str) -> float:
        tag = self.config.tags[name]
        return (
            tag.sampling_interval_ms
            if tag.sampling_interval_ms is not None
            else self.config.sampling_interval_ms
        )

    # ------------------------------------------------------------------ reading

    async def read(self) -> Reading:
        if self._lost is not None:
            reason, self._lost = self._lost, None  # reported once; the next read reconnects
            await self.close()
            raise ConnectError(f"{self.config.url}: {reason}")
        if self._client is None:
            await self.connect()
        assert self._client is not None
        # After a (re)connect every tag once; then only the polled ones, a list made at connect.
        names = list(self._nodes) if self._reread else self._polled
        reading = Reading(failed=dict(self._unresolved))
        for start in range(0, len(names), _READ_CHUNK):
            chunk = names[start : start + _READ_CHUNK]
            try:
                values = await self._client.read_attributes([self._nodes[n] for n in chunk])
            except (OSError, TimeoutError, ua.UaError, ConnectionError) as exc:
                await self.close()
                raise ConnectError(f"{self.config.url}: read failed: {_short(exc)}") from None
            for name, data_value in zip(chunk, values, strict=True):
                self._take(name, data_value, reading.values, reading.quality, reading.failed)
        self._reread = False
        return reading

    def _take(
        self,
        name: str,
        data_value: ua.DataValue,
        values: dict[str, Value],
        quality: dict[str, Quality],
        failed: dict[str, str] | None,
    ) -> None:
        status = data_value.StatusCode or _GOOD
        if status.is_bad():
            _unusable(name, f"status {status.name}", values, quality, failed)
            return
        variant = data_value.Value
        raw = variant.Value if variant is not None else None
        value = _plain(raw, self.config.tags[name])
        if isinstance(value, float) and not math.isfinite(value):
            # NaN or infinity: nothing a chart or a rule can use, and not valid JSON. Bad, like a
            # bad status; the reason names the wire type and whether scaling overflowed.
            assert variant is not None
            kind = variant.VariantType.name
            reason = f"{kind} is {raw}" if not _finite(raw) else f"{kind} is {value} once scaled"
            _unusable(name, reason, values, quality, failed)
            return
        values[name] = value
        if value is None:
            quality[name] = Quality.BAD
        elif status.is_uncertain():
            quality[name] = Quality.UNCERTAIN

    def notify(self, node: Node, data_value: ua.DataValue) -> None:
        """A data change from a subscription: gathered with the others of its publish response
        (asyncua hands them over one by one, then the loop runs `_flush`), so a response of
        thousands of values stamped each at its own time is one record, not thousands."""
        name = self._by_node.get(node.nodeid)
        if name is None or self.listener is None:
            return
        stamp = data_value.SourceTimestamp or data_value.ServerTimestamp
        ts_ns = _ns(stamp) if isinstance(stamp, datetime) else time.time_ns()
        pending = self._pending
        if not pending or name in pending[-1].values:  # a tag's next change goes in the next one
            pending.append(Changes())
        changes = pending[-1]
        self._take(name, data_value, changes.values, changes.quality, None)
        changes.times[name] = ts_ns
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _consume(self, subscription: Subscription) -> None:
        async for event in subscription:  # ends when the subscription is deleted
            try:
                if isinstance(event, DataChangeEvent):
                    self.notify(event.node, event.data.monitored_item.Value)
                elif isinstance(event, StatusChangeEvent):
                    code = event.notification.Status
                    if isinstance(code, ua.StatusCode) and code.is_bad():
                        self._lost = f"subscription ended: {code.name}"
            except Exception:
                # One change this driver cannot take must not end the subscription's task: the
                # next changes would be lost without a word (asyncua's handler mode, used
                # before, caught this per change too).
                _log.exception("device %s: a data change could not be taken", self.name)

    def reread_all(self) -> None:
        """The next read takes every tag, subscribed ones too (changes were missed meanwhile)."""
        self._reread = True

    def _overflowed(self) -> None:
        self._lost = "the agent fell behind the server's data changes"

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if self.listener is None:
            return
        for changes in pending:
            self.listener(changes)


def _ns(stamp: datetime) -> int:
    """Nanoseconds since the epoch, exactly (through a float, 3 ms after a second came out as
    2.999999 and was cut to 2). OPC UA times are UTC; asyncua gives them naive or aware."""
    aware = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND * 1000


def _unusable(
    name: str,
    reason: str,
    values: dict[str, Value],
    quality: dict[str, Quality],
    failed: dict[str, str] | None,
) -> None:
    """A value that cannot be used: a polled one is reported with its reason (the poller marks it
    bad and logs the reason once), a subscribed one is handed on as None with quality bad."""
    if failed is not None:
        failed[name] = reason
    else:
        values[name], quality[name] = None, Quality.BAD


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _plain(value: Any, tag: OpcUaTagConfig) -> Value:
    """A plain value: numbers (scaled), booleans, text; None for what has no plain form.

    A float may come out NaN or infinite (sent so, or overflowing when scaled): `_take` judges it.
    Arrays are never looked into, so a NaN inside one cannot slip through.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        if tag.scale != 1.0 or tag.offset != 0.0:
            return value * tag.scale + tag.offset
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, datetime):
        return value.isoformat()
    return None  # arrays, structures, byte strings: not a single value


def _first_certificate(der: bytes) -> bytes:
    """A server may send a certificate chain; the first DER element is its own certificate."""
    if len(der) > 4 and der[0] == 0x30 and der[1] == 0x82:
        return der[: int.from_bytes(der[2:4], "big") + 4]
    return der


def _short(exc: BaseException) -> str:
    if isinstance(exc, ua.UaStatusCodeError):
        return ua.StatusCode(exc.code).name
    return str(exc) or type(exc).__name__
