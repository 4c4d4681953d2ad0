"""The witnesses of gateway.yaml: who cosigns the log's checkpoints, and how many cosignatures make one count.

    witnesses:
      - name: authority.example/witness          # the witness's key name (its vkey's first part)
        url: https://witness.authority.example   # submission prefix: POST <url>/add-checkpoint
        vkey: authority.example/witness+1a2b3c4d+BF...   # from `gateway witness vkey`; type 0x04
    witness_quorum: 1                            # 0 (default): collect, but no checkpoint needs cosignatures

Configuration, not I/O: a wrong entry stops the start with file, path and reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import ConfigError
from tlog import SIGNATURE_TYPE_COSIGNATURE_V1, CheckpointError, VerifierKey, parse_vkey

__all__ = ["WitnessConfig", "parse_witnesses"]


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    name: str
    url: str
    vkey: VerifierKey

    @property
    def submission_url(self) -> str:
        return self.url.rstrip("/") + "/add-checkpoint"


def parse_witnesses(raw: Mapping[str, Any], source: str) -> tuple[tuple[WitnessConfig, ...], int]:
    """``witnesses`` and ``witness_quorum`` of a settings mapping (both optional)."""
    items = raw.get("witnesses", [])
    if not isinstance(items, list):
        raise ConfigError(f"{source}: witnesses: expected a list of {{name, url, vkey}}")
    witnesses: list[WitnessConfig] = []
    for i, item in enumerate(items):
        where = f"{source}: witnesses[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "url", "vkey"}:
            raise ConfigError(f"{where}: expected exactly the keys name, url, vkey")
        name, url, vkey_text = item["name"], item["url"], item["vkey"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: expected an http(s) URL")
        if not isinstance(vkey_text, str):
            raise ConfigError(f"{where}.vkey: expected a vkey string")
        try:
            vkey = parse_vkey(vkey_text, key_type=SIGNATURE_TYPE_COSIGNATURE_V1)
        except CheckpointError as exc:
            raise ConfigError(f"{where}.vkey: {exc}") from exc
        if name != vkey.name:
            raise ConfigError(f"{where}.name: {name!r} is not the name in its vkey ({vkey.name!r})")
        if any(w.name == name for w in witnesses):
            raise ConfigError(f"{where}.name: {name!r} is listed twice")
        witnesses.append(WitnessConfig(name, url, vkey))
    quorum = raw.get("witness_quorum", 0)
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 0 <= quorum <= len(witnesses):
        raise ConfigError(f"{source}: witness_quorum: expected an integer between 0 and {len(witnesses)} (witnesses)")
    return tuple(witnesses), quorum
