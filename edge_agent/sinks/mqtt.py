"""MQTT sink on paho-mqtt 2.x: a topic tree under the agent's prefix, QoS 1, retained state, LWT.

Topics (`<root>` is `agent.topic_prefix`, default `edge/<agent id>`):
  <root>/status                        {"status":"online","instance":…,"since":…} / {"status":
                                       "offline","instance":…}, retained (birth and last will;
                                       see mqtt_status)
  <root>/devices/<device>              one message per poll (raw_values: per_poll)
  <root>/devices/<device>/<tag>        one message per tag (raw_values: per_tag)
  <root>/devices/<device>/link         up / down with the last error, retained
  <root>/machines/<machine>/state      current machine state, retained
  <root>/machines/<machine>/oee/<w>    OEE of the open shift or hour (w), retained
  <root>/machines/<machine>/oee/<w>/closed  the last closed window, retained
  <root>/machines/<machine>/oee/<w>/corrected  the last window corrected by an operator, retained
  <root>/machines/<machine>/downtime   one message per stop that is not a micro-stop
  <root>/alarms/<id>                   current state of an alarm, retained
  <root>/alarms/events                 every alarm transition
  <root>/alarms/flood                  flood begin / end, retained
  <root>/conditions/<id>               latest condition (vibration zone, time to limit), retained
  <root>/commands/alarms/operator      commands in, operator role (see edge_agent.commands)
  <root>/commands/alarms/engineer      commands in, engineer role
  <root>/commands/alarms/reply         replies: published from a small volatile queue of their
                                       own (`publish_volatile`), never through the buffer

Every payload is JSON with `seq`, the buffer's sequence number: a consumer that sees a number
again after a reconnect or restart knows it is a duplicate. A batch counts as delivered only when
the broker acknowledged every message of it (PUBACK for QoS 1); paho resends unacknowledged
messages by itself after a reconnect, so the sink waits rather than publishing them twice.

Before its first connection the sink `claim`s the agent's id: a probe on a connection of its own
(mqtt_probe) makes sure no other agent is online under it, since a second connection with the
same client id would throw the first off the broker.
"""

from __future__ import annotations

__all__ = ["MqttSink", "messages_for"]

import asyncio
import contextlib
import json
import logging
import math
import random
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.config_models import MqttSinkConfig
from edge_agent.errors import ConnectError
from edge_agent.outbox import StoredRecord
from edge_agent.redaction import scrub_tree, without_credentials
from edge_agent.sinks.mqtt_probe import ProbeOutcome, check_alone
from edge_agent.sinks.mqtt_status import offline_payload, online_payload
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)

Message = tuple[str, str, bool]  # topic, payload, retain
# A close says `offline` and disconnects within this, whatever the broker does (the agent's stop
# is bounded); the offline message may take all but the last 0.4 s of it.
_CLOSE_S = 1.2
_DISCONNECT_S = 0.4
VOLATILE_MAX = 100  # messages waiting to be published that are not worth buffering (replies)
_VOLATILE_IN_FLIGHT = 10  # of them handed to paho and not yet acknowledged


class MqttSink:
    name = "mqtt"

    def __init__(
        self,
        config: MqttSinkConfig,
        agent_id: str,
        topic_root: str,
        on_command: Callable[[str, bytes], None] | None = None,
        command_topics: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.on_command = on_command
        self.command_topics = frozenset(command_topics) if on_command is not None else frozenset()
        self.root = topic_root
        self.agent_id = agent_id
        self.client_id = config.client_id or agent_id
        # Which installation this is, in the status; `claim` sets the one kept in the buffer.
        self.instance = secrets.token_hex(8)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._acked = asyncio.Event()
        self._acks: deque[int] = deque()  # appended on paho's thread, drained on the loop's
        self._wake_scheduled = False
        self._connected = threading.Event()
        self._closing = False
        # Replies and the like: bounded, the oldest dropped when full; lost on a stop.
        self._volatile: deque[tuple[str, str]] = deque(maxlen=VOLATILE_MAX)
        self._volatile_ready = asyncio.Event()
        self._volatile_task: asyncio.Task[None] | None = None
        self._subscribing: dict[int, list[str]] = {}  # subscribe mid -> topics, paho's thread

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def endpoint(self) -> str:
        return f"{without_credentials(self.config.host)}:{self.config.port}"

    @property
    def status_topic(self) -> str:
        return f"{self.root}/status"

    async def claim(self, instance: str) -> ProbeOutcome:
        """Take the agent's id as installation `instance`, before `start`: DuplicateAgentError
        while another agent stays online under it (see mqtt_probe)."""
        self.instance = instance
        return await check_alone(
            self._new_client,
            self.client_id,
            self.config.host,
            self.config.port,
            self.config.keepalive_s,
            topic=self.status_topic,
            instance=instance,
            agent_id=self.agent_id,
            endpoint=self.endpoint,
        )

    def _new_client(self, client_id: str) -> mqtt.Client:
        """A client as configured (credentials, TLS), for the sink and for its probe."""
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if self.config.username:
            password = self.config.password.get_secret_value() if self.config.password else None
            client.username_pw_set(self.config.username, password)
        if self.config.tls is not None:
            self._set_tls(client)
        return client

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        client = self._new_client(self.client_id)
        client.max_inflight_messages_set(1000)
        # paho doubles its delay without jitter: a random scale per agent keeps a plant's agents
        # from all knocking on a restarted broker at the same instants.
        scale = random.uniform(0.5, 1.0)
        client.reconnect_delay_set(min_delay=scale, max_delay=30 * scale)  # type: ignore[arg-type]
        client.will_set(self.status_topic, offline_payload(self.instance), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        # connect_async + loop_start: paho connects and reconnects on its own thread, so a broker
        # that is down at start-up is retried like one that goes down later.
        client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        client.loop_start()
        if self._volatile_task is not None:
            self._volatile_task.cancel()
        self._volatile_task = asyncio.create_task(self._send_volatile(), name="mqtt volatile")

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

    async def deliver(self, records: list[StoredRecord]) -> None:
        client = self._client
        assert client is not None, "deliver() before start()"
        # No lock of ours is taken around paho calls: paho holds its own message lock while it
        # calls on_publish. The callback only appends the acknowledged mid to a deque.
        waiting: set[int] = set()
        for record in records:
            for topic, payload, retain in messages_for(record, self.root, self.config):
                info = client.publish(topic, payload, qos=self.config.qos, retain=retain)
                if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                    raise ConnectError("MQTT client queue is full")
                waiting.add(info.mid)
        # Wait until the broker acknowledged all of them, across reconnects: paho resends what
        # was not acknowledged. Acks of other messages (the birth message) are simply ignored.
        while True:
            while self._acks:
                waiting.discard(self._acks.popleft())
            if not waiting:
                break
            self._acked.clear()
            if not self._acks:
                await self._acked.wait()

    async def close(self) -> None:
        """Say `offline`, disconnect and end paho's thread, within `_CLOSE_S` whatever the broker does.

        A broker that is gone or stalled (a dead link TCP has not noticed yet, its send buffer full
        of messages) never takes the DISCONNECT, and paho's thread would wait for it until the
        keep-alive runs out (29 s measured with the default 30 s): then the socket is shut, which
        ends that thread at once. The broker then publishes the agent's last will, `offline`.
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

        if self.connected:
            offline = offline_payload(self.instance)
            info = client.publish(self.status_topic, offline, qos=1, retain=True)
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

    # ---- paho callbacks, on paho's network thread

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            _log.error("MQTT broker %s refused the connection: %s", self.endpoint, reason)
            return
        self._connected.set()
        _log.info(
            "MQTT connected to %s as %s (instance %s)", self.endpoint, self.client_id, self.instance
        )
        # `since` is this connection's: between two, the broker published the will (offline).
        online = online_payload(self.instance, time.time_ns())
        client.publish(self.status_topic, online, qos=1, retain=True)
        if self.command_topics:  # again after every reconnect
            topics = sorted(self.command_topics)
            _rc, mid = client.subscribe([(topic, 1) for topic in topics])
            if mid is not None:
                self._subscribing[mid] = topics

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        topics = self._subscribing.pop(mid, [])
        for topic, reason in zip(topics, reasons, strict=False):
            if reason.is_failure:
                _log.error(
                    "MQTT broker %s refused the subscription to %s (%s): commands sent there "
                    "never reach this agent; check the broker's ACL (deploy/mosquitto.acl)",
                    self.endpoint,
                    topic,
                    reason,
                )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if self._connected.is_set() and not self._closing:
            _log.warning("MQTT connection to %s lost (%s); retrying", self.endpoint, reason)
        self._connected.clear()

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        self._acks.append(mid)
        loop = self._loop
        # One wake-up per burst of acks, not one per ack.
        if loop is None or self._wake_scheduled:
            return
        self._wake_scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(self._wake)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        loop, handler = self._loop, self.on_command
        if loop is None or handler is None or message.topic not in self.command_topics:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(handler, message.topic, bytes(message.payload))

    def _wake(self) -> None:
        self._wake_scheduled = False
        self._acked.set()

    def _set_tls(self, client: mqtt.Client) -> None:
        tls = self.config.tls
        assert tls is not None
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(tls.insecure)


def messages_for(record: StoredRecord, root: str, config: MqttSinkConfig) -> Iterator[Message]:
    """The MQTT messages of one buffered record."""
    kind = record.kind
    if kind == "values" and config.raw_values == "per_poll":
        # The body is JSON already: splice seq and ts in front instead of decoding and re-encoding.
        text = record.body
        if "NaN" in text or "Infinity" in text:  # perhaps a row buffered before they were refused
            text = _json(_finite_values(json.loads(text)))
        head = f'{{"seq":{record.seq},"ts":"{iso_utc(record.ts_ns)}",'
        yield f"{root}/devices/{record.key}", head + text[1:], config.retain_values
        return
    body = json.loads(record.body)
    meta = {"seq": record.seq, "ts": iso_utc(record.ts_ns)}
    if kind == "values":
        body = _finite_values(body)
        quality = body.get("quality", {})
        times = body.get("times", {})  # values stamped otherwise than the record
        for tag, value in body["values"].items():
            payload = {**meta, "value": value, "quality": quality.get(tag, "good")}
            if tag in times:
                payload["ts"] = times[tag]
            yield f"{root}/devices/{body['device']}/{tag}", _json(payload), config.retain_values
    elif kind == "link":
        # The device's last error leaves the agent here: no secret in it (see redaction).
        yield f"{root}/devices/{body['device']}/link", _json(scrub_tree({**meta, **body})), True
    elif kind == "state":
        yield f"{root}/machines/{body['machine']}/state", _json({**meta, **body}), True
    elif kind == "oee":
        # The open window's running figure, and the last closed window, both retained. A closed
        # window corrected later (an operator's reason, rejects) goes apart: on /closed it would
        # replace a later window for anyone who joins.
        suffix = "/corrected" if "corrected_at" in body else "/closed" if body["final"] else ""
        yield (
            f"{root}/machines/{body['machine']}/oee/{body['window']}{suffix}",
            _json({**meta, **body}),
            True,
        )
    elif kind == "downtime":
        yield f"{root}/machines/{body['machine']}/downtime", _json({**meta, **body}), False
    elif kind == "alarm":
        text = _json({**meta, **body})
        yield f"{root}/alarms/{body['id']}", text, True  # current state, for late subscribers
        yield f"{root}/alarms/events", text, False  # every transition, in order
    elif kind == "condition":
        yield f"{root}/conditions/{body['id']}", _json({**meta, **body}), True
    elif kind == "alarm_flood":
        yield f"{root}/alarms/flood", _json({**meta, **body}), True
    elif kind == "command_reply":  # buffered by an older version; replies are volatile now
        yield f"{root}/commands/alarms/reply", _json({**meta, **body}), False


def _finite_values(body: dict[str, Any]) -> dict[str, Any]:
    """A values body whose NaN or infinite values are null with quality bad, as drivers send them."""
    bad = [t for t, v in body["values"].items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return body
    return {
        **body,
        "values": {**body["values"], **dict.fromkeys(bad)},
        "quality": {**body.get("quality", {}), **dict.fromkeys(bad, "bad")},
    }


def _json(payload: dict[str, Any]) -> str:
    """Strict JSON: NaN and infinity are not JSON, and many consumers reject a payload with them.

    Nothing the agent makes holds them; a record buffered by an older version might. Such a number
    is sent as null (the rest of the record is still worth having), with a warning.
    """
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        _log.warning(
            "MQTT payload seq %s holds NaN or infinity (buffered by an older version?); "
            "sent as null",
            payload.get("seq"),
        )
        return json.dumps(
            _nulled(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )


def _nulled(value: Any) -> Any:
    """`value` with every NaN or infinite number replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return value
