"""A real MQTT subscriber that records what arrives, for assertions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class MqttCapture:
    def __init__(
        self,
        port: int,
        topic: str,
        client_id: str = "test-capture",
        *,
        clean_session: bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        """With `clean_session` false the broker queues QoS 1 messages while this one is away."""
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("test subscriber could not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain), msg.qos))

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = 15.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.snapshot()
            if predicate(got):
                return got
            time.sleep(0.05)
        raise TimeoutError(
            f"condition not met in {timeout_s} s; {len(self.snapshot())} messages arrived"
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
