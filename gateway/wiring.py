"""Build the services of one gateway process from its settings (the imperative shell's composition root)."""

from __future__ import annotations

from keys import KeyRing, load_master_key, load_or_create_signing_key
from policies import load_agreements, load_catalog

from .auth import PrincipalStore
from .connectors import SqlConnector
from .db import create_gateway_engine, init_schema
from .disclosure_log import SqlDisclosureLog
from .keystore import SqlKeyStore
from .logsigner import LogSigner
from .services import Services
from .settings import Settings

__all__ = ["build_services"]


def build_services(settings: Settings) -> Services:
    # Policy files first: a wrong agreement must stop the start, before anything opens a connection.
    catalog = load_catalog(settings.catalog_path)
    agreements = load_agreements(settings.agreements_dir, catalog)
    master = load_master_key(settings.master_key_path)
    engine = create_gateway_engine(settings.database_url)
    init_schema(engine)
    # Key versions are re-read at most every 5 s: a rotation reaches every process within that time.
    ring = KeyRing(master, SqlKeyStore(engine), latest_ttl=5.0)
    log = SqlDisclosureLog(
        engine,
        signer=LogSigner(load_or_create_signing_key(ring)),
        origin=settings.log_origin,
        checkpoint_every=settings.checkpoint_every,
        checkpoint_interval_s=settings.checkpoint_interval_s,
        write_timeout_s=settings.audit_write_timeout_s,
    )
    principals = PrincipalStore(engine, ring.derive("server:api-keys", "api-key-hash").reveal())
    services = Services(
        catalog=catalog,
        agreements=agreements,
        authenticator=principals,
        log=log,
        connector=SqlConnector(settings.registry_url, timeout_s=settings.registry_timeout_s),
        keyring=ring,
        max_body_bytes=settings.max_body_bytes,
        max_rows_per_request=settings.max_rows_per_request,
        batch_rows=settings.batch_rows,
    )
    services.on_close.extend([log.close, engine.dispose])
    return services
