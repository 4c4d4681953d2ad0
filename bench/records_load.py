"""Measurement 5: single-record requests with 32 concurrent clients (wrk in a separate process).

Each request is a full disclosure: authentication, agreement checks, a write-ahead log entry (group-committed,
durable) before the record is read, the subject index, the finished entry. SQLite and PostgreSQL gateway state,
1 and 2 worker processes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
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


def run(
    directory: Path, rows: int, *, seconds: int = 15, workers: tuple[int, ...] = (1, 2), postgres_url: str | None = None
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    key = credentials(directory, "bench-passthrough")
    results: dict[str, Any] = {}
    stores: list[tuple[str, dict[str, str]]] = [("sqlite", {})]
    if postgres_url:
        from gateway.db.copy import copy_gateway_state

        # principals, keys and agreements; the log starts empty (copying the bench's large log would dominate)
        copy_gateway_state(f"sqlite:///{directory / 'gateway.db'}", postgres_url, without_log=True)
        stores.append(("postgresql", {"DXG_DATABASE_URL": postgres_url}))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "records.lua"
        script.write_text(LUA % {"seed": 7, "rows": rows, "key": key})
        for store, env in stores:
            for count in workers:
                with server(directory, workers=count, env=env) as srv:
                    # warm-up, then the measured run
                    subprocess.run(
                        ["wrk", "-t2", "-c32", "-d3s", "-s", str(script), srv.url], capture_output=True, check=False
                    )
                    out = subprocess.run(
                        ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), srv.url],
                        capture_output=True,
                        text=True,
                        check=False,
                    ).stdout
                results[f"{store}-{count}w"] = _parse(out)
    return results
