"""MQTT sink: the JSON topic layout (layout.py) on the MQTT transport, with the agent's retained
status, last will and alarm commands.

Besides the layout's topics, under the same root:
  <root>/status                        {"status":"online","instance":…,"since":…} / {"status":
                                       "offline","instance":…}, retained (birth and last will;
                                       see status.py)
  <root>/commands/alarms/operator      commands in, operator role (see edge_agent.commands)
  <root>/commands/alarms/engineer      commands in, engineer role
  <root>/commands/alarms/reply         replies: published from a small volatile queue of their
                                       own (`publish_volatile`), never through the buffer

A batch counts as delivered only when the broker acknowledged every message of it (PUBACK for
QoS 1); paho resends unacknowledged messages by itself after a reconnect, so the sink waits rather
than publishing them twice.

Before its first connection the sink `claim`s the agent's id: a probe on a connection of its own
(probe.py) makes sure no other agent is online under it, since a second connection with the
same client id would throw the first off the broker.
"""

from __future__ import annotations

__all__ = ["VOLATILE_MAX", "MqttSink"]

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable

from edge_agent.errors import ConnectError
from edge_agent.records import StoredRecord
from edge_agent.sinks.base import SinkContext
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.layout import KINDS, messages_for
from edge_agent.sinks.mqtt.link import MqttLink
from edge_agent.sinks.mqtt.probe import ProbeOutcome, check_alone
from edge_agent.sinks.mqtt.status import offline_payload, online_payload
from edge_agent.sinks.mqtt.transport import VOLATILE_MAX, MqttTransport, Will

_log = logging.getLogger(__name__)


class MqttSink:
    KINDS = KINDS

    @classmethod
    def create(cls, name: str, config: MqttSinkConfig, context: SinkContext) -> MqttSink:
        from edge_agent.access import AccessStore
        from edge_agent.commands import MqttCommands, command_topics

        agent = context.config.agent
        root = config.root(agent.topic_root)
        if context.command is None or not config.commands:
            return cls(config, agent.id, root, name=name)
        commands: MqttCommands | None = None

        def receive(topic: str, raw: bytes) -> None:
            if commands is not None:
                commands.receive(topic, raw)

        sink = cls(config, agent.id, root, receive, command_topics(root), name=name)
        # Replies go out on the same connection, never through the buffer.
        commands = MqttCommands(
            root,
            context.command,
            context.metrics,
            sink.publish_volatile,
            tokens=AccessStore(agent.access_path).token_identity,
        )
        return sink

    def __init__(
        self,
        config: MqttSinkConfig,
        agent_id: str,
        topic_root: str,
        on_command: Callable[[str, bytes], None] | None = None,
        command_topics: Iterable[str] = (),
        *,
        name: str = "mqtt",
    ) -> None:
        self.name = name
        self.config = config
        self.on_command = on_command
        self.command_topics = frozenset(command_topics) if on_command is not None else frozenset()
        self.root = topic_root
        self.agent_id = agent_id
        self.client_id = config.client_id or agent_id
        # Which installation this is, in the status; `claim` sets the one kept in the buffer.
        self.instance = secrets.token_hex(8)
        self._loop: asyncio.AbstractEventLoop | None = None
        link = MqttLink(
            config.host,
            config.port,
            self.client_id,
            config.username,
            config.password,
            config.tls,
            config.keepalive_s,
        )
        self.transport = MqttTransport(link)
        self.transport.will = self._offline
        self.transport.on_connect = self._on_connect
        self.transport.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self.transport.connected

    @property
    def endpoint(self) -> str:
        return self.transport.endpoint

    @property
    def conflict(self) -> str | None:
        """Connections that keep being taken over (see MqttTransport), for /health."""
        return self.transport.unstable

    @property
    def status_topic(self) -> str:
        return f"{self.root}/status"

    async def claim(self, instance: str) -> ProbeOutcome:
        """Take the agent's id as installation `instance`, before `start`: DuplicateAgentError
        while another agent stays online under it (see probe.py)."""
        self.instance = instance
        return await check_alone(
            self.transport.new_client,
            self.client_id,
            self.config.host,
            self.config.port,
            self.config.keepalive_s,
            topic=self.status_topic,
            instance=instance,
            agent_id=self.agent_id,
            endpoint=self.endpoint,
        )

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.transport.start()

    def publish_volatile(self, topic: str, payload: str) -> bool:
        """A message not worth buffering (a command reply); see MqttTransport.publish_volatile."""
        return self.transport.publish_volatile(topic, payload)

    async def deliver(self, records: list[StoredRecord]) -> None:
        transport, qos = self.transport, self.config.qos
        since = transport.generation
        mids = [
            transport.publish(topic, payload, qos, retain)
            for record in records
            for topic, payload, retain in messages_for(record, self.root, self.config)
        ]
        await transport.acked(mids, qos0=mids if qos == 0 else (), since=since)

    async def close(self) -> None:
        """Say `offline`, disconnect, within a bound whatever the broker does (see transport)."""
        await self.transport.close(self._offline())

    def _offline(self) -> Will:
        return Will(self.status_topic, offline_payload(self.instance), 1, True)

    # ---- transport hooks, on paho's network thread

    def _on_connect(self) -> None:
        _log.info(
            "MQTT connected to %s as %s (instance %s)", self.endpoint, self.client_id, self.instance
        )
        # `since` is this connection's: between two, the broker published the will (offline).
        online = online_payload(self.instance, time.time_ns())
        with contextlib.suppress(ConnectError):  # paho's queue full: the next connection says it
            self.transport.publish(self.status_topic, online, 1, True)
        # Again after every reconnect (a clean session forgets subscriptions).
        self.transport.subscribe(
            sorted(self.command_topics), "commands sent there never reach this agent"
        )

    def _on_message(self, topic: str, payload: bytes) -> None:
        loop, handler = self._loop, self.on_command
        if loop is None or handler is None or topic not in self.command_topics:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(handler, topic, payload)
