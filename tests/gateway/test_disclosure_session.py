"""The disclosure session keeps the product's core order and refuses every other one (misuse is a bug: it raises)."""

from __future__ import annotations

import anyio
import pytest

from gateway.audit.log import DisclosureStart, MemoryDisclosureLog
from gateway.audit.session import DisclosureSession, FinishStatus, SessionMisuseError, error_code
from gateway.errors import AuditUnavailableError, NotFoundError
from policies.errors import FilterError


def _session(log: MemoryDisclosureLog) -> DisclosureSession:
    start = DisclosureStart(
        "d1", "req", "lab", "research-continuity", 1, "sha256:x", "li", "basis", "research", "extract", {"filters": []}
    )
    return DisclosureSession(log, start)


def _types(log: MemoryDisclosureLog) -> list[str]:
    return [str(e["type"]) for e in log.entries]


def test_the_one_order_start_index_finish() -> None:
    log = MemoryDisclosureLog()
    session = _session(log)
    session.start_sync([b"s" * 16])
    session.index([b"t" * 16])
    session.finish(FinishStatus.COMPLETED, rows=2, nbytes=10, sha256="0" * 64)
    assert _types(log) == ["disclosure.started", "disclosure.finished"]
    assert log.entries[1]["status"] == "completed"
    assert log.subjects[0] == {b"s" * 16, b"t" * 16}
    assert session.finished and session.status is FinishStatus.COMPLETED


@pytest.mark.parametrize(
    "misuse",
    [
        pytest.param(lambda s: s.index([b"x" * 16]), id="index-before-start"),
        pytest.param(lambda s: s.finish(FinishStatus.COMPLETED), id="finish-before-start"),
    ],
)
def test_nothing_before_the_write_ahead_entry(misuse: object) -> None:
    log = MemoryDisclosureLog()
    session = _session(log)
    with pytest.raises(SessionMisuseError):
        misuse(session)  # type: ignore[operator]
    assert log.entries == [] and log.subjects == {}


def test_exactly_one_finish_and_one_start() -> None:
    log = MemoryDisclosureLog()
    session = _session(log)
    session.start_sync()
    with pytest.raises(SessionMisuseError):
        session.start_sync()
    session.finish(FinishStatus.ABORTED, rows=1, nbytes=3)
    for again in (
        lambda: session.finish(FinishStatus.COMPLETED),
        lambda: session.index([b"x" * 16]),
    ):
        with pytest.raises(SessionMisuseError):
            again()
    session.fail(RuntimeError("late"))  # a failure after the finish records nothing more
    assert _types(log) == ["disclosure.started", "disclosure.finished"]


def test_status_is_a_closed_set() -> None:
    log = MemoryDisclosureLog()
    session = _session(log)
    session.start_sync()
    with pytest.raises(SessionMisuseError):
        session.finish("done")  # type: ignore[arg-type]
    assert _types(log) == ["disclosure.started"]


def test_a_failed_start_leaves_the_session_unstarted() -> None:
    log = MemoryDisclosureLog()
    log.failing = True
    session = _session(log)
    with pytest.raises(AuditUnavailableError):
        anyio.run(session.start)
    assert not session.started
    session.fail(RuntimeError("x"))  # nothing to finish: no entry was written
    assert log.entries == []


def test_a_finish_that_fails_is_not_written_twice() -> None:
    log = MemoryDisclosureLog()
    session = _session(log)
    session.start_sync()
    log.failing = True
    with pytest.raises(AuditUnavailableError):
        session.finish(FinishStatus.COMPLETED)
    log.failing = False
    session.fail(RuntimeError("after"))
    assert _types(log) == ["disclosure.started"]  # the operator sees a disclosure left "started", never two ends


def test_error_codes_never_carry_an_exception_text() -> None:
    secret = "110105201903120012"
    assert error_code(RuntimeError(secret)) == "internal-error"
    assert error_code(KeyError(secret)) == "internal-error"
    assert error_code(NotFoundError(secret)) == NotFoundError.code
    assert error_code(FilterError(secret)) == FilterError.code


def test_repr_shows_no_plan() -> None:
    log = MemoryDisclosureLog()
    start = DisclosureStart(
        "d9",
        "req",
        "lab",
        "a",
        1,
        "sha256:x",
        "li",
        "basis",
        "research",
        "extract",
        {"filters": ["110105201903120012"]},
    )
    assert "110105" not in repr(DisclosureSession(log, start))
