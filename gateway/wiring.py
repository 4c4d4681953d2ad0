"""Build the services of one gateway process from its settings (the imperative shell's composition root)."""

from __future__ import annotations

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.agreements.risk import risk_meter
from gateway.agreements.store import ACTIVE, AgreementRegistry, AgreementStore
from gateway.applog import get_logger
from gateway.audit.log import SqlDisclosureLog
from gateway.audit.signer import LogSigner
from gateway.audit.witnessing import WitnessCollector
from gateway.auth import PrincipalStore
from gateway.connectors import Connector, SqlConnector
from gateway.controls.budget import PrivacyBudget
from gateway.controls.redaction import RedactionService
from gateway.db import bound_round_trips, create_gateway_engine, init_schema
from gateway.errors import ConfigError
from gateway.keystore import SqlKeyStore
from gateway.services import Services
from gateway.settings import Settings
from keys import KeyRing, load_master_key, load_or_create_signing_key
from policies import Catalog, PolicyError, load_catalog

__all__ = ["build_connector", "build_services"]


def build_connector(settings: Settings) -> Connector:
    """The registry connector: an HTTP JSON API for http(s) URLs, a SQL database otherwise."""
    if settings.registry_url.startswith(("http://", "https://")):
        if settings.http_registry is None:
            raise ConfigError(f"{settings.config_path}: http_registry: an HTTP registry_url needs this section")
        from gateway.connectors.http import HttpConnector  # only HTTP deployments need httpx

        return HttpConnector(settings.registry_url, settings.http_registry)
    return SqlConnector(settings.registry_url, timeout_s=settings.registry_timeout_s)


def _agreement_registry(settings: Settings, store: AgreementStore, catalog: Catalog) -> AgreementRegistry:
    """Agreements in force come from the database (YAML files are applied and approved into it). A stored active
    version that no longer parses against the catalog stops the start, as a wrong agreement file used to."""
    registry = AgreementRegistry(store, catalog, ttl=2.0)
    for version in store.in_states(ACTIVE):
        try:
            registry.parse(version)
        except PolicyError as exc:
            raise ConfigError(
                f"agreement {version.agreement_id} v{version.version} (active, in the database) no longer matches "
                f"the catalog: {exc}"
            ) from exc
    if not store.in_states(ACTIVE) and any(settings.agreements_dir.glob("*.y*ml")):
        get_logger("gateway.wiring").warning(
            "no_active_agreements",
            hint="agreement files are not in force until applied and approved: gateway agreements apply FILE, "
            "then gateway agreements approve ID --version V --as APPROVER",
        )
    return registry


def build_services(settings: Settings) -> Services:
    # The catalog first: a wrong catalog must stop the start, before anything opens a connection.
    catalog = load_catalog(settings.catalog_path)
    master = load_master_key(settings.master_key_path)
    engine = create_gateway_engine(settings.database_url)
    init_schema(engine)
    # Migrations may take long; from here on every round trip to the database is bounded, so a stalled database
    # fails requests (503) and the log writer's stuck write instead of holding them forever.
    bound_round_trips(engine, settings.audit_write_timeout_s)
    agreements = _agreement_registry(settings, AgreementStore(engine), catalog)
    # Key versions are re-read at most every 5 s: a rotation reaches every process within that time.
    ring = KeyRing(master, SqlKeyStore(engine), latest_ttl=5.0)
    signer = LogSigner(load_or_create_signing_key(ring))
    log = SqlDisclosureLog(
        engine,
        signer=signer,
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
        connector=build_connector(settings),
        keyring=ring,
        max_body_bytes=settings.max_body_bytes,
        max_rows_per_request=settings.max_rows_per_request,
        batch_rows=settings.batch_rows,
        budget=PrivacyBudget(engine),
        # Loads the NER model named by ner_model now: a missing model stops the start with a clear error.
        redaction=RedactionService(ner_model=settings.ner_model, names_ttl_s=settings.names_ttl_s),
        database=engine,
        signer=signer,
    )
    services.on_close.extend([log.close, engine.dispose])
    if settings.witnesses:
        # Off the disclosure path: a thread submits each new checkpoint to the witnesses (docs/disclosure-log.md).
        services.witnessing = WitnessCollector(engine, settings.witnesses, settings.witness_quorum).start()
        services.on_close.insert(0, services.witnessing.close)
    # Expiry of agreements and forgetting the keys of agreements that ended elsewhere happen as the registry refreshes.
    # Approval measures each version's re-identification risk on the registry (docs/disclosure-control.md 0).
    meter = risk_meter(services.connector, ring, services.today, batch_rows=max(settings.batch_rows, 1000))
    services.lifecycle = AgreementLifecycle(agreements, log, ring, clock=services.clock, risk=meter).attach()
    return services
