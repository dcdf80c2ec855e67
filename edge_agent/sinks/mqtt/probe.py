"""Before the MQTT sink takes its client id: is another agent online under the same id?

A second connection with the agent's client id would make the broker drop the first one, so the
look is taken on a connection of its own (`<client id>-probe-<random>`, clean session, no will,
the sink's credentials and TLS): it reads the retained `<root>/status` (see status.py) and
disconnects. Another installation's `online` may be an agent that is alive, or one that died
while its broker has not noticed yet: the probe waits for that broker's will, up to 1.5 times the
keep-alive (plus a margin), and refuses the start if the status is still the other's `online`.

A broker that cannot be reached or refuses the probe is no reason to hold the start (the buffer
is there for a broker that is away): the check is skipped with a warning. Every step is bounded;
the connection is driven by paho's `loop()` on a daemon thread of its own, which closes it
whatever happens, also when the agent stops meanwhile.
"""

from __future__ import annotations

__all__ = ["DuplicateAgentError", "ProbeOutcome", "check_alone"]

import asyncio
import contextlib
import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as mqtt

from edge_agent.errors import EdgeAgentError
from edge_agent.redaction import scrub
from edge_agent.sinks.mqtt.status import (
    Finding,
    Status,
    judge,
    offline_of_another,
    parse_status,
    refusal_message,
    taken_back_message,
    will_wait_s,
)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_CONNECT_S = 3.0  # for the TCP and TLS handshakes and the CONNACK; the same again for the SUBACK
# A broker sends the retained message right behind the SUBACK: when none came within a few of
# the SUBSCRIBE's round trips (at least _RETAINED_MIN_S, at most _RETAINED_S), there is none.
_RETAINED_MIN_S = 0.2
_RETAINED_S = 0.5
_RETAINED_TRIPS = 4
_CLOSE_S = 0.5  # for the DISCONNECT to leave before the socket is simply closed
# After another installation's `offline`: how long to watch for that agent taking its client id
# back (the sink's reconnect delay is at most 1 s; a connection and TLS handshake on top).
_TAKE_BACK_S = 3.0
_TICK_S = 0.1  # how often the probe's thread looks at the clock and for a stop


class DuplicateAgentError(EdgeAgentError):
    """Another agent is online under this agent's id on the broker: this one does not start."""


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What the probe saw last; `skipped` says why it could not look (then finding is None)."""

    finding: Finding | None
    payload: bytes | None = None
    waited_s: float = 0.0
    skipped: str | None = None


MakeClient = Callable[[str], mqtt.Client]


async def check_alone(
    make_client: MakeClient,
    client_id: str,
    host: str,
    port: int,
    keepalive_s: int,
    *,
    topic: str,
    instance: str,
    agent_id: str,
    endpoint: str,
) -> ProbeOutcome:
    """Return once this agent may take `client_id` on the broker; DuplicateAgentError if not.

    `make_client(probe_client_id)` builds a client with the sink's credentials and TLS.
    """
    probe = _Probe(make_client, client_id, host, port, keepalive_s, topic, instance, endpoint)
    outcome = await _run(probe)
    _report(outcome, agent_id, endpoint, topic, instance)
    return outcome


async def _run(probe: _Probe) -> ProbeOutcome:
    """The probe on a daemon thread of its own, awaited within bounds whatever it waits for."""
    loop = asyncio.get_running_loop()
    answered = asyncio.Event()

    def on_answer() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(answered.set)

    probe.on_answer = on_answer
    done = _on_own_thread(probe.run)
    first = asyncio.ensure_future(answered.wait())
    try:
        # paho bounds the TCP and TLS handshakes but not a name lookup: the broker's first
        # answer is awaited here, the rest by the probe's own steps (with some slack).
        first_s = _CONNECT_S + _CLOSE_S
        either: set[asyncio.Future[Any]] = {done, first}
        await asyncio.wait(either, timeout=first_s, return_when=asyncio.FIRST_COMPLETED)
        if not done.done() and not answered.is_set():
            return ProbeOutcome(None, skipped=f"no answer within {first_s:.1f} s")
        rest_s = _CONNECT_S + _RETAINED_S + will_wait_s(probe.keepalive_s) + 2 * _CLOSE_S
        try:
            return await asyncio.wait_for(asyncio.shield(done), rest_s)
        except TimeoutError:
            return ProbeOutcome(None, skipped=f"no end within {rest_s:.0f} s")
        except Exception as exc:  # a check that fails must not keep the agent from running
            return ProbeOutcome(None, skipped=f"the check failed: {type(exc).__name__}: {exc}")
    finally:
        probe.cancel.set()  # the thread closes its connection and ends by itself
        first.cancel()
        done.cancel()  # a result that comes after this is dropped, not left unretrieved


def _report(outcome: ProbeOutcome, agent_id: str, endpoint: str, topic: str, instance: str) -> None:
    """Raise for another agent that stayed online; log what is worth a person's attention."""
    finding = outcome.finding
    if finding is None:
        _log.warning(
            "MQTT broker %s: could not check whether another agent is online as %s (%s); "
            "going on without the check",
            endpoint,
            agent_id,
            outcome.skipped,
        )
    elif finding.refuses:
        other = parse_status(outcome.payload or b"") or Status(online=True)
        if finding is Finding.TAKEN_BACK:
            raise DuplicateAgentError(taken_back_message(agent_id, endpoint, other, instance))
        raise DuplicateAgentError(
            refusal_message(agent_id, endpoint, topic, other, instance, outcome.waited_s)
        )
    elif finding is Finding.LEGACY:
        # An older version's plain `online` names nobody. Most often it is this agent's own, from
        # before an upgrade that stopped it uncleanly: on the same client id the broker drops that
        # connection when the sink connects, and publishes its will before the sink's birth.
        _log.warning(
            "MQTT broker %s: %s says online in the format of an older version, which does not "
            "say which agent; going on. If an older agent still runs as %s on another PC, the "
            "two throw each other off the broker: give one of them another agent.id",
            endpoint,
            topic,
            agent_id,
        )
    elif finding is Finding.UNKNOWN:
        _log.warning(
            "MQTT broker %s: %s holds %r, not an agent's status; going on",
            endpoint,
            topic,
            (outcome.payload or b"")[:80],
        )
    elif outcome.waited_s > 0:
        _log.info(
            "MQTT broker %s: the other agent's status turned to %s after %.1f s; going on",
            endpoint,
            finding.value,
            outcome.waited_s,
        )


def _on_own_thread(work: Callable[[], _T]) -> asyncio.Future[_T]:
    """`work()` on a daemon thread (which never holds the process at exit), as a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def succeed(result: _T) -> None:
        if not future.done():  # not given up on meanwhile
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def target() -> None:
        settle: Callable[[], None]
        try:
            settle = functools.partial(succeed, work())
        except BaseException as exc:  # handed to the awaiting task
            settle = functools.partial(fail, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle)

    threading.Thread(target=target, name="mqtt-probe", daemon=True).start()
    return future


class _Probe:
    """One probe connection; everything below runs on the probe's thread (paho's loop() calls
    the callbacks on the thread that drives it, so no lock is needed)."""

    def __init__(
        self,
        make_client: MakeClient,
        client_id: str,
        host: str,
        port: int,
        keepalive_s: int,
        topic: str,
        instance: str,
        endpoint: str,
    ) -> None:
        self.make_client = make_client
        self.client_id = client_id
        self.host, self.port, self.keepalive_s = host, port, keepalive_s
        self.topic, self.instance, self.endpoint = topic, instance, endpoint
        self.cancel = threading.Event()  # set by the agent's side: stop, close, end
        self.on_answer: Callable[[], None] = lambda: None  # the broker's CONNACK came
        self.connack: Any = None  # paho's ReasonCode
        self.suback: list[Any] | None = None
        self.payload: bytes | None = None
        self.received = 0
        self.lost = False

    def run(self) -> ProbeOutcome:
        try:
            client = self.make_client(f"{self.client_id}-probe-{secrets.token_hex(3)}")
            client.connect_timeout = _CONNECT_S
            client.on_connect = self._on_connect
            client.on_subscribe = self._on_subscribe
            client.on_message = self._on_message
            client.on_disconnect = self._on_disconnect
            client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return ProbeOutcome(None, skipped=_why(exc))
        try:
            return self._look(client)
        finally:
            _close(client)

    def _look(self, client: mqtt.Client) -> ProbeOutcome:
        if not self._until(lambda: self.connack is not None, _CONNECT_S, client):
            return self._skipped("no CONNACK", _CONNECT_S)
        if self.connack.is_failure:
            return ProbeOutcome(None, skipped=f"the broker refused the connection: {self.connack}")
        asked = time.monotonic()
        client.subscribe(self.topic, qos=1)
        if not self._until(lambda: self.suback is not None, _CONNECT_S, client):
            return self._skipped("no SUBACK", _CONNECT_S)
        trip_s = time.monotonic() - asked
        refused = [str(r) for r in self.suback or [] if r.is_failure]
        if refused:
            return ProbeOutcome(
                None,
                skipped=f"the broker refused to let it read {self.topic} ({', '.join(refused)}); "
                "allow the agent's account to read its status topic",
            )
        grace_s = min(_RETAINED_S, max(_RETAINED_MIN_S, _RETAINED_TRIPS * trip_s))
        self._until(lambda: self.received > 0, grace_s, client)
        if self.lost:
            return self._skipped("", 0)
        finding = judge(self.payload, self.instance)
        if offline_of_another(self.payload, self.instance):
            return self._watch_for_take_back(client, finding)
        if not finding.blocks:
            return ProbeOutcome(finding, self.payload)
        return self._wait_for_will(client)

    def _watch_for_take_back(self, client: mqtt.Client, finding: Finding) -> ProbeOutcome:
        """Another installation's `offline` may be the will of a live agent thrown off by this
        probe, where the broker gives every connection of an account one client id: a live
        agent reconnects and drops the probe, or says `online` again."""
        payload = self.payload
        started = time.monotonic()
        self._until(lambda: judge(self.payload, self.instance).blocks, _TAKE_BACK_S, client)
        waited_s = time.monotonic() - started
        if self.cancel.is_set():
            return self._skipped("", 0)
        if self.lost or judge(self.payload, self.instance).blocks:
            return ProbeOutcome(Finding.TAKEN_BACK, payload, waited_s)
        return ProbeOutcome(finding, payload, waited_s)

    def _wait_for_will(self, client: mqtt.Client) -> ProbeOutcome:
        window_s = will_wait_s(self.keepalive_s)
        other = parse_status(self.payload or b"")
        _log.info(
            "MQTT broker %s: another agent (instance %s, online since %s) is online on %s; "
            "waiting up to %.1f s for it to go offline, as it does when it stopped without "
            "the broker noticing yet (1.5 × keepalive_s %d, plus a margin)",
            self.endpoint,
            other.instance if other else "?",
            (other.since if other else None) or "?",
            self.topic,
            window_s,
            self.keepalive_s,
        )
        started = time.monotonic()
        self._until(lambda: not judge(self.payload, self.instance).blocks, window_s, client)
        waited_s = time.monotonic() - started
        if self.lost or self.cancel.is_set():
            return self._skipped("while waiting for the other agent to go offline", waited_s)
        return ProbeOutcome(judge(self.payload, self.instance), self.payload, waited_s)

    def _until(self, done: Callable[[], bool], timeout_s: float, client: mqtt.Client) -> bool:
        """Drive the connection until `done()`; False after `timeout_s`, a lost link or a stop."""
        deadline = time.monotonic() + timeout_s
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or self.lost or self.cancel.is_set():
                return False
            if client.loop(min(_TICK_S, left)) != mqtt.MQTT_ERR_SUCCESS:
                self.lost = True
        return True

    def _skipped(self, step: str, after_s: float) -> ProbeOutcome:
        if self.cancel.is_set():
            why = "the agent stopped"
        elif self.lost:
            why = f"the broker closed the connection {step}".rstrip()
        else:
            why = f"{step} within {after_s:.0f} s"
        return ProbeOutcome(None, skipped=why)

    # ---- paho callbacks (VERSION2), on the probe's thread

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self.on_answer()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        self.suback = list(reasons)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        # Retained (from before) or live (a will published meanwhile): the newest one counts.
        if message.topic == self.topic:
            self.payload = bytes(message.payload)
            self.received += 1

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        self.lost = True


def _close(client: mqtt.Client) -> None:
    """Say goodbye and close the socket, within _CLOSE_S whatever the broker does."""
    with contextlib.suppress(Exception):
        client.disconnect()  # paho closes the socket once the DISCONNECT is written
        deadline = time.monotonic() + _CLOSE_S
        while client.socket() is not None and time.monotonic() < deadline:
            client.loop(_TICK_S)
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return scrub(f"cannot connect: {text}")
