"""Optional OpenTelemetry spans: with the SDK installed (dev extra) the request, the log write, the registry query
and the transform are spans with allow-listed attributes only; without the package every span is a no-op."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.telemetry import tracing
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> Iterator[None]:
    # The global provider can be set once per process; this module is its only user in the test run.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    yield
    provider.shutdown()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    _EXPORTER.clear()
    return _EXPORTER


async def test_spans_of_a_request_carry_no_identifier(
    sqlite_env: Env, registry_path: Path, spans: InMemorySpanExporter
) -> None:
    env = sqlite_env
    conn = sqlite3.connect(registry_path)
    child_id, national_id = conn.execute(
        "SELECT child_id, national_id FROM child_registry WHERE status = 'enrolled' LIMIT 1"
    ).fetchone()
    conn.close()
    async with env.client() as client:
        extract = await client.post(
            "/v1/agreements/research-continuity/extract", headers=env.auth("research"), json={"limit": 2}
        )
        record = await client.get(f"/v1/agreements/school-transfer/records/{child_id}", headers=env.auth("school"))
    assert extract.status_code == 200 and record.status_code == 200
    env.flush()
    finished = spans.get_finished_spans()
    names = {s.name for s in finished}
    assert {"http.request", "disclosure_log.commit", "registry.query", "release.transform"} <= names
    routes = {s.attributes.get("http.route") for s in finished if s.name == "http.request" and s.attributes}
    assert routes == {"/v1/agreements/{agreement_id}/extract", "/v1/agreements/{agreement_id}/records/{subject_id}"}
    for s in finished:
        attributes = dict(s.attributes or {})
        assert set(attributes) <= tracing.ALLOWED_ATTRIBUTES, s.name
        shown = repr(attributes) + repr([e.attributes for e in s.events])
        for leaked in (child_id, national_id, env.keys["research"][:16], "pku-education-lab", "receiving-school"):
            assert leaked not in shown, (s.name, leaked)


def test_an_attribute_outside_the_allow_list_is_dropped(spans: InMemorySpanExporter) -> None:
    with tracing.span("t", {"dxg.rows": 3, "subject_id": "110105201903150021", "principal": "x"}) as annotate:
        annotate({"http.route": "/v1/x/{id}", "client.address": "10.0.0.1", "dxg.operation": None})
    (only,) = spans.get_finished_spans()
    assert dict(only.attributes or {}) == {"dxg.rows": 3, "http.route": "/v1/x/{id}"}


def test_an_error_is_recorded_by_type_never_by_message(spans: InMemorySpanExporter) -> None:
    secret = "INSERT ... VALUES ('110105201903150021')"
    with pytest.raises(RuntimeError), tracing.span("t"):
        raise RuntimeError(secret)
    (only,) = spans.get_finished_spans()
    assert only.attributes == {"error.type": "RuntimeError"}
    assert only.status.status_code is trace.StatusCode.ERROR
    assert secret not in repr(only.status.description) and not only.events


def test_without_opentelemetry_spans_are_no_ops(monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter) -> None:
    monkeypatch.setattr(tracing, "_trace", None)
    assert not tracing.enabled()
    with tracing.span("t", {"dxg.rows": 1}) as annotate:
        annotate({"http.route": "/x"})  # still callable: callers need not check
    assert spans.get_finished_spans() == ()


def test_the_guard_finds_no_package_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_otel(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_otel)
    monkeypatch.delitem(__import__("sys").modules, "opentelemetry.trace")
    assert tracing._load_trace() is None
