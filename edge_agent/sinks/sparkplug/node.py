"""A Sparkplug B 3.0 edge node as a pure state machine: records in, MQTT messages out.

No sockets, no clock: the sink passes the time and publishes what comes back, in order. The
requirement ids in comments are the specification's (tck-id-...).

Life of a session, as the sink drives it:

  will()       before every MQTT CONNECT: the NDEATH to register as the will, carrying the next
               bdSeq (0-255, +1 per connect; persist `bd_seq` so a restart continues from it)
  birth()      once connected and subscribed to NCMD (and, with a primary host, once it is
               online): NBIRTH (seq 0) and one DBIRTH per device whose link is not down (a
               device with tags of no declared type, OPC UA's, waits for its first values)
  process()    buffered records → NDATA / DDATA by exception, DDEATH / DBIRTH when a device's link
               goes down / comes back; records the caller marks `historical` (a backlog delivered
               late) become is_historical metrics that never replace the current values
  catch_up()   after a backlog: what changed meanwhile, sent as current (process() does it by
               itself before the first live record)
  command()    an NCMD: 'Node Control/Rebirth' = true → the whole birth sequence again (within
               REBIRTH_GAP_NS of the last birth: `rebirth_owed_ns` says when owed_rebirth() is due,
               and no data goes out until then: tck-id-operational-behavior-data-commands-
               rebirth-action-1, stop sending data at once)
  death()      before an intentional DISCONNECT: the NDEATH to publish (same bdSeq as the will)
  lost()       the connection dropped: nothing more is sent until the next birth()

Each metric keeps the newest value known (by its own time stamp), what host applications hold
as its current value in this session, and the last value sent as history. A value older than
the newest known one is history, whoever marks it. A metric met for the first time, or a value
its declared type cannot carry, redefines the node: then a full rebirth follows (a DBIRTH alone
for a device seen for the first time), since births must declare every metric (tck-id-operational-
behavior-data-publish-nbirth / -dbirth).
"""

from __future__ import annotations

__all__ = [
    "BD_SEQ",
    "MAX_METRICS_PER_MESSAGE",
    "REBIRTH",
    "EdgeNode",
    "Message",
    "NoSessionError",
]

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from google.protobuf.message import DecodeError

from edge_agent.errors import ConnectError
from edge_agent.records import Kind
from edge_agent.samples import Value
from edge_agent.sinks.sparkplug.codec import fits, inferred, put, read, widened
from edge_agent.sinks.sparkplug.layout import NodeLayout
from edge_agent.sinks.sparkplug.schema import DataType, Payload
from edge_agent.sinks.sparkplug.updates import Update, updates_for

_log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
BD_SEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"
# Sparkplug sets no limit; brokers do (and a host parses a payload whole). A backlog of polls
# goes out in payloads of at most this many metrics.
MAX_METRICS_PER_MESSAGE = 2000
# Quality property (spec 6.4.10): 'Quality', type Int32, values 0 BAD, 192 GOOD, 500 STALE.
# OPC UA's "uncertain" has no code of its own there; STALE (a value, not to be trusted as
# current) is the nearest of the three.
_QUALITY_CODES = {"good": 192, "uncertain": 500, "bad": 0}
_GOOD = "good"
_NODE: None = None  # the edge node's own metrics, beside its devices


class NoSessionError(ConnectError):
    """No Sparkplug session: not connected, not born yet, or waiting for the primary host."""


class Message(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool


class _Record(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def ts_ns(self) -> int: ...
    @property
    def body(self) -> str | dict[str, Any]: ...


@dataclass(slots=True)
class _Point:
    value: Value
    quality: str
    ts_ms: int

    def key(self) -> tuple[type, Value, str]:
        # 1 == 1.0 == True in Python; for reporting by exception they differ.
        return (type(self.value), self.value, self.quality)


@dataclass(slots=True)
class _Metric:
    name: str
    alias: int
    datatype: DataType
    settled: bool  # declared, or typed by a value; else a placeholder until the first value
    latest: _Point | None = None  # the newest value known
    sent: _Point | None = None  # what host applications hold as current in this session
    history: _Point | None = None  # the last value sent as history in this session


@dataclass(slots=True)
class _Target:
    """The edge node itself or one of its devices."""

    metrics: dict[str, _Metric] = field(default_factory=dict)
    up: bool = True  # the device's link, as the newest link record says (unknown counts as up)
    link_ms: int | None = None
    born: bool = False  # a DBIRTH went out in this session and no DDEATH since
    seen: bool = False  # a values record came: tags without a declared type have theirs now

    def ready(self) -> bool:
        """Whether a DBIRTH can declare it: it has tags, their types known (or values came)."""
        return bool(self.metrics) and (self.seen or all(m.settled for m in self.metrics.values()))


# An NCMD is a rebirth request of a few dozen bytes; anything much larger is not parsed.
MAX_COMMAND_BYTES = 64 * 1024
# Rebirth requests within this time of a birth are served by one rebirth at its end: a host that
# asks in a loop (or several hosts asking at once) cannot make the node do nothing but births.
REBIRTH_GAP_NS = 1_000_000_000
# NCMD writes are ignored; saying so once a minute is enough, however many come.
_WRITES_LOG_EVERY_NS = 60 * 1_000_000_000


class EdgeNode:
    """One Sparkplug edge node: its metrics, its devices, its session (seq, bdSeq)."""

    def __init__(self, layout: NodeLayout, *, bd_seq: int | None = None) -> None:
        """`bd_seq`: the bdSeq of the previous connection (persisted), None for the first ever."""
        if bd_seq is not None and not 0 <= bd_seq <= 255:
            raise ValueError(f"bdSeq is 0-255, not {bd_seq}")
        self.layout = layout
        self._include = layout.include
        self._bd_seq = bd_seq
        self._bd_seq_before = bd_seq  # before the last will(), for withdraw_will()
        self._registered = False  # will() gave a will for the coming connection
        self._born = False
        self._seq = 0
        self._stale = False  # newest values or links differ from what hosts were told
        self._rebirth_due = False  # declarations changed by observe() within a session
        self._next_alias = 1  # alias 0 is left out: some decoders read it as "no alias"
        self._node = _Target()
        self._devices: dict[str, _Target] = {}
        self.not_sent = 0  # values of devices without a session (link down): Sparkplug drops them
        self._born_ns = 0  # the last birth sequence
        self.rebirth_owed_ns: int | None = None  # when a rebirth asked for too soon is due
        self._writes_logged_ns: int | None = None
        self._writes_ignored = 0  # NCMD writes since the last line that said so
        self._bd_alias = self._alias()
        for name, datatype in layout.node_metrics.items():
            self._define(self._node, name, datatype, settled=True)
        for device, tags in layout.devices.items():
            target = self._devices[device] = _Target()
            for tag, declared in tags.items():
                self._define(target, tag, declared or DataType.Double, settled=declared is not None)

    # ------------------------------------------------------------------ topics and state

    def topic(self, kind: str, device: str | None = None) -> str:
        base = f"{NAMESPACE}/{self.layout.group_id}/{kind}/{self.layout.edge_node_id}"
        return base if device is None else f"{base}/{device}"

    @property
    def ncmd_topic(self) -> str:
        """Subscribe to it with QoS 1 before birth() (tck-id-message-flow-edge-node-ncmd-subscribe)."""
        return self.topic("NCMD")

    @property
    def dcmd_filter(self) -> str:
        """Device commands to any of the node's devices (tck-id-message-flow-device-dcmd-
        subscribe): subscribed to, read within limits, and refused, as the agent writes nothing."""
        return f"{self.topic('DCMD')}/+"

    @property
    def registered(self) -> bool:
        """A will was registered for the current connection: an intentional DISCONNECT needs
        the NDEATH first, born or not (tck-id-payloads-ndeath-will-message-publisher-disconnect-
        mqtt311)."""
        return self._registered

    @property
    def bd_seq(self) -> int | None:
        """The bdSeq of the current (or last) connection: persist it after every will()."""
        return self._bd_seq

    @property
    def born(self) -> bool:
        return self._born

    @property
    def seq(self) -> int:
        """The seq the next message will carry."""
        return self._seq

    # ------------------------------------------------------------------ session

    def will(self, now_ns: int) -> Message:
        """The NDEATH to register as the will of the next MQTT CONNECT, with a new bdSeq.

        QoS 1, not retained (tck-id-payloads-ndeath-will-message-qos / -retain); bdSeq one more
        than the previous CONNECT's, 255 → 0 (tck-id-message-flow-edge-node-birth-publish-will-
        message-payload-bdSeq). Ends the current session, if any.
        """
        self._bd_seq_before = self._bd_seq
        self._bd_seq = 0 if self._bd_seq is None else (self._bd_seq + 1) % 256
        self._registered = True
        self._end_session()
        return self._ndeath(now_ns)

    def withdraw_will(self) -> None:
        """The CONNECT that the last will() was for never went out (the broker could not be
        reached): its bdSeq is taken back, for the next CONNECT to carry."""
        if self._registered and not self._born:
            self._bd_seq = self._bd_seq_before
            self._registered = False

    def birth(self, now_ns: int) -> list[Message]:
        """NBIRTH and the DBIRTHs that start a session, once connected (and the primary host is
        online): seq restarts at 0, bdSeq is the will's (tck-id-payloads-nbirth-bdseq-repeat)."""
        if not self._registered:
            raise NoSessionError(
                "birth() needs will() first: the NDEATH must be the CONNECT's will"
            )
        out = _Out(self, now_ns // 1_000_000)
        self._birth_sequence(out)
        return out.done()

    def rebirth(self, now_ns: int) -> list[Message]:
        """The whole birth sequence again within the session (same bdSeq, seq from 0)."""
        if not self._born:
            raise NoSessionError("no Sparkplug session to rebirth")
        return self.birth(now_ns)

    def death(self, now_ns: int) -> Message:
        """The NDEATH to publish before an intentional DISCONNECT (tck-id-payloads-ndeath-will-
        message-publisher-disconnect-mqtt311): the will's bdSeq. Ends the session."""
        if self._bd_seq is None:
            raise NoSessionError("death() before any will()")
        self._registered = False  # the connection ends: the next one registers a new will
        self._end_session()
        return self._ndeath(now_ns)

    def lost(self) -> None:
        """The connection dropped: the broker publishes the will; the next session needs will()."""
        self._registered = False
        self._end_session()

    def _end_session(self) -> None:
        self._born = False
        self.rebirth_owed_ns = None  # the next session starts with a birth
        for device in self._devices.values():
            device.born = False

    # ------------------------------------------------------------------ records

    def process(
        self, records: Iterable[_Record], now_ns: int, *, historical: bool = False
    ) -> list[Message]:
        """The messages for `records`, in the order to publish them.

        `historical`: these records were buffered while no session existed (a backlog delivered
        late); their values go out with is_historical and their own time stamps, and do not
        become the metrics' current values (catch_up() sends what is current afterwards).
        """
        self._in_session()
        out = _Out(self, now_ns // 1_000_000)
        if self._rebirth_due:
            self._birth_sequence(out)
        if self._stale and not historical:
            self._catch_up(out)
        for record in records:
            body = record.body if isinstance(record.body, dict) else json.loads(record.body)
            if record.kind == Kind.LINK:
                self._link(body, record.ts_ns // 1_000_000, historical, out)
                continue
            updates = updates_for(record.kind, body, record.ts_ns, self._include)
            if updates:
                self._redefine(updates, out)
                for update in updates:
                    self._apply(update, historical, out)
        return out.done()

    def catch_up(self, now_ns: int) -> list[Message]:
        """After a historical backlog: each value and device link that changed meanwhile, as
        current (NDATA/DDATA, DDEATH, DBIRTH). Nothing when nothing changed."""
        self._in_session()
        out = _Out(self, now_ns // 1_000_000)
        if self._rebirth_due:
            self._birth_sequence(out)
        if self._stale:
            self._catch_up(out)
        return out.done()

    def _in_session(self) -> None:
        if not self._born:
            raise NoSessionError("no Sparkplug session (not connected, or not born yet)")
        if self.rebirth_owed_ns is not None:
            raise NoSessionError("a rebirth was asked for: no data until it is sent")

    def observe(self, records: Iterable[_Record]) -> None:
        """Learn current values and links without sending anything (e.g. the newest records
        from before a restart, so that the first birth carries them). Allowed without a session;
        within one, catch_up() (or the next live record) sends what changed."""
        for record in records:
            body = record.body if isinstance(record.body, dict) else json.loads(record.body)
            if record.kind == Kind.LINK:
                self._learn_link(body, record.ts_ns // 1_000_000)
                continue
            for update in updates_for(record.kind, body, record.ts_ns, self._include):
                target = self._target(update.device)
                if update.device is not None:
                    target.seen = True
                if self._retype_silently(target, update) and self._born:
                    self._rebirth_due = True
                if self._learn(target.metrics[update.name], update) and self._born:
                    self._stale = True

    def latest(self) -> dict[str, Any]:
        """The newest value of every metric and each device's link, as JSON-able data: saved
        by the sink, so that the births after a restart carry them (`restore`)."""
        targets = {"": self._node, **self._devices}
        return {
            "metrics": {
                key: {
                    name: [m.latest.value, m.latest.quality, m.latest.ts_ms, int(m.datatype)]
                    for name, m in target.metrics.items()
                    if m.latest is not None and m.settled
                }
                for key, target in targets.items()
            },
            "links": {
                name: [device.up, device.link_ms]
                for name, device in self._devices.items()
                if device.link_ms is not None
            },
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Take what `latest` saved as the newest values known, where nothing newer is: only
        for metrics and devices this layout declares (a tag removed since stays away)."""
        for key, points in saved.get("metrics", {}).items():
            target = self._node if key == "" else self._devices.get(key)
            if target is None:
                continue
            for name, (value, quality, ts_ms, datatype) in points.items():
                metric = target.metrics.get(name)
                if metric is None:
                    continue
                if not metric.settled:  # an untyped tag: typed by its value before the restart
                    metric.datatype, metric.settled = DataType(datatype), True
                    target.seen = True
                if fits(metric.datatype, value):
                    self._learn(metric, Update(None, name, value, ts_ms, quality=quality))
        for name, (up, link_ms) in saved.get("links", {}).items():
            if name in self._devices:
                self._learn_link({"device": name, "state": "up" if up else "down"}, link_ms)

    # ------------------------------------------------------------------ commands

    def command(self, payload: bytes, now_ns: int) -> list[Message]:
        """An NCMD received: 'Node Control/Rebirth' true → the birth sequence again
        (tck-id-operational-behavior-data-commands-rebirth-action-1..3). The agent writes to no
        PLC: any other metric is logged and ignored."""
        if len(payload) > MAX_COMMAND_BYTES:
            # Not parsed: a rebirth request is a few dozen bytes.
            _log.warning(
                "Sparkplug NCMD of %d bytes (at most %d): ignored", len(payload), MAX_COMMAND_BYTES
            )
            return []
        try:
            command = Payload.FromString(payload)
        except (DecodeError, RecursionError):
            _log.warning("Sparkplug NCMD that is not a Sparkplug B payload: ignored")
            return []
        rebirth = False
        writes = []
        for metric in command.metrics:
            if metric.name == REBIRTH:
                rebirth = rebirth or read(metric, DataType.Boolean) is True
            else:
                writes.append(metric.name or f"alias {metric.alias}")
        if writes:
            self._ignore_writes("NCMD", writes, now_ns)
        if not rebirth:
            return []
        if not self._born:
            _log.info("Sparkplug rebirth requested while not born: the next birth serves it")
            return []
        due = self._born_ns + REBIRTH_GAP_NS
        if now_ns < due:
            if self.rebirth_owed_ns is None:
                _log.info(
                    "Sparkplug rebirth requested within %.0f s of the last birth: one rebirth at "
                    "the end of that time serves it, and any other request until then",
                    REBIRTH_GAP_NS / 1e9,
                )
            self.rebirth_owed_ns = due
            return []
        _log.info("Sparkplug rebirth requested by a host application")
        return self.birth(now_ns)

    def owed_rebirth(self, now_ns: int) -> list[Message]:
        """The rebirth command() put off, when it is still owed (no birth came in between)."""
        if self.rebirth_owed_ns is None or not self._born:
            return []
        _log.info("Sparkplug rebirth requested by a host application (put off until now)")
        return self.birth(now_ns)

    def device_command(self, topic: str, payload: bytes, now_ns: int) -> None:
        """A DCMD: the agent writes to no PLC, so its metrics are read (within the limits of an
        NCMD) only to say what was refused."""
        device = topic.rsplit("/", 1)[-1]
        if len(payload) > MAX_COMMAND_BYTES:
            _log.warning(
                "Sparkplug DCMD to %r of %d bytes (at most %d): ignored",
                device[:64],
                len(payload),
                MAX_COMMAND_BYTES,
            )
            return
        try:
            command = Payload.FromString(payload)
        except (DecodeError, RecursionError):
            _log.warning("Sparkplug DCMD to %r that is not a Sparkplug B payload", device[:64])
            return
        writes = [f"{device[:64]}/{m.name or f'alias {m.alias}'}" for m in command.metrics]
        if writes:
            self._ignore_writes("DCMD", writes, now_ns)

    def _ignore_writes(self, kind: str, writes: list[str], now_ns: int) -> None:
        """One line however many metrics a command names, and one a minute however many come."""
        self._writes_ignored += len(writes)
        last = self._writes_logged_ns
        if last is not None and now_ns - last < _WRITES_LOG_EVERY_NS:
            return
        names = ", ".join(repr(w[:64]) for w in writes[:5]) + (", …" if len(writes) > 5 else "")
        if self._writes_logged_ns is None:
            what = f"{self._writes_ignored} metric(s) ({names})"
        else:
            what = f"{self._writes_ignored} metric(s) since the last such line (the last: {names})"
        _log.warning("Sparkplug %s writes %s: ignored, the agent only reads", kind, what)
        self._writes_logged_ns, self._writes_ignored = now_ns, 0

    # ------------------------------------------------------------------ internals: metrics

    def _alias(self) -> int:
        alias, self._next_alias = self._next_alias, self._next_alias + 1
        return alias

    def _define(self, target: _Target, name: str, datatype: DataType, *, settled: bool) -> _Metric:
        metric = target.metrics[name] = _Metric(name, self._alias(), datatype, settled)
        return metric

    def _target(self, device: str | None) -> _Target:
        if device is None:
            return self._node
        target = self._devices.get(device)
        if target is None:
            target = self._devices[device] = _Target()
        return target

    def _metric(self, update: Update) -> tuple[_Target, _Metric | None]:
        target = self._target(update.device)
        return target, target.metrics.get(update.name)

    def _retype_silently(self, target: _Target, update: Update) -> bool:
        """Declare the metric of `update`, or re-type it for a value its type cannot carry.
        True when a declaration changed."""
        metric = target.metrics.get(update.name)
        value = update.value
        if metric is None:
            datatype = update.datatype or (inferred(value) if value is not None else None)
            self._define(target, update.name, datatype or DataType.Double, settled=bool(datatype))
            return True
        if not metric.settled and value is not None:
            metric.settled = True
            new = inferred(value)
        elif not fits(metric.datatype, value):
            new = widened(metric.datatype, value)
            if new != metric.datatype:
                _log.warning(
                    "Sparkplug metric %r declared %s gets %r: declared %s from now on (rebirth)",
                    update.name,
                    metric.datatype.name,
                    value,
                    new.name,
                )
        else:
            return False
        changed = new != metric.datatype
        metric.datatype = new
        return changed

    def _redefine(self, updates: list[Update], out: _Out) -> None:
        """Declarations the updates need; a rebirth (or a first DBIRTH) to make them known."""
        rebirth = False
        devices: set[str] = set()
        for update in updates:
            target = self._target(update.device)
            if self._retype_silently(target, update):
                rebirth = rebirth or update.device is None or target.born
            if update.device is not None:
                devices.add(update.device)
                target.seen = True
        if rebirth:
            _log.info("Sparkplug metrics changed: rebirth")
            self._birth_sequence(out)
            return
        for name in devices:  # a device seen for the first time, or waiting for its first values
            device = self._devices[name]
            if device.up and not device.born:
                out.dbirth(name, device)

    def _learn(self, metric: _Metric, update: Update) -> bool:
        """Take the update as the metric's newest value if it is; True when it is."""
        latest = metric.latest
        if update.past or (latest is not None and update.ts_ms < latest.ts_ms):
            return False
        metric.latest = _Point(update.value, update.quality, update.ts_ms)
        return True

    def _apply(self, update: Update, historical: bool, out: _Out) -> None:
        target, metric = self._metric(update)
        assert metric is not None  # declared by _redefine
        newest = self._learn(metric, update)
        if newest and historical:
            self._stale = True  # the newest value, but not yet sent as current
        if not target.born and update.device is not None:
            self.not_sent += 1  # its DDEATH said so; a DBIRTH will carry the newest value
            return
        point = _Point(update.value, update.quality, update.ts_ms)
        if newest and not historical:
            previous = metric.sent
            if previous is None or previous.key() != point.key():
                out.add(update.device, metric, point, previous, historical=False)
            metric.sent = point
            return
        previous = metric.history
        if previous is None or previous.key() != point.key():
            out.add(update.device, metric, point, previous, historical=True)
            metric.history = point

    # ------------------------------------------------------------------ internals: devices

    def _learn_link(self, body: dict[str, Any], ts_ms: int) -> tuple[str, _Target] | None:
        if "values" not in self._include:
            return None
        name = body["device"]
        device = self._target(name)
        if device.link_ms is not None and ts_ms < device.link_ms:
            return None  # older than what is known of the link
        device.up, device.link_ms = body["state"] == "up", ts_ms
        if self._born and device.up != device.born:
            self._stale = True
        return name, device

    def _link(self, body: dict[str, Any], ts_ms: int, historical: bool, out: _Out) -> None:
        learnt = self._learn_link(body, ts_ms)
        if learnt is None or historical:
            return  # a link change in a backlog is past: catch_up() sends where it is now
        name, device = learnt
        if device.up and not device.born and device.ready():
            out.dbirth(name, device)
        elif not device.up and device.born:
            out.ddeath(name, device)  # tck-id-operational-behavior-device-ddeath

    def _catch_up(self, out: _Out) -> None:
        self._stale = False
        for name, metric in self._node.metrics.items():
            self._send_current(None, name, metric, out)
        for device_name, device in self._devices.items():
            if device.up and not device.born:
                if device.ready():
                    out.dbirth(device_name, device)
                continue
            if not device.born:
                continue
            for name, metric in device.metrics.items():
                self._send_current(device_name, name, metric, out)
            if not device.up:  # its last values first, then its death
                out.ddeath(device_name, device)

    def _send_current(self, device: str | None, name: str, metric: _Metric, out: _Out) -> None:
        latest = metric.latest
        if latest is None or (metric.sent is not None and metric.sent.key() == latest.key()):
            return
        out.add(device, metric, latest, metric.sent, historical=False)
        metric.sent = latest

    # ------------------------------------------------------------------ internals: births

    def _birth_sequence(self, out: _Out) -> None:
        """NBIRTH and DBIRTHs (tck-id-payloads-dbirth-order: right after the NBIRTH)."""
        out.flush_all()  # what was pending belongs to the session's old declarations
        self._seq = 0  # tck-id-payloads-nbirth-seq; the NBIRTH starts the count
        self._born = True
        self._born_ns, self.rebirth_owed_ns = out.now_ms * 1_000_000, None
        self._stale = self._rebirth_due = False
        out.nbirth(self._node, self._bd_seq or 0, self._bd_alias)
        for name, device in self._devices.items():
            device.born = False
            if device.up and device.ready():
                out.dbirth(name, device)

    def _ndeath(self, now_ns: int) -> Message:
        payload = Payload(timestamp=now_ns // 1_000_000)  # no seq (tck-id-payloads-ndeath-seq)
        metric = payload.metrics.add(name=BD_SEQ, datatype=DataType.Int64)
        metric.timestamp = payload.timestamp
        put(metric, DataType.Int64, self._bd_seq or 0)
        return Message(self.topic("NDEATH"), payload.SerializeToString(), 1, False)

    def _next_seq(self) -> int:
        seq, self._seq = (
            self._seq,
            (self._seq + 1) % 256,
        )  # tck-id-payloads-sequence-num-incrementing
        return seq


class _Out:
    """Messages of one call, in publishing order; data metrics gathered per node or device."""

    def __init__(self, node: EdgeNode, now_ms: int) -> None:
        self.node = node
        self.now_ms = now_ms
        self.messages: list[Message] = []
        self.pending: dict[str | None, list[Any]] = {}

    def add(
        self,
        device: str | None,
        metric: _Metric,
        point: _Point,
        previous: _Point | None,
        *,
        historical: bool,
    ) -> None:
        # tck-id-payloads-alias-data-cmd-requirement: alias only; datatype left out
        # (tck-id-payloads-metric-datatype-not-req); a time stamp on every metric.
        entry = Payload.Metric(alias=metric.alias, timestamp=point.ts_ms)
        if historical:
            entry.is_historical = True
        put(entry, metric.datatype, point.value)
        was_good = previous is None or previous.quality == _GOOD
        if point.quality != _GOOD or not was_good:  # say GOOD again after BAD or STALE
            _quality(entry, point.quality)
        pending = self.pending.setdefault(device, [])
        pending.append(entry)
        if len(pending) >= MAX_METRICS_PER_MESSAGE:
            self.flush(device)

    def flush(self, device: str | None) -> None:
        entries = self.pending.pop(device, None)
        if not entries:
            return
        # One value per metric and time (the last given), in time order
        # (tck-id-operational-behavior-data-publish-nbirth-order / -dbirth-order).
        unique = {(e.alias, e.timestamp, e.is_historical): e for e in entries}
        payload = Payload(timestamp=self.now_ms)
        payload.metrics.extend(sorted(unique.values(), key=lambda e: e.timestamp))
        kind = "NDATA" if device is None else "DDATA"
        self._publish(kind, device, payload)

    def flush_all(self) -> None:
        for device in list(self.pending):
            self.flush(device)

    def nbirth(self, node: _Target, bd_seq: int, bd_alias: int) -> None:
        payload = Payload(timestamp=self.now_ms)
        bd = _Metric(BD_SEQ, bd_alias, DataType.Int64, True, _Point(bd_seq, _GOOD, self.now_ms))
        entries = [self._birth_entry(bd)]
        # tck-id-operational-behavior-data-commands-rebirth-name-aliases: no alias on Rebirth.
        rebirth = Payload.Metric(name=REBIRTH, timestamp=self.now_ms, datatype=DataType.Boolean)
        rebirth.boolean_value = False
        entries.append(rebirth)
        entries += [self._birth_entry(m) for m in node.metrics.values()]
        payload.metrics.extend(sorted(entries, key=lambda e: e.timestamp))
        self._publish("NBIRTH", None, payload)

    def dbirth(self, name: str, device: _Target) -> None:
        self.flush(name)
        payload = Payload(timestamp=self.now_ms)
        entries = [self._birth_entry(m) for m in device.metrics.values()]
        payload.metrics.extend(sorted(entries, key=lambda e: e.timestamp))
        device.born = True
        self._publish("DBIRTH", name, payload)

    def ddeath(self, name: str, device: _Target) -> None:
        self.flush(name)
        device.born = False
        self._publish("DDEATH", name, Payload(timestamp=self.now_ms))

    def _birth_entry(self, metric: _Metric) -> Any:
        """Name, alias and datatype (tck-id-payloads-alias-birth-requirement, -metric-datatype-
        req); the newest value, or is_null (tck-id-operational-behavior-data-publish-nbirth-values)."""
        latest = metric.latest
        entry = Payload.Metric(
            name=metric.name,
            alias=metric.alias,
            datatype=metric.datatype,
            timestamp=latest.ts_ms if latest is not None else self.now_ms,
        )
        if latest is None:
            entry.is_null = True
        else:
            put(entry, metric.datatype, latest.value)
            if latest.quality != _GOOD:
                _quality(entry, latest.quality)
        metric.sent = metric.history = latest
        return entry

    def _publish(self, kind: str, device: str | None, payload: Any) -> None:
        payload.seq = self.node._next_seq()
        topic = self.node.topic(kind, device)
        # QoS 0, not retained: tck-id-payloads-nbirth-qos, -dbirth-qos, -ndata-qos, -ddata-qos,
        # tck-id-topics-ddeath-mqtt (and the -retain requirements beside them).
        self.messages.append(Message(topic, payload.SerializeToString(), 0, False))

    def done(self) -> list[Message]:
        self.flush_all()
        return self.messages


def _quality(entry: Any, quality: str) -> None:
    # tck-id-payloads-propertyset-quality-value-type / -value: type 3 (Int32), an int_value.
    entry.properties.keys.append("Quality")
    value = entry.properties.values.add(type=DataType.Int32)
    value.int_value = _QUALITY_CODES.get(quality, 0)
