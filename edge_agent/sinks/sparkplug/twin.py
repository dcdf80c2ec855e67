"""Another edge node born under this one's group and edge node id: a configuration to fix.

Sparkplug keeps nothing retained for an edge node, so two agents given the same `group_id` and
`edge_node_id` (a copied file, with its own agent id) both connect and both publish: host
applications see one node whose seq jumps and whose metrics change meaning, ask for rebirths, and
mix the two machines' data. The node listens to its own NBIRTH topic; a birth there that it did not
publish (its births are known by a digest of their bytes) is another node's. That is reported, by
the node that sees it: a log line and /health, for whoever fixes the configuration. Both nodes go
on publishing: neither can tell which of the two the plant means.

Births are not retained, so the node born second would not hear of the first until the first's
next birth. A node that finds a twin it did not know of (none seen within the hour) therefore
answers with one rebirth of its own: the twin hears of it then, answers in turn, and that answer
reaches a node that knows already. Two births each at most, however often the pair meets.
"""

from __future__ import annotations

__all__ = ["Seen", "TwinWatch"]

import hashlib
import logging
import threading
import time
from collections import deque
from enum import Enum

from google.protobuf.message import DecodeError

from edge_agent.sinks.sparkplug.codec import read
from edge_agent.sinks.sparkplug.node import BD_SEQ
from edge_agent.sinks.sparkplug.schema import DataType, Payload
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)

_OWN_KEPT = 16  # digests of the node's own recent births (a burst of rebirths stays below it)
_DECODE_MAX = 1024 * 1024  # another node's birth is read for its bdSeq only up to this size
_LOG_EVERY_NS = 600 * 1_000_000_000  # a twin that keeps being born: a line per 10 minutes
_SHOWN_NS = 3600 * 1_000_000_000  # /health names it for an hour after its last birth


class Seen(Enum):
    OWN = "own"  # the echo of a birth this node sent
    TWIN = "twin"  # another node's, while one is known within the hour
    NEW_TWIN = "new twin"  # another node's, none known before it: answer with a birth


class TwinWatch:
    def __init__(self, sink: str, group_id: str, edge_node_id: str, endpoint: str) -> None:
        self._sink = sink
        self._node = f"{group_id}/{edge_node_id}"
        self._endpoint = endpoint
        self._own: deque[bytes] = deque(maxlen=_OWN_KEPT)
        # sent() runs where the node publishes, received() on paho's thread: only the digests
        # are shared, so hashing and reading another node's birth happen outside the lock.
        self._lock = threading.Lock()
        self.foreign = 0  # births of another node seen since the start
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self._last_bd_seq: int | None = None
        self._logged_ns: int | None = None

    def sent(self, payload: bytes) -> None:
        """The node is about to publish this NBIRTH (before paho has it: its echo comes after)."""
        digest = _digest(payload)
        with self._lock:
            self._own.append(digest)

    def received(self, payload: bytes, now_ns: int | None = None) -> Seen:
        """An NBIRTH on the node's own topic: whose it is."""
        digest = _digest(payload)
        with self._lock:
            if digest in self._own:
                self._own.remove(digest)  # the broker gives each of ours back once
                return Seen.OWN
        now_ns = time.time_ns() if now_ns is None else now_ns
        seen = Seen.NEW_TWIN if self.conflict(now_ns) is None else Seen.TWIN
        self.foreign += 1
        self._first_ns = self._first_ns or now_ns
        self._last_ns = now_ns
        self._last_bd_seq = _bd_seq(payload)
        if self._logged_ns is None or now_ns - self._logged_ns >= _LOG_EVERY_NS:
            _log.error("%s: %s", self._sink, self._describe())
            self._logged_ns = now_ns
        return seen

    def conflict(self, now_ns: int | None = None) -> str | None:
        """For /health: what was seen, for an hour after the last birth of the other node."""
        if self._last_ns is None:
            return None
        now_ns = time.time_ns() if now_ns is None else now_ns
        return self._describe() if now_ns - self._last_ns < _SHOWN_NS else None

    def _describe(self) -> str:
        assert self._last_ns is not None and self._first_ns is not None
        bd_seq = "" if self._last_bd_seq is None else f", bdSeq {self._last_bd_seq}"
        times = (
            f"{self.foreign} births since {iso_utc(self._first_ns)}" if self.foreign > 1 else "once"
        )
        return (
            f"another Sparkplug edge node is born as {self._node} on {self._endpoint} (last at "
            f"{iso_utc(self._last_ns)}{bd_seq}; {times}): two agents share this group_id and "
            "edge_node_id, and host applications mix their data. Give each agent its own "
            "edge_node_id (or group_id)"
        )


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def _bd_seq(payload: bytes) -> int | None:
    """The bdSeq another node's birth carries, when it is readable."""
    if len(payload) > _DECODE_MAX:
        return None
    try:
        birth = Payload.FromString(payload)
    except (DecodeError, RecursionError):
        return None
    for metric in birth.metrics:
        if metric.name == BD_SEQ:
            value = read(metric, DataType.Int64)
            return value if isinstance(value, int) else None
    return None
