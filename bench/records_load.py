"""Measurement 5: single-record requests with 32 concurrent clients (wrk in a separate process).

Each request is a full disclosure: authentication, agreement checks, a write-ahead log entry (group-committed,
durable) before the record is read, the subject index, the finished entry. SQLite and PostgreSQL gateway state,
1 and 2 worker processes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import credentials, server

LUA = """
math.randomseed(%(seed)d)
request = function()
  local n = math.random(1, %(rows)d)
  local path = string.format("/v1/agreements/bench-passthrough/records/C%%08d", n)
  return wrk.format("GET", path, {["Authorization"] = "Bearer %(key)s"})
end
"""


def _parse(output: str) -> dict[str, Any]:
    def latency(label: str) -> float | None:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not m:
            return None
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    total = re.search(r"(\d+) requests in", output)
    return {
        "requests_per_s": float(rps.group(1)) if rps else None,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def pinning() -> tuple[list[str], list[str], str]:
    """taskset prefixes for the load generator and the server, and a description for the report.

    With at least two cores and taskset: wrk on core 0, the server (and its worker processes, which inherit the
    mask) on core 1, so the figure is the server's and not wrk's share of a shared core. The database server of the
    PostgreSQL runs is not ours to pin: it runs wherever the kernel puts it.
    """
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], [], "not pinned (taskset missing or one core)"
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"], "wrk on core 0, server on core 1 (taskset)"


def _wrk(prefix: list[str], script: Path, url: str, seconds: int) -> dict[str, Any]:
    # warm-up, then the measured run
    subprocess.run([*prefix, "wrk", "-t2", "-c32", "-d3s", "-s", str(script), url], capture_output=True, check=False)
    out = subprocess.run(
        [*prefix, "wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return _parse(out)


def _floor(
    url: str, count: int, script: Path, seconds: int, load: list[str], pin: list[str], directory: Path
) -> dict[str, Any]:
    from .floor_app import prepare

    prepare(url)
    command = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--workers", str(count)]
    command += ["--log-level", "warning", "--no-access-log"]
    with server(directory, prefix=pin, command=command, env={"DXG_FLOOR_URL": url}) as srv:
        return _wrk(load, script, srv.url, seconds)


def run(
    directory: Path,
    rows: int,
    *,
    seconds: int = 15,
    workers: tuple[int, ...] = (1, 2),
    postgres_url: str | None = None,
    floor: bool = True,
) -> dict[str, Any]:
    """Gateway runs ``<store>-<n>w`` and, beside each, the floor app with the same load (``floor-<store>-<n>w``)
    and the ratio gateway / floor (``ratio_to_floor`` in the gateway's entry)."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    key = credentials(directory, "bench-passthrough")
    load, pin, pinned = pinning()
    results: dict[str, Any] = {"pinning": pinned}
    stores: list[tuple[str, dict[str, str], str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        stores.append(("sqlite", {}, f"sqlite:///{Path(tmp) / 'floor.db'}"))
        if postgres_url:
            from gateway.db.copy import copy_gateway_state

            # principals, keys and agreements; the log starts empty (copying the bench's large log would dominate)
            copy_gateway_state(f"sqlite:///{directory / 'gateway.db'}", postgres_url, without_log=True)
            stores.append(("postgresql", {"DXG_DATABASE_URL": postgres_url}, postgres_url))
        script = Path(tmp) / "records.lua"
        script.write_text(LUA % {"seed": 7, "rows": rows, "key": key})
        for store, env, floor_url in stores:
            for count in workers:
                # the floor first, then the gateway, back to back: the same minutes of a noisy machine
                base = _floor(floor_url, count, script, seconds, load, pin, directory) if floor else None
                with server(directory, workers=count, env=env, prefix=pin) as srv:
                    item = _wrk(load, script, srv.url, seconds)
                if base is not None:
                    results[f"floor-{store}-{count}w"] = base
                    if item.get("requests_per_s") and base.get("requests_per_s"):
                        item["ratio_to_floor"] = item["requests_per_s"] / base["requests_per_s"]
                results[f"{store}-{count}w"] = item
    return results
