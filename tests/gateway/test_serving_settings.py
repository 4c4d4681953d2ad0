"""Serving-limit settings (checked at load with file, key and reason), the metrics token, and the extract slots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from gateway.errors import ConfigError, TooManyExtractsError
from gateway.settings import load_settings
from gateway.web.app import create_app
from gateway.web.limits import ExtractSlots, ServingLimits
from tests import _logscan
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio
BASE = {"registry_url": "sqlite:///r.db", "database_url": "sqlite:///g.db"}


def _load(path: Path, **values: Any) -> Any:
    path.write_text(yaml.safe_dump({**BASE, **values}), encoding="utf-8")
    return load_settings(path, env={})


def test_defaults_and_values_are_read(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    default = _load(path)
    assert (default.header_timeout_s, default.body_timeout_s, default.keep_alive_timeout_s) == (10.0, 30.0, 5)
    assert (default.max_connections, default.max_concurrent_extracts, default.metrics_token_file) == (1000, 4, None)
    set_ = _load(path, header_timeout_s=2, body_timeout_s=0.5, keep_alive_timeout_s=1, max_connections=50,
                 max_concurrent_extracts=1, metrics_token_file="metrics.token")  # fmt: skip
    assert (set_.header_timeout_s, set_.body_timeout_s, set_.max_connections) == (2.0, 0.5, 50)
    assert set_.metrics_token_file == tmp_path / "metrics.token"  # relative to the folder of gateway.yaml


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("header_timeout_s", 0),
        ("header_timeout_s", -1),
        ("header_timeout_s", 601),
        ("header_timeout_s", "10"),
        ("header_timeout_s", True),
        ("header_timeout_s", float("nan")),
        ("body_timeout_s", float("inf")),
        ("keep_alive_timeout_s", 0.5),
        ("max_connections", 1),
        ("max_connections", "many"),
        ("max_concurrent_extracts", 0),
        ("metrics_token_file", ""),
    ],
)
def test_wrong_values_stop_the_start_with_file_key_and_reason(tmp_path: Path, key: str, bad: Any) -> None:
    path = tmp_path / "gateway.yaml"
    with pytest.raises(ConfigError) as caught:
        _load(path, **{key: bad})
    message = str(caught.value)
    assert message.startswith(str(path)) and f": {key}: expected" in message


def test_a_weak_or_readable_metrics_token_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    token = tmp_path / "metrics.token"
    settings = _load(path, metrics_token_file="metrics.token")
    with pytest.raises(ConfigError, match="metrics_token_file: cannot read"):
        ServingLimits.of(settings)
    token.write_text("short\n")
    token.chmod(0o600)
    with pytest.raises(ConfigError, match="at least 16"):
        ServingLimits.of(settings)
    token.write_text("a-long-enough-metrics-token\n")
    token.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by group or others"):
        ServingLimits.of(settings)
    token.chmod(0o600)
    limits = ServingLimits.of(settings)
    assert limits.metrics_token == "a-long-enough-metrics-token"
    assert "a-long-enough" not in repr(limits)


async def test_metrics_behind_a_token_refuse_without_it_and_never_take_an_api_key(sqlite_env: Env) -> None:
    token = "metrics-token-0123456789abcdef"
    _logscan.register_secret(token, "metrics token")
    env = Env(create_app(sqlite_env.services, ServingLimits(metrics_token=token)), sqlite_env.services,
              sqlite_env.keys, sqlite_env.engine)  # fmt: skip
    async with env.client() as client:
        for headers in ({}, env.auth("compliance"), {"Authorization": f"Bearer {token}x"}, {"Authorization": token}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["content-type"] == "application/problem+json"
            assert token not in refused.text
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and "dxg_auth_failures_total" in ok.text
    assert token not in ok.text


def test_extract_slots_hold_per_principal_and_free_once() -> None:
    slots = ExtractSlots(2)
    first, second = slots.acquire("a"), slots.acquire("a")
    other = slots.acquire("b")  # another principal is not held back
    with pytest.raises(TooManyExtractsError) as caught:
        slots.acquire("a")
    assert caught.value.headers["Retry-After"] == "5" and caught.value.status == 429
    first()
    first()  # freeing twice frees one slot, not two
    third = slots.acquire("a")
    with pytest.raises(TooManyExtractsError):
        slots.acquire("a")
    for release in (second, third, other):
        release()
    assert slots.running("a") == 0 and slots.running("b") == 0


async def test_the_body_deadline_bounds_a_body_and_nothing_else() -> None:
    from gateway.errors import RequestTimeoutError
    from gateway.web.limits import BodyDeadlineMiddleware

    async def late_reader(scope: Any, receive: Any, send: Any) -> None:
        await anyio.sleep(0.3)  # past the deadline before the first receive (a long handler)
        await receive()

    async def instant() -> dict[str, Any]:
        await anyio.sleep(0)  # a checkpoint: a timeout due now would fire here
        return {"type": "http.request", "body": b"", "more_body": False}

    async def never() -> dict[str, Any]:
        await anyio.sleep(3600)
        raise AssertionError("unreachable")

    guarded = BodyDeadlineMiddleware(late_reader, timeout_s=0.1)
    # No body announced: not bounded, even read after the deadline (a streamed GET listens for the disconnect).
    await guarded({"type": "http", "headers": []}, instant, None)
    await guarded({"type": "http", "headers": [(b"content-length", b"0")]}, instant, None)
    # A body announced and not arriving: 408 (RequestTimeoutError), with Connection: close.
    for headers in ([(b"content-length", b"40")], [(b"transfer-encoding", b"chunked")]):
        with anyio.fail_after(5), pytest.raises(RequestTimeoutError) as caught:
            await guarded({"type": "http", "headers": headers}, never, None)
        assert caught.value.status == 408 and caught.value.headers == {"Connection": "close"}
