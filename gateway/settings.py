"""Gateway settings: one YAML file per deployment (``DIR/gateway.yaml``), a few environment overrides.

Relative paths and relative SQLite URLs are resolved against the folder of the config file, so a deployment folder
can be moved as a whole. Environment variables override the file for what differs per process or per machine:
``DXG_DATABASE_URL``, ``DXG_REGISTRY_URL``, ``DXG_HOST``, ``DXG_PORT``. Wrong settings fail at start with the file,
the key and the reason. A ``registry_url`` starting with ``http://`` or ``https://`` is an HTTP JSON API and needs the
``http_registry`` section (endpoints, auth, pagination; see ``gateway.connectors.http`` and docs/connectors.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError
from gateway.http_registry_config import HttpRegistryConfig, parse_http_registry
from gateway.witness_config import WitnessConfig, parse_witnesses

__all__ = ["CONFIG_NAME", "Settings", "load_settings", "settings_for"]

CONFIG_NAME = "gateway.yaml"

_KEYS = {
    "registry_url",
    "database_url",
    "catalog",
    "agreements",
    "master_key",
    "log_public_key",
    "log_origin",
    "host",
    "port",
    "max_body_bytes",
    "max_rows_per_request",
    "batch_rows",
    "registry_timeout_s",
    "log_format",
    "log_level",
    "http_registry",
    "ner_model",
    "names_ttl_s",
    "checkpoint_every",
    "checkpoint_interval_s",
    "audit_write_timeout_s",
    "witnesses",
    "witness_quorum",
    # serving limits and metrics (docs/operations.md#serving-limits)
    "header_timeout_s",
    "body_timeout_s",
    "keep_alive_timeout_s",
    "max_connections",
    "max_concurrent_extracts",
    "metrics_token_file",
}


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path
    registry_url: str
    database_url: str
    catalog_path: Path
    agreements_dir: Path
    master_key_path: Path
    log_public_key_path: Path
    log_origin: str = "dx-gateway.local/disclosure-log"
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024
    max_rows_per_request: int = 10_000_000
    batch_rows: int = 2000
    registry_timeout_s: float = 30.0
    http_registry: HttpRegistryConfig | None = None
    log_format: str = "json"
    log_level: str = "info"
    checkpoint_every: int = 1000
    checkpoint_interval_s: float = 10.0
    audit_write_timeout_s: float = 10.0
    #: an installed spaCy NER pipeline (package name or path) for PERSON/LOCATION in free text; None: dictionaries only
    ner_model: str | None = None
    #: how long the registry's name dictionary (for free-text redaction) is reused before it is read again
    names_ttl_s: float = 600.0
    #: independent witnesses that cosign checkpoints (gateway/witness_config.py), and how many make one count
    witnesses: tuple[WitnessConfig, ...] = ()
    witness_quorum: int = 0
    #: a connection that has not sent a whole request head (line and headers) this long after it opened or after
    #: its first byte of the next request is closed (slowloris)
    header_timeout_s: float = 10.0
    #: a request body not received in full this long after the request's headers: 408, connection closed
    body_timeout_s: float = 30.0
    #: an idle keep-alive connection is closed after this long (uvicorn's timeout_keep_alive)
    keep_alive_timeout_s: int = 5
    #: open connections (or requests in flight) per process past which a request gets 503 (uvicorn's
    #: limit_concurrency)
    max_connections: int = 1000
    #: extracts one principal may have running at once in one process; the next gets 429 with Retry-After
    max_concurrent_extracts: int = 4
    #: a file holding the bearer token ``GET /metrics`` requires; None: /metrics is open like /healthz
    metrics_token_file: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent


def _resolve_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix) :]
        if path and not path.startswith("/") and not path.startswith(":"):
            return prefix + str((base / path).resolve())
    return url


def load_settings(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    source = str(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of settings")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown setting (known: {', '.join(sorted(_KEYS))})")
    base = path.parent.resolve()

    def text(key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: {key}: expected a non-empty string")
        return value

    def number(key: str, default: int, low: int, high: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{source}: {key}: expected an integer between {low} and {high}")
        return value

    registry_url = env.get("DXG_REGISTRY_URL") or text("registry_url")
    database_url = env.get("DXG_DATABASE_URL") or text("database_url")
    port_env = env.get("DXG_PORT")
    if port_env is not None and not port_env.isdigit():
        raise ConfigError("DXG_PORT: expected a port number")
    log_format = raw.get("log_format", "json")
    if log_format not in ("json", "console"):
        raise ConfigError(f"{source}: log_format: expected 'json' or 'console'")

    def seconds(key: str, default: float, high: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
            raise ConfigError(f"{source}: {key}: expected seconds between 0 and {high:g}")
        return float(value)

    witnesses, witness_quorum = parse_witnesses(raw, source)
    return Settings(
        config_path=path.resolve(),
        registry_url=_resolve_url(registry_url, base),
        database_url=_resolve_url(database_url, base),
        catalog_path=base / text("catalog", "catalog.yaml"),
        agreements_dir=base / text("agreements", "agreements"),
        master_key_path=base / text("master_key", "master.key"),
        log_public_key_path=base / text("log_public_key", "log.pub"),
        log_origin=text("log_origin", "dx-gateway.local/disclosure-log"),
        host=env.get("DXG_HOST") or text("host", "127.0.0.1"),
        port=int(port_env) if port_env else number("port", 8000, 1, 65535),
        max_body_bytes=number("max_body_bytes", 64 * 1024, 1024, 16 * 1024 * 1024),
        max_rows_per_request=number("max_rows_per_request", 10_000_000, 1, 10**9),
        batch_rows=number("batch_rows", 2000, 1, 100_000),
        registry_timeout_s=seconds("registry_timeout_s", 30, 3600),
        http_registry=_http_registry(raw, registry_url, source, base),
        checkpoint_every=number("checkpoint_every", 1000, 1, 10**9),
        checkpoint_interval_s=seconds("checkpoint_interval_s", 10, 86400),
        audit_write_timeout_s=seconds("audit_write_timeout_s", 10, 600),
        log_format=log_format,
        log_level=text("log_level", "info"),
        ner_model=text("ner_model") if raw.get("ner_model") is not None else None,
        names_ttl_s=seconds("names_ttl_s", 600, 86400),
        witnesses=witnesses,
        witness_quorum=witness_quorum,
        header_timeout_s=seconds("header_timeout_s", 10, 600),
        body_timeout_s=seconds("body_timeout_s", 30, 3600),
        keep_alive_timeout_s=number("keep_alive_timeout_s", 5, 1, 600),
        max_connections=number("max_connections", 1000, 2, 1_000_000),
        max_concurrent_extracts=number("max_concurrent_extracts", 4, 1, 10_000),
        metrics_token_file=base / text("metrics_token_file") if raw.get("metrics_token_file") is not None else None,
    )


def _http_registry(raw: Mapping[str, Any], registry_url: str, source: str, base: Path) -> HttpRegistryConfig | None:
    if "http_registry" not in raw:
        if registry_url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: http_registry: an HTTP registry_url needs this section (dataset endpoints)")
        return None
    return parse_http_registry(raw["http_registry"], source, base)


def settings_for(data_dir: Path | None, config: Path | None) -> Settings:
    """Resolve ``--data-dir`` / ``--config`` as every CLI command accepts them."""
    if config is not None:
        return load_settings(config)
    directory = data_dir if data_dir is not None else Path("var/demo")
    path = directory / CONFIG_NAME
    if not path.exists():
        raise ConfigError(
            f"{path}: no gateway configuration here; run `gateway demo --data-dir {directory}` "
            "to create a demo deployment, or pass --config FILE"
        )
    return load_settings(path)
