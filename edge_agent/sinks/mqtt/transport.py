"""One MQTT connection on paho-mqtt 2.x, for any topic layout above it (JSON, Sparkplug B).

It owns what every layout needs the same way: credentials and TLS, a clean session, paho's
network thread with reconnects (jittered, so a plant's agents do not all knock on a restarted
broker at the same instants), the acknowledgements a delivery waits for, subscriptions (again
after every reconnect), a small queue of messages not worth buffering, and a close that ends
within a bound whatever the broker does. The layout decides what is published, and plugs in:

  will()          before every CONNECT, paho's automatic reconnects included (paho's thread):
                  the last will to register, or None
  on_connect()    after every accepted CONNECT (paho's thread): births, subscriptions
  on_message()    a message on a subscribed topic (paho's thread)
  on_disconnect() the connection is gone (paho's thread)
  on_connect_failed()  the broker could not be reached: no CONNECT went out after will()

Delivery: `publish` hands a message to paho, `acked` waits until the broker has it. QoS 1 and 2
messages are resent by paho after a reconnect, so `acked` waits across reconnects for them; a
QoS 0 message that was not written before the connection dropped is gone, and `acked` raises
ConnectError for it (the runner delivers the batch again).
"""

from __future__ import annotations

__all__ = ["VOLATILE_MAX", "MqttTransport", "Will"]

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt

from edge_agent.errors import ConnectError
from edge_agent.sinks.mqtt.link import MqttLink

_log = logging.getLogger(__name__)

# A close publishes its farewell and disconnects within this, whatever the broker does (the
# agent's stop is bounded); the farewell may take all but the last 0.4 s of it.
_CLOSE_S = 1.2
_DISCONNECT_S = 0.4
VOLATILE_MAX = 100  # messages waiting to be published that are not worth buffering (replies)
_VOLATILE_IN_FLIGHT = 10  # of them handed to paho and not yet acknowledged
# Connections lost this soon after they were made, this many times in a row, are not a network
# that comes and goes: the broker ends them (another client with the same id, a refusal).
_SHORT_S = 10.0
_SHORT_IN_A_ROW = 3


class Will(NamedTuple):
    topic: str
    payload: str | bytes
    qos: int
    retain: bool


class MqttTransport:
    def __init__(self, link: MqttLink, *, max_inflight: int = 1000) -> None:
        self.link = link
        self.max_inflight = max_inflight
        self.will: Callable[[], Will | None] = lambda: None
        self.on_connect: Callable[[], None] = lambda: None
        self.on_message: Callable[[str, bytes], None] = lambda _topic, _payload: None
        self.on_disconnect: Callable[[], None] = lambda: None
        self.on_connect_failed: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._acked = asyncio.Event()
        self._acks: deque[int] = deque()  # appended on paho's thread, drained on the loop's
        self._wake_scheduled = False
        self._connected = threading.Event()
        # One more at every connection lost or attempt made: QoS 0 messages handed to paho
        # before it are gone unless acknowledged.
        self._generation = 0
        self._closing = False
        self._subscribing: dict[int, tuple[list[str], str]] = {}  # mid -> topics, purpose
        # Replies and the like: bounded, the oldest dropped when full; lost on a stop.
        self._volatile: deque[tuple[str, str]] = deque(maxlen=VOLATILE_MAX)
        self._volatile_ready = asyncio.Event()
        self._volatile_task: asyncio.Task[None] | None = None
        self._connected_at = 0.0  # time.monotonic() of the last accepted CONNECT
        self._short = 0  # connections in a row lost within _SHORT_S
        self.unstable: str | None = None  # why connections keep ending, while they do

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def endpoint(self) -> str:
        return self.link.endpoint

    @property
    def client_id(self) -> str:
        return self.link.client_id

    @property
    def generation(self) -> int:
        """Changes whenever a connection is lost or a new one is tried (see `acked`)."""
        return self._generation

    def new_client(self, client_id: str) -> mqtt.Client:
        """A client as configured (credentials, TLS, clean session): the transport's own, and a
        probe's that looks at the broker on a connection of its own."""
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        link = self.link
        if link.username:
            password = link.password.get_secret_value() if link.password else None
            client.username_pw_set(link.username, password)
        if link.tls is not None:
            client.tls_set(
                ca_certs=str(link.tls.ca_file) if link.tls.ca_file else None,
                certfile=str(link.tls.cert_file) if link.tls.cert_file else None,
                keyfile=str(link.tls.key_file) if link.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(link.tls.insecure)
        return client

    async def start(self) -> None:
        """Connect in the background: paho connects and reconnects on its own thread, so a
        broker that is down at start-up is retried like one that goes down later."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        client = self.new_client(self.link.client_id)
        client.max_inflight_messages_set(self.max_inflight)
        # paho doubles its delay without jitter: a random scale per agent spreads the retries.
        scale = random.uniform(0.5, 1.0)
        client.reconnect_delay_set(min_delay=scale, max_delay=30 * scale)  # type: ignore[arg-type]
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        client.connect_async(self.link.host, self.link.port, keepalive=self.link.keepalive_s)
        client.loop_start()
        if self._volatile_task is None:
            self._volatile_task = asyncio.create_task(self._send_volatile(), name="mqtt volatile")

    def publish(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> int:
        """Hand a message to paho; its mid, for `acked`. ConnectError when paho cannot take it
        (its queue full, or QoS 0 with no connection: nothing would be sent)."""
        client = self._client
        if client is None:
            raise ConnectError(f"not connected to MQTT broker {self.endpoint}")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise ConnectError("MQTT client queue is full")
        if qos == 0 and info.rc == mqtt.MQTT_ERR_NO_CONN:
            raise ConnectError(f"not connected to MQTT broker {self.endpoint}")
        return info.mid

    async def acked(
        self, mids: Iterable[int], *, qos0: Iterable[int] = (), since: int | None = None
    ) -> None:
        """Return once the broker acknowledged every message of `mids` (for QoS 0: once paho
        wrote it to the connection). ConnectError when one of `qos0`, published at generation
        `since`, went with a connection that dropped before it was written.

        Acknowledgements of other messages (births, replies) are simply passed over: one
        delivery at a time waits here.
        """
        # No lock of ours is taken around paho calls: paho holds its own message lock while it
        # calls on_publish. The callback only appends the acknowledged mid to a deque.
        waiting = set(mids)
        fragile = set(qos0) & waiting
        while True:
            while self._acks:
                mid = self._acks.popleft()
                waiting.discard(mid)
                fragile.discard(mid)
            if not waiting:
                return
            if fragile and since is not None and self._generation != since:
                raise ConnectError(
                    f"the connection to MQTT broker {self.endpoint} dropped before "
                    f"{len(fragile)} QoS 0 messages went out"
                )
            self._acked.clear()
            if not self._acks:
                await self._acked.wait()

    def subscribe(self, topics: list[str], purpose: str) -> None:
        """Subscribe with QoS 1 (from on_connect: again on every connection). A refusal is
        logged with `purpose`, what is lost without the subscription."""
        client = self._client
        if client is None or not topics:
            return
        _rc, mid = client.subscribe([(topic, 1) for topic in topics])
        if mid is not None:
            self._subscribing[mid] = (topics, purpose)

    def publish_volatile(self, topic: str, payload: str) -> bool:
        """Publish a message not worth buffering (a command reply) as soon as the broker is there.

        It waits in a queue of VOLATILE_MAX messages; False when the oldest waiting one had to be
        dropped to make room (the broker away or slow). Nothing of it touches the durable buffer.
        """
        room = len(self._volatile) < VOLATILE_MAX
        self._volatile.append((topic, payload))
        self._volatile_ready.set()
        return room

    async def _send_volatile(self) -> None:
        """Hand waiting volatile messages to paho while connected, a few unacknowledged at most."""
        in_flight: list[mqtt.MQTTMessageInfo] = []
        while True:
            in_flight = [info for info in in_flight if not info.is_published()]
            client = self._client
            if not self._volatile:
                self._volatile_ready.clear()
                await self._volatile_ready.wait()
                continue
            if client is None or not self.connected or len(in_flight) >= _VOLATILE_IN_FLIGHT:
                await asyncio.sleep(0.02)
                continue
            topic, payload = self._volatile.popleft()
            info = client.publish(topic, payload, qos=1, retain=False)
            # NO_CONN (the link just went): paho keeps a QoS 1 message and sends it on reconnect.
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                in_flight.append(info)
            else:  # paho did not take it: again later
                self._volatile.appendleft((topic, payload))
                await asyncio.sleep(0.02)

    async def close(self, farewell: Will | None = None) -> None:
        """Publish `farewell` (if connected), disconnect and end paho's thread, within `_CLOSE_S`
        whatever the broker does.

        A broker that is gone or stalled (a dead link TCP has not noticed yet, its send buffer full
        of messages) never takes the DISCONNECT, and paho's thread would wait for it until the
        keep-alive runs out (29 s measured with the default 30 s): then the socket is shut, which
        ends that thread at once. The broker then publishes the last will.
        """
        if self._volatile_task is not None:
            self._volatile_task.cancel()  # replies still waiting are not worth holding a stop
            self._volatile_task = None
        client, self._client = self._client, None
        if client is None:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CLOSE_S

        async def until(done: Callable[[], bool], by: float) -> None:
            # Polled on the loop, not waited for on a worker thread that could outlive the stop.
            while not done() and loop.time() < by:
                await asyncio.sleep(0.02)

        if self.connected and farewell is not None:
            info = client.publish(*farewell)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:  # not when paho's queue refused it
                await until(info.is_published, deadline - _DISCONNECT_S)
        client.disconnect()
        stopper = threading.Thread(target=client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        await until(lambda: not stopper.is_alive(), deadline)
        if stopper.is_alive():
            sock = client.socket()
            if isinstance(sock, socket.socket):  # an ssl.SSLSocket is one too
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            _log.warning(
                "MQTT broker %s did not take the disconnect within %.1f s; connection cut",
                self.endpoint,
                _CLOSE_S,
            )
        self._connected.clear()

    # ---- paho callbacks, on paho's network thread

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        # paho dropped the QoS 0 messages it still held just before this (Client.reconnect).
        self._generation += 1
        will = self.will()
        if will is None:
            client.will_clear()
        else:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.on_connect_failed()

    def _on_connect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            _log.error("MQTT broker %s refused the connection: %s", self.endpoint, reason)
            return
        self._connected_at = time.monotonic()
        self._connected.set()
        self.on_connect()

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        topics, purpose = self._subscribing.pop(mid, ([], ""))
        for topic, reason in zip(topics, reasons, strict=False):
            if reason.is_failure:
                _log.error(
                    "MQTT broker %s refused the subscription to %s (%s): %s; check the "
                    "broker's ACL (deploy/mosquitto.acl)",
                    self.endpoint,
                    topic,
                    reason,
                    purpose,
                )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        if was_connected and not self._closing:
            _log.warning("MQTT connection to %s lost (%s); retrying", self.endpoint, reason)
            self._count_short(time.monotonic() - self._connected_at)
        self._connected.clear()
        self._generation += 1
        self._wake_waiter()  # a delivery waiting for QoS 0 messages learns they are gone
        if was_connected:
            self.on_disconnect()

    def _count_short(self, lasted_s: float) -> None:
        """A connection that lasted `lasted_s` was lost: say so once when they keep ending."""
        if lasted_s >= _SHORT_S:
            self._short, self.unstable = 0, None
            return
        self._short += 1
        if self._short != _SHORT_IN_A_ROW:
            return
        self.unstable = (
            f"the connection to MQTT broker {self.endpoint} as client id {self.client_id!r} "
            f"was lost {_SHORT_IN_A_ROW} times in a row within seconds of being made: most "
            "likely another client connects with the same client id (another agent with this "
            "agent.id or client_id, or this account on a broker that makes the account name the "
            "client id) and the broker lets one in at a time; else the broker closes it for what "
            "it is sent (see the broker's log)"
        )
        _log.error("%s", self.unstable)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        self._acks.append(mid)
        self._wake_waiter()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.on_message(message.topic, bytes(message.payload))

    def _wake_waiter(self) -> None:
        loop = self._loop
        # One wake-up per burst of acks, not one per ack.
        if loop is None or self._wake_scheduled:
            return
        self._wake_scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._wake_scheduled = False
        self._acked.set()
