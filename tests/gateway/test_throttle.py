"""The failed-authentication throttle on its own, with a fake clock."""

from __future__ import annotations

import pytest

from gateway.throttle import AuthThrottle, SlidingWindowCounter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_blocked_at_the_limit_until_its_oldest_event_leaves_the_window() -> None:
    clock = Clock()
    counter = SlidingWindowCounter(3, 60.0, clock=clock)
    assert counter.add("a") is False
    clock.now += 1
    assert counter.add("a") is False
    assert counter.retry_after("a") is None
    clock.now += 9
    assert counter.add("a") is True  # the third reaches the limit
    assert counter.retry_after("a") == pytest.approx(50.0)  # the first, at t=0, leaves at t=60
    assert counter.retry_after("b") is None  # keys are independent
    clock.now += 49.9
    assert counter.retry_after("a") == pytest.approx(0.1)
    clock.now += 0.1
    assert counter.retry_after("a") is None  # two left in the window: one more may be tried
    assert counter.add("a") is True
    assert counter.retry_after("a") == pytest.approx(1.0)  # now the one at t=1 is the oldest of three


def test_old_events_are_forgotten_and_memory_is_bounded() -> None:
    clock = Clock()
    counter = SlidingWindowCounter(2, 5.0, clock=clock, max_keys=100)
    counter.add("x")
    clock.now += 5.0
    counter.add("x")
    assert counter.retry_after("x") is None  # the first left the window exactly at 5 s
    for n in range(1000):
        counter.add(f"k{n}")
    assert "tracked=100" in repr(counter) or "tracked=99" in repr(counter)
    assert "k999" not in repr(counter)  # the repr never names a key


def test_auth_throttle_blocks_by_address_or_by_key_id_in_whole_seconds() -> None:
    clock = Clock()
    throttle = AuthThrottle(per_address=3, per_key_id=2, window_s=30.0, clock=clock)
    throttle.failed("10.0.0.1", "aaaaaaaaaaaaaaaa")
    clock.now += 0.5
    throttle.failed("10.0.0.2", "aaaaaaaaaaaaaaaa")
    # The key id is blocked wherever it is tried from; another key id from the same address is not.
    assert throttle.retry_after("10.0.0.9", "aaaaaaaaaaaaaaaa") == 30  # 29.5 s, rounded up
    assert throttle.retry_after("10.0.0.1", "bbbbbbbbbbbbbbbb") is None
    throttle.failed("10.0.0.1", None)
    throttle.failed("10.0.0.1", None)
    assert throttle.retry_after("10.0.0.1", None) == 30
    assert throttle.retry_after("10.0.0.3", None) is None
    clock.now += 29.3
    assert throttle.retry_after("10.0.0.1", None) == 1  # never 0: Retry-After 0 invites a busy loop
    clock.now += 1
    assert throttle.retry_after("10.0.0.1", None) is None
    assert throttle.retry_after("10.0.0.9", "aaaaaaaaaaaaaaaa") is None
    assert "10.0.0" not in repr(throttle) and "aaaa" not in repr(throttle)


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SlidingWindowCounter(0, 60.0)
    with pytest.raises(ValueError, match="positive"):
        SlidingWindowCounter(1, 0.0)


def test_a_key_that_authenticated_is_not_held_back_by_its_address() -> None:
    """Clients behind one proxy share an address: one client's bad keys must not lock out another's working key.
    The key id's own counter still applies."""
    now = [0.0]
    throttle = AuthThrottle(per_address=2, per_key_id=2, window_s=60, clock=lambda: now[0])
    throttle.succeeded("goodkeyid0000000")
    for _ in range(2):
        throttle.failed("10.0.0.1", None)
    assert throttle.retry_after("10.0.0.1", None) is not None  # the guesser is held back
    assert throttle.retry_after("10.0.0.1", "otherkeyid000000") is not None  # as is any key not seen working
    assert throttle.retry_after("10.0.0.1", "goodkeyid0000000") is None  # the working client is not
    for _ in range(2):
        throttle.failed("10.0.0.2", "goodkeyid0000000")
    assert throttle.retry_after("10.0.0.1", "goodkeyid0000000") is not None  # its own failures still count
    now[0] = 61.0
    assert throttle.retry_after("10.0.0.1", "goodkeyid0000000") is None
