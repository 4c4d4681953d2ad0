"""Build a demo deployment folder: registry, catalog, agreements, keys, principals, configuration.

Idempotent: every part is created only if missing, so ``gateway demo`` on an existing folder reuses it as it is
(same keys, same tokens, same log). Secrets (master key, credentials) are written 0600 into a 0700 folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gateway.auth import PrincipalStore
from gateway.db import create_gateway_engine, init_schema
from gateway.demo.agreements import install_demo_agreements
from gateway.keystore import SqlKeyStore
from gateway.settings import CONFIG_NAME, load_settings
from gateway.wiring import build_connector
from keys import KeyRing, ensure_master_key, load_or_create_signing_key
from policies import load_catalog

__all__ = ["DEMO_PRINCIPALS", "DemoDeployment", "build_demo", "write_log_public_key"]

#: principal, roles, agreements it is a party to, description
DEMO_PRINCIPALS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("pku-education-lab", ("requester",), ("research-continuity",), "University research group"),
    ("finance-bureau", ("requester",), ("finance-subsidy",), "Municipal finance bureau"),
    ("receiving-school", ("requester",), ("school-transfer",), "A receiving kindergarten"),
    ("stats-bureau", ("requester",), ("public-statistics",), "Statistics bureau"),
    ("compliance-officer", ("compliance",), (), "Registry compliance office"),
    ("registry-admin", ("admin",), (), "Registry gateway administrator"),
    ("approver-li", ("approver",), (), "Li Ming, head of the registry"),
)

CONFIG_TEMPLATE = """\
# dx-gateway demo deployment. Relative paths resolve against this folder.
registry_url: sqlite:///registry.db
database_url: sqlite:///gateway.db
catalog: catalog.yaml
agreements: agreements
master_key: master.key
log_public_key: log.pub
log_origin: dx-gateway.demo/disclosure-log
host: 127.0.0.1
port: {port}
log_format: json
"""


@dataclass(frozen=True, slots=True)
class DemoDeployment:
    directory: Path
    config_path: Path
    credentials_path: Path
    created: tuple[str, ...]
    #: agreement files that could not be put in force (e.g. edited without a new version)
    problems: tuple[str, ...] = ()


def _write_private(path: Path, text: str) -> None:
    # Created 0600 by open(2) itself, then moved over any older file in one step.
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _validity(today: dt.date) -> dict[str, str]:
    return {
        "valid_from": dt.date(today.year, 1, 1).isoformat(),
        "valid_until": dt.date(today.year + 1, 12, 31).isoformat(),
    }


def write_log_public_key(ring: KeyRing, path: Path) -> None:
    signer = load_or_create_signing_key(ring)
    if not path.exists():
        path.write_text(signer.public_key.to_pem(), encoding="utf-8")


def build_demo(
    directory: Path, *, rows: int = 100_000, seed: int = 2026, port: int = 8000, today: dt.date | None = None
) -> DemoDeployment:
    from gateway.demo.registry import build_registry  # heavy import; only when the registry must be built

    today = today or dt.date.today()
    created: list[str] = []
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = resources.files("gateway.demo") / "files"

    registry = directory / "registry.db"
    if not registry.exists():
        build_registry(registry, rows=rows, seed=seed)
        created.append("registry.db")
    catalog = directory / "catalog.yaml"
    if not catalog.exists():
        catalog.write_text((files / "catalog.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        created.append("catalog.yaml")
    agreements = directory / "agreements"
    if not agreements.exists():
        agreements.mkdir(mode=0o755)
        for item in sorted((files / "agreements").iterdir(), key=lambda t: t.name):
            text = string.Template(item.read_text(encoding="utf-8")).substitute(_validity(today))
            (agreements / item.name).write_text(text, encoding="utf-8")
        created.append("agreements/")
    config = directory / CONFIG_NAME
    if not config.exists():
        config.write_text(CONFIG_TEMPLATE.format(port=port), encoding="utf-8")
        created.append(CONFIG_NAME)
    master, made = ensure_master_key(directory / "master.key")
    if made:
        created.append("master.key")

    engine = create_gateway_engine(f"sqlite:///{(directory / 'gateway.db').resolve()}")
    try:
        init_schema(engine)
        ring = KeyRing(master, SqlKeyStore(engine))
        credentials = directory / "credentials.json"
        store = PrincipalStore(engine, ring.derive("server:api-keys", "api-key-hash").reveal())
        existing = {p.name for p in store.list()}
        # A gateway.db rebuilt next to an old credentials.json would leave keys that open nothing: issue new ones.
        if not credentials.exists() or any(name not in existing for name, *_ in DEMO_PRINCIPALS):
            entries = []
            for name, roles, party_of, display in DEMO_PRINCIPALS:
                api_key = store.add_key(name) if name in existing else store.create(name, set(roles), display)
                entries.append(
                    {"principal": name, "roles": list(roles), "api_key": api_key, "agreements": list(party_of)}
                )
            _write_private(credentials, json.dumps(entries, indent=2) + "\n")
            created.append("credentials.json")
        log_pub = directory / "log.pub"
        if not log_pub.exists():
            write_log_public_key(ring, log_pub)
            created.append("log.pub")
        # Agreements are in force only once applied and approved (four eyes), as in any deployment.
        settings = load_settings(config)
        # Approval measures each agreement's re-identification risk on the registry, as in any deployment.
        connector = build_connector(settings)
        try:
            installed = install_demo_agreements(
                engine, ring, load_catalog(catalog), agreements, log_origin=settings.log_origin, connector=connector
            )
        finally:
            connector.close()
        if installed.approved:
            created.append(f"agreements approved in the database: {', '.join(installed.approved)}")
    finally:
        engine.dispose()
    return DemoDeployment(directory, config, directory / "credentials.json", tuple(created), tuple(installed.problems))
