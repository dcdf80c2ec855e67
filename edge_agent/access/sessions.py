"""Login sessions of the local page, in memory: a restart logs everyone out, which is fine here.

Each session has its own CSRF token, which the page sends back in a header with every state
change; a form or script on another site can make the browser send the cookie, not the header.
Failed logins are limited per client address, so a password cannot be guessed at speed.
"""

from __future__ import annotations

__all__ = ["Session", "Sessions"]

import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.access.roles import Identity

_IDLE_S = 8 * 3600.0  # a shift: a page left open in the control room stays logged in
_MAX_AGE_S = 24 * 3600.0
_MAX_SESSIONS = 256
_FAILURES = 5  # failed logins per client address and user name ...
_FAILURE_WINDOW_S = 60.0  # ... in this long, before further tries are refused for a while
_MAX_CLIENTS = 4096  # addresses whose failures are remembered


@dataclass
class Session:
    identity: Identity
    csrf: str
    created: float
    seen: float


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, identity: Identity) -> tuple[str, Session]:
        now = self._clock()
        sid = secrets.token_urlsafe(32)
        session = Session(identity, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)  # the least recently used goes
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.seen > _IDLE_S or now - session.created > _MAX_AGE_S:
                del self._sessions[sid]
                return None
            session.seen = now
            self._sessions.move_to_end(sid)
            return session

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def end_for(self, name: str) -> None:
        """Log a user out everywhere (password changed, user removed)."""
        with self._lock:
            for sid in [s for s, v in self._sessions.items() if v.identity.name == name]:
                del self._sessions[sid]

    def may_try(self, client: str) -> bool:
        """False while `client` has failed too many logins lately."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return True
            while failures and now - failures[0] > _FAILURE_WINDOW_S:
                failures.popleft()
            return len(failures) < _FAILURES

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, deque()).append(self._clock())
            self._failures.move_to_end(client)
            while len(self._failures) > _MAX_CLIENTS:
                self._failures.popitem(last=False)
