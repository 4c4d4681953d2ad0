"""Shared pieces of the benchmarks: a deployment of a given size, a gateway server process, RSS, machine facts."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

PASSTHROUGH = """\
# Benchmark only: every column of the research extract (no free text), kept as is: the gateway's own floor.
id: bench-passthrough
version: 1
title: Benchmark passthrough (keep-all)
parties: [pku-education-lab]
purpose: benchmark
legal_basis: "Benchmark of the gateway itself on synthetic data"
approved_by: li.ming@registry.example
valid_from: 2020-01-01
valid_until: 2099-12-31
dataset: children
operations: [extract, record]
fields:
  child_id: keep
  birth_date: keep
  gender: keep
  residence_code: keep
  enrollment_date: keep
  status: keep
  low_income: keep
  migrant: keep
# kept identifiers are released on purpose here; the egress scan still checks every other column
egress: {on_finding: block, exempt: [child_id]}
"""

#: below this many children the demo's k = 5 classes withhold more than its 5% (the extract is refused): the
#: benchmark then measures a twin that allows more suppression, with the same transforms, k and l
SMALL_REGISTRY = 50_000


def _research_text(agreement_id: str, title: str, *, notes: bool, max_suppression: float | None) -> str:
    """The demo's research agreement under another id (bench only): optionally with the notes redacted, as the
    free-text target measures, and with another maximum suppression."""
    text = (ROOT / "gateway" / "demo" / "files" / "agreements" / "research-continuity.yaml").read_text("utf-8")
    text = text.replace("$valid_from", "2020-01-01").replace("$valid_until", "2099-12-31")
    text = text.replace("id: research-continuity", f"id: {agreement_id}", 1)
    lines = [line for line in text.splitlines() if not line.startswith(("version:", "title:"))]
    text = "\n".join([lines[0], "version: 1", f'title: "{title}"', *lines[1:]]) + "\n"
    if notes:
        text = text.replace(
            "  notes:           drop", "  notes:           {redact: [CN_RESIDENT_ID, CN_MOBILE, PERSON, EMAIL_ADDRESS]}"
        )
    if max_suppression is not None:
        text = text.replace("max_suppression: 0.05", f"max_suppression: {max_suppression}")
    return text


def bench_agreements() -> dict[str, str]:
    from .attribution import AGREEMENT, AGREEMENT_ID  # the attribution benchmark's own agreement

    return {
        AGREEMENT_ID: AGREEMENT,
        "bench-passthrough": PASSTHROUGH,
        "bench-research-small": _research_text(
            "bench-research-small",
            "Benchmark: the research release on a small registry",
            notes=False,
            max_suppression=0.5,
        ),
        "bench-research-notes": _research_text(
            "bench-research-notes",
            "Benchmark: the research release with the notes redacted",
            notes=True,
            max_suppression=0.5,
        ),
    }


def research_agreement(rows: int) -> str:
    """The agreement the research figures are measured under: the demo's own, except on small registries."""
    return "research-continuity" if rows >= SMALL_REGISTRY else "bench-research-small"


#: the fields the demo's research agreement releases (version 2), none of them free text (docs/design.md §9)
RESEARCH_FIELDS = [
    "child_id",
    "birth_date",
    "gender",
    "residence_code",
    "enrollment_date",
    "status",
    "low_income",
    "migrant",
]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
        ).stdout.strip()
        or "unknown"
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
    }


def deployment(rows: int, *, base: Path | None = None) -> Path:
    """A demo deployment with ``rows`` children plus the bench agreements (built once, then reused)."""
    from gateway.demo.deployment import build_demo

    directory = (base or ROOT / "var") / f"bench-{rows}"
    build_demo(directory, rows=rows, seed=2026)
    missing = False
    for name, text in bench_agreements().items():
        extra = directory / "agreements" / f"{name}.yaml"
        if not extra.exists() or extra.read_text(encoding="utf-8") != text:
            extra.write_text(text, encoding="utf-8")
            missing = True
    if missing:
        build_demo(directory, rows=rows, seed=2026)  # installs the new files (idempotent for the rest)
    return directory


def rows_of(directory: Path) -> int:
    """The registry size of a deployment made by ``deployment`` (its folder is named after it)."""
    return int(directory.name.rsplit("-", 1)[1])


def credentials(directory: Path, agreement: str) -> str:
    entries = json.loads((directory / "credentials.json").read_text())
    key: str = next(
        e["api_key"]
        for e in entries
        if agreement in e["agreements"] or (agreement.startswith("bench-") and e["principal"] == "pku-education-lab")
    )
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float:
        """VmHWM of the server process (and its workers): the peak resident set since it started."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total = max(total, int(line.split()[1]))
            except OSError:
                continue
        return total / 1024


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextmanager
def server(
    directory: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    command: Sequence[str] | None = None,
) -> Iterator[Server]:
    """A gateway (or, with ``command``, another server taking ``--port``) on a free port, ready when it returns.

    ``prefix`` goes before the command (the records benchmark pins the server to a core with ``taskset``).
    """
    port = free_port()
    argv = (
        [*command, "--port", str(port)]
        if command is not None
        else [
            sys.executable,
            "-m",
            "gateway.cli.main",
            "serve",
            "--data-dir",
            str(directory),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    )
    process = subprocess.Popen(
        [*prefix, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the gateway did not become ready")
            time.sleep(0.2)
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
