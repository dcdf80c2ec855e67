"""The Sparkplug B sink: the edge node (node.py) driven over the shared MQTT transport.

A session, as the sink runs it (tck-ids in node.py and host.py):
  - before every CONNECT (paho's reconnects too) the node's NDEATH becomes the will, with the next
    bdSeq; the bdSeq is kept in the buffer file's meta table before the CONNECT goes out, so a
    restart continues from it and a host never matches an old will to a new birth. Clean session.
  - connected: subscribe to NCMD (and the primary host's STATE), then NBIRTH and DBIRTHs at once,
    or once the primary host says it is online.
  - records: NDATA/DDATA by exception, in the order the node made them, QoS 0 (the specification's
    for data). Records buffered before the session's birth (the buffer's newest sequence number
    then) are history: is_historical, with their own time stamps; what is current follows.
  - NCMD 'Node Control/Rebirth': the births again. STATE offline: NDEATH, disconnect, connect
    again, and wait for online. Connection lost: the broker publishes the will; nothing is sent
    until the next birth. A clean stop: NDEATH, its PUBACK, then DISCONNECT.

The node is touched from paho's thread (will, births, commands, a lost connection) and from the
event loop (records): one lock orders them, and every message is handed to paho under it, so seq
goes out in the order the node counted it.

What the buffer cursor means here: a batch counts as delivered once paho wrote its messages to a
live session's connection (QoS 0 has no acknowledgement). A batch whose session dropped before
then is sent again in the next session, as history. The node's newest values are saved beside
the buffer (every 30 s while they change, and at a stop), so the births after a restart carry them.
"""

from __future__ import annotations

__all__ = ["SparkplugSink"]

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from edge_agent.errors import ConnectError
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.records import StoredRecord
from edge_agent.sinks.base import SinkContext
from edge_agent.sinks.mqtt.link import MqttLink
from edge_agent.sinks.mqtt.transport import MqttTransport, Will
from edge_agent.sinks.sparkplug.config import SparkplugSinkConfig
from edge_agent.sinks.sparkplug.host import PrimaryHost
from edge_agent.sinks.sparkplug.layout import NodeLayout, layout_for
from edge_agent.sinks.sparkplug.node import EdgeNode, Message, NoSessionError
from edge_agent.sinks.sparkplug.twin import Seen, TwinWatch
from edge_agent.sinks.sparkplug.updates import KINDS

_log = logging.getLogger(__name__)
_SAVE_EVERY_S = 30.0  # at most this long between a change of the newest values and their save


class SparkplugSink:
    KINDS = KINDS

    @classmethod
    def create(cls, name: str, config: SparkplugSinkConfig, context: SinkContext) -> SparkplugSink:
        agent_id = context.config.agent.id
        layout = layout_for(context.config, config, agent_id)
        return cls(name, config, layout, context.outbox, agent_id, context.metrics)

    def __init__(
        self,
        name: str,
        config: SparkplugSinkConfig,
        layout: NodeLayout,
        outbox: Outbox,
        agent_id: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.layout = layout
        self.outbox = outbox
        self.node = EdgeNode(layout)  # its bdSeq comes from the buffer file in start()
        self.host = PrimaryHost(config.primary_host_id) if config.primary_host_id else None
        self._lock = threading.Lock()  # the node's, between paho's thread and the loop's
        self._loop: asyncio.AbstractEventLoop | None = None
        self._born = asyncio.Event()  # set on the loop after each birth
        self._birth_seq = 0  # the buffer's newest record at the session's birth
        self._restarting: asyncio.Task[None] | None = None
        self._owed_rebirth: asyncio.TimerHandle | None = None  # a rebirth asked for too soon
        self._closing = False
        self._saved_at = time.monotonic()
        self._unsaved = False
        link = MqttLink(
            config.host,
            config.port,
            config.mqtt_client_id(agent_id),
            config.username,
            config.password,
            config.tls,
            config.keepalive_s,
        )
        self.transport = MqttTransport(link)
        self.transport.will = self._will
        self.transport.on_connect = self._on_connect
        self.transport.on_message = self._on_message
        self.transport.on_disconnect = self._on_disconnect
        self.transport.on_connect_failed = self._on_connect_failed
        self.twin = TwinWatch(name, layout.group_id, layout.edge_node_id, self.transport.endpoint)
        self._nbirth_topic = self.node.topic("NBIRTH")
        self._dcmd_prefix = self.node.topic("DCMD") + "/"
        self._metrics = metrics

    @property
    def connected(self) -> bool:
        """A Sparkplug session is up: connected, and born."""
        return self.transport.connected and self.node.born

    @property
    def endpoint(self) -> str:
        return f"{self.transport.endpoint} as {self.layout.group_id}/{self.layout.edge_node_id}"

    @property
    def waiting(self) -> str | None:
        if self.transport.connected and self.host is not None and not self.host.online:
            return f"waiting for the primary host {self.host.host_id} to be online (its STATE)"
        return None

    @property
    def conflict(self) -> str | None:
        return self.twin.conflict() or self.transport.unstable

    @property
    def _bd_seq_key(self) -> str:
        return f"sparkplug:{self.name}:bdSeq"

    @property
    def _latest_key(self) -> str:
        return f"sparkplug:{self.name}:latest"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        bd_seq = await self.outbox.meta(self._bd_seq_key)
        self.node = EdgeNode(self.layout, bd_seq=int(bd_seq) if bd_seq is not None else None)
        saved = await self.outbox.load_state(self._latest_key)
        if saved is not None:
            try:
                self.node.restore(json.loads(saved))
            except (ValueError, TypeError, KeyError) as exc:
                _log.warning("%s: the saved newest values cannot be used (%s)", self.name, exc)
        await self.transport.start()

    async def deliver(self, records: list[StoredRecord]) -> None:
        """Wait for a session, publish the records' messages in it; in the next session (as
        history) if it ends before they went out."""
        while True:
            sent = self._send(records)
            if sent is None:
                await self._session()
                continue
            mids, since = sent
            try:
                await self.transport.acked(mids, qos0=mids, since=since)
            except ConnectError:
                continue
            break
        self._unsaved = True
        if time.monotonic() - self._saved_at >= _SAVE_EVERY_S:
            await self._save_latest()

    async def close(self) -> None:
        """NDEATH (QoS 1, acknowledged) and DISCONNECT, within the transport's bound."""
        self._closing = True
        if self._restarting is not None:
            self._restarting.cancel()
        if self._owed_rebirth is not None:
            self._owed_rebirth.cancel()
        with self._lock:
            death = self._death()
        await self.transport.close(death)
        if self._unsaved:
            await self._save_latest()

    # ---- on the event loop

    def _send(self, records: list[StoredRecord]) -> tuple[list[int], int] | None:
        """Hand the records' messages to paho; None when there is no session to send them in."""
        now = time.time_ns()
        with self._lock:
            if not self.node.born:
                return None
            since = self.transport.generation
            history = [r for r in records if r.seq <= self._birth_seq]
            live = [r for r in records if r.seq > self._birth_seq]
            try:
                messages = self.node.process(history, now, historical=True) if history else []
                messages += self.node.process(live, now) if live else []
                mids = self._publish(messages)
            except (NoSessionError, ConnectError):
                return None  # the connection went meanwhile: sent again in the next session
        return mids, since

    async def _session(self) -> None:
        """Until a session is born; a moment, when one looks alive but its connection just went
        (paho's thread is about to end it)."""
        self._born.clear()
        if self.node.born and self.node.rebirth_owed_ns is None:
            await asyncio.sleep(0.05)
        else:
            await self._born.wait()

    async def _save_latest(self) -> None:
        with self._lock:
            latest = json.dumps(self.node.latest(), separators=(",", ":"))
        self._saved_at, self._unsaved = time.monotonic(), False
        await self.outbox.save_state(self._latest_key, latest)

    async def _restart(self, death: Will | None) -> None:
        """The primary host went offline: the NDEATH made when it did, DISCONNECT, and connect
        again to wait for it."""
        await self.transport.close(death)
        if not self._closing:
            await self.transport.start()

    # ---- on paho's network thread (transport hooks)

    def _will(self) -> Will:
        with self._lock:
            will = self.node.will(time.time_ns())
        self._keep_bd_seq()
        return Will(will.topic, will.payload, will.qos, will.retain)

    def _on_connect_failed(self) -> None:
        # No CONNECT went out: bdSeq counts CONNECTs, so the next one carries this one's.
        with self._lock:
            self.node.withdraw_will()
        self._keep_bd_seq()

    def _keep_bd_seq(self) -> None:
        bd_seq = self.node.bd_seq
        if bd_seq is None:
            return
        try:
            self.outbox.put_meta_now(self._bd_seq_key, str(bd_seq))
        except (RuntimeError, TimeoutError, sqlite3.Error) as exc:  # closed, held up, disk
            # Connecting all the same: the data does not wait for a file. Only a restart before
            # the file takes writes again could repeat a bdSeq of this run.
            _log.warning("%s: bdSeq %s could not be kept in the buffer: %s", self.name, bd_seq, exc)

    def _on_connect(self) -> None:
        topics = [
            self.node.ncmd_topic,
            self.node.dcmd_filter,
            *([self.host.topic] if self.host else []),
        ]
        self.transport.subscribe(topics, "host applications cannot command this edge node")
        self.transport.subscribe(
            [self._nbirth_topic],
            "another edge node born under this one's group and edge node id goes unnoticed",
        )
        if self.host is None:
            self._birth()
        else:
            _log.info(
                "%s: connected to %s; waiting for the primary host %s to be online",
                self.name,
                self.transport.endpoint,
                self.host.host_id,
            )

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self._nbirth_topic:
            seen = self.twin.received(payload)
            if seen is not Seen.OWN and self._metrics is not None:
                self._metrics.sink_conflicts.labels(self.name).inc()
            if seen is Seen.NEW_TWIN:
                self._answer_twin()
            return
        if topic == self.node.ncmd_topic:
            with self._lock:
                self._publish_quietly(self.node.command(payload, time.time_ns()))
                owed = self.node.rebirth_owed_ns
            if owed is not None:
                self._on_loop(lambda: self._rebirth_at(owed))
            return
        if topic.startswith(self._dcmd_prefix):
            with self._lock:
                self.node.device_command(topic, payload, time.time_ns())
            return
        host = self.host
        if host is None:
            return
        online = host.update(topic, payload)
        if online is True and not self.node.born:
            _log.info("%s: the primary host %s is online", self.name, host.host_id)
            self._birth()
        elif online is False and self.node.born:
            _log.warning(
                "%s: the primary host %s went offline: NDEATH, and connecting again to wait for it",
                self.name,
                host.host_id,
            )
            with self._lock:  # no data from here on (tck-id-message-flow-edge-node-birth-
                death = self._death()  # publish-phid-offline): the NDEATH goes out first
            self._on_loop(lambda: self._restart_soon(death))

    def _on_disconnect(self) -> None:
        with self._lock:
            self.node.lost()
        if self.host is not None:
            self.host.disconnected()

    def _birth(self) -> None:
        with self._lock:
            try:
                messages = self.node.birth(time.time_ns())
            except NoSessionError:  # the connection went again already
                return
            self._birth_seq = self.outbox.last_seq
            self._publish_quietly(messages)
        _log.info(
            "%s: born as %s/%s (bdSeq %s); records up to %d go as history",
            self.name,
            self.layout.group_id,
            self.layout.edge_node_id,
            self.node.bd_seq,
            self._birth_seq,
        )
        self._on_loop(self._born.set)

    def _answer_twin(self) -> None:
        """A birth of this node's own, so that the twin, born later, hears of it too."""
        with self._lock:
            if not self.node.born:
                return  # the twin hears of this node at its birth
            self._publish_quietly(self.node.rebirth(time.time_ns()))
        _log.info(
            "%s: answered the other node's birth with one of its own, so that it hears of this one",
            self.name,
        )

    # ---- either thread, under the lock

    def _publish(self, messages: list[Message]) -> list[int]:
        for m in messages:
            if m.topic == self._nbirth_topic:
                self.twin.sent(m.payload)
        return [self.transport.publish(m.topic, m.payload, m.qos, m.retain) for m in messages]

    def _publish_quietly(self, messages: list[Message]) -> None:
        with contextlib.suppress(ConnectError):  # gone with the connection: the next birth
            self._publish(messages)

    def _death(self) -> Will | None:
        if not self.node.registered:
            return None  # no connection of this node's to end
        death = self.node.death(time.time_ns())
        return Will(death.topic, death.payload, death.qos, death.retain)

    def _restart_soon(self, death: Will | None) -> None:
        if self._closing or (self._restarting is not None and not self._restarting.done()):
            return
        self._restarting = asyncio.create_task(self._restart(death), name=f"{self.name} restart")

    def _rebirth_at(self, due_ns: int) -> None:
        if self._closing or self._owed_rebirth is not None:
            return  # one timer serves every request until it fires
        delay_s = max(0.0, (due_ns - time.time_ns()) / 1e9)
        self._owed_rebirth = asyncio.get_running_loop().call_later(delay_s, self._pay_rebirth)

    def _pay_rebirth(self) -> None:
        self._owed_rebirth = None
        with self._lock:
            self._publish_quietly(self.node.owed_rebirth(time.time_ns()))
        self._born.set()  # the data held back since the request goes now

    def _on_loop(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(callback)
