"""Real witness processes for tests: ``gateway witness serve`` in a subprocess on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.witness.state import init_witness

__all__ = ["WitnessProcess"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WitnessProcess:
    """A witness with its own state folder, run as a separate process (killed and restarted at will)."""

    def __init__(self, state: Path, name: str, log_vkey: str, *extra: str) -> None:
        self.state, self.name, self.log_vkey, self.extra = state, name, log_vkey, extra
        self.vkey = init_witness(state, name)
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WitnessProcess:
        command = [sys.executable, "-m", "gateway.cli.main", "witness", "serve", "--state", str(self.state)]
        command += ["--log-vkey", self.log_vkey, "--port", str(self.port), *self.extra]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"witness exited: {err[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("witness did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def config(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "vkey": self.vkey}
