"""Throttling of failed authentication: per client address and per API key id, in this process.

API keys hold 256 random bits, so guessing one is hopeless; what the throttle stops is the cheap part of an attack
the key's strength does not: hammering the sign-in form and the API with wrong keys (each costing a database read and
an HMAC), probing which key ids exist, and filling the logs. After ``limit`` failures within ``window_s`` seconds
from one address, or naming one key id, further attempts get ``429`` with ``Retry-After`` until the oldest of those
failures leaves the window, without any key check being done. Successful authentications never count and never
reset the count (or one valid key would let its holder reset the counter while guessing others).

Counters live in the process: a deployment of N processes allows up to N times the limit, and a restart forgets
them. Behind a reverse proxy every client has the proxy's address (``X-Forwarded-For`` is not trusted: a client
could send any), so the per-address limit then applies to all clients together; run the proxy's own limits there.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.applog import get_logger

__all__ = ["AuthThrottle", "LimitReached", "SlidingWindowCounter"]

_log = get_logger("gateway.auth")


class SlidingWindowCounter:
    """Events per key in a sliding window of ``window_s`` seconds; a key with ``limit`` events is blocked.

    At most ``max_keys`` keys are tracked: beyond that the keys whose last event is oldest are forgotten (memory stays
    bounded whatever an attacker sends; it can at worst make the counter forget some keys, not block anyone).
    """

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be at least 1 and window_s positive")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the keys: they are addresses and key ids
        return f"SlidingWindowCounter(limit={self.limit}, window_s={self.window_s}, tracked={len(self._events)})"

    def _live(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None if it is not blocked."""
        with self._lock:
            now = self._clock()
            events = self._live(key, now)
            if events is None or len(events) < self.limit:
                return None
            # Allowed again once enough of the oldest events have left the window to fall below the limit.
            return events[len(events) - self.limit] + self.window_s - now

    def add(self, key: str) -> bool:
        """Count one event for ``key``; True if this event reached the limit (the key is now blocked)."""
        with self._lock:
            now = self._clock()
            events = self._live(key, now)
            if events is None:
                if len(self._events) >= self._max_keys:
                    self._evict(now)
                events = self._events[key] = deque(maxlen=self.limit)
            else:  # most recently used last, so eviction drops the stalest keys
                self._events[key] = self._events.pop(key)
            events.append(now)
            return len(events) == self.limit

    def _evict(self, now: float) -> None:
        for key in list(self._events):
            self._live(key, now)
        while len(self._events) >= self._max_keys:
            del self._events[next(iter(self._events))]


_MAX_GOOD = 10_000


@dataclass(frozen=True, slots=True)
class LimitReached:
    """A counter reached its limit for some source: what the ``alert.auth_failures`` log entry says. Only the kind
    of counter and counts, never the address or the key id (personal data or half a key), never a key."""

    counter: str  # "client-address" | "api-key-id"
    limit: int
    window_s: float
    #: sources that reached this limit since the previous alert of this kind (including this one)
    sources: int

    def entry(self) -> dict[str, object]:
        return {
            "type": "alert.auth_failures",
            "counter": self.counter,
            "limit": self.limit,
            "window_s": math.ceil(self.window_s),  # the log's canonical JSON (RFC 8785 here) holds integers only
            "sources": self.sources,
        }


class AuthThrottle:
    """Failed API-key checks (API and dashboard sign-in) per client address and per key id."""

    def __init__(
        self,
        *,
        per_address: int = 10,
        per_key_id: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.by_address = SlidingWindowCounter(per_address, window_s, clock=clock)
        self.by_key_id = SlidingWindowCounter(per_key_id, window_s, clock=clock)
        self._clock = clock
        self._window_s = window_s
        # key id -> when it last authenticated here: such a key is not refused for its address's failures (clients
        # behind one proxy or NAT must not lock each other out); its own key-id counter still applies
        self._good: dict[str, float] = {}
        # Alerts (log entries for compliance) at most once per counter kind and window, however many sources reach
        # a limit: a distributed attack yields one entry a minute per kind, with the number of sources, not a flood.
        self._alerted: dict[str, float] = {}
        self._unreported: dict[str, int] = {}
        self._alert_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AuthThrottle(address={self.by_address!r}, key_id={self.by_key_id!r})"

    def retry_after(self, address: str, key_id: str | None) -> int | None:
        """Whole seconds (at least 1) until an attempt from ``address`` naming ``key_id`` is allowed, or None."""
        waits = [] if self._recently_good(key_id) else [self.by_address.retry_after(address)]
        if key_id is not None:
            waits.append(self.by_key_id.retry_after(key_id))
        longest = max((w for w in waits if w is not None), default=None)
        return None if longest is None else max(1, math.ceil(longest))

    def _recently_good(self, key_id: str | None) -> bool:
        if key_id is None:
            return False
        at = self._good.get(key_id)
        return at is not None and self._clock() - at < self._window_s

    def succeeded(self, key_id: str | None) -> None:
        """A key with this id authenticated: its address's failures no longer hold it back (for one window)."""
        if key_id is None:
            return
        if len(self._good) >= _MAX_GOOD:  # bounded: forget the stalest
            for stale in sorted(self._good, key=self._good.__getitem__)[: _MAX_GOOD // 10]:
                del self._good[stale]
        self._good[key_id] = self._clock()

    def failed(self, address: str, key_id: str | None) -> list[LimitReached]:
        """Count a failure; return the alerts due (a limit reached, at most one per counter kind and window)."""
        due: list[LimitReached] = []
        # Logged once when a limit is reached, by kind only: an address or a key id is not for the log.
        if self.by_address.add(address):
            _log.warning("auth_failures_limit_reached", kind="client-address", window_s=self.by_address.window_s)
            due.extend(self._alert("client-address", self.by_address))
        if key_id is not None and self.by_key_id.add(key_id):
            _log.warning("auth_failures_limit_reached", kind="api-key-id", window_s=self.by_key_id.window_s)
            due.extend(self._alert("api-key-id", self.by_key_id))
        return due

    def _alert(self, kind: str, counter: SlidingWindowCounter) -> list[LimitReached]:
        with self._alert_lock:
            now = self._clock()
            self._unreported[kind] = self._unreported.get(kind, 0) + 1
            last = self._alerted.get(kind)
            if last is not None and now - last < self._window_s:
                return []
            self._alerted[kind] = now
            sources = self._unreported.pop(kind)
        return [LimitReached(kind, counter.limit, counter.window_s, sources)]
