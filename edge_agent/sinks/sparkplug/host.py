"""Whether the primary host application is online, from its STATE messages (Sparkplug 3.0).

A host application publishes, retained and with QoS 1, on `spBv1.0/STATE/<host_id>`, the JSON
`{"online": true|false, "timestamp": <UTC ms>}`; the broker publishes the offline one as its
will. An edge node configured with that host waits for online before its birth
(tck-id-message-flow-edge-node-birth-publish-phid-wait) and, when the host goes offline, sends its
NDEATH and disconnects (tck-id-message-flow-edge-node-birth-publish-phid-offline). A message
older than the last one taken is a stale will from an earlier host session and is ignored
(tck-id-operational-behavior-edge-node-termination-host-offline-timestamp).
"""

from __future__ import annotations

__all__ = ["PrimaryHost", "state_topic"]

import json
import logging
import math

_log = logging.getLogger(__name__)


def state_topic(host_id: str) -> str:
    return f"spBv1.0/STATE/{host_id}"


_MAX_STATE_BYTES = 4096


class PrimaryHost:
    """Feed it the STATE messages of its topic; `online` says what they add up to."""

    def __init__(self, host_id: str) -> None:
        self.host_id = host_id
        self.topic = state_topic(host_id)
        self.online = False
        self._timestamp: int | float | None = None

    def update(self, topic: str, payload: bytes) -> bool | None:
        """Take one STATE message: True or False when it says the host is online or offline
        (and is newer than the last one taken), None when it says nothing (another host's
        topic, not the JSON of 3.0, or an old will)."""
        if topic != self.topic:  # tck-id-message-flow-edge-node-birth-publish-phid-wait-id
            return None
        try:  # a STATE is a few dozen bytes: a large one is not parsed
            state = json.loads(payload) if len(payload) <= _MAX_STATE_BYTES else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            state = None
        online = state.get("online") if isinstance(state, dict) else None
        timestamp = state.get("timestamp") if isinstance(state, dict) else None
        if not isinstance(online, bool) or not _is_time(timestamp):
            _log.warning(
                'Sparkplug STATE of %s is not {"online": true|false, "timestamp": <ms>}: '
                "ignored (a host application older than Sparkplug 3.0?)",
                self.host_id,
            )
            return None
        assert isinstance(timestamp, int | float)
        if self._timestamp is not None and timestamp < self._timestamp:
            return None  # tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp
        self._timestamp = timestamp
        self.online = online
        return online

    def disconnected(self) -> None:
        """The broker connection is gone: offline until the retained STATE comes on the next
        one. The last time stamp is kept, so an old will cannot pass for news."""
        self.online = False


def _is_time(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0
