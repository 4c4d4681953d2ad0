"""Put the demo's agreement files in force the way a real deployment does: applied by the registry's administrator,
approved by an approver (four eyes), each step in the disclosure log.

Idempotent: a file whose version is already stored is left alone, so ``gateway demo`` on an existing folder changes
nothing. A file edited without a new ``version`` is reported (versions are immutable) and the stored one stays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.agreements.risk import risk_meter
from gateway.agreements.store import DRAFT, AgreementRegistry, AgreementStore
from gateway.audit.log import SqlDisclosureLog
from gateway.audit.signer import LogSigner
from gateway.auth import Principal
from gateway.connectors import Connector
from gateway.errors import GatewayError
from keys import KeyRing, load_or_create_signing_key
from policies import Catalog

__all__ = ["DEMO_ADMIN", "DEMO_APPROVER", "DemoAgreements", "install_demo_agreements"]

DEMO_ADMIN = Principal("registry-admin", frozenset({"admin"}))
DEMO_APPROVER = Principal("approver-li", frozenset({"approver"}))


@dataclass
class DemoAgreements:
    approved: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def install_demo_agreements(
    engine: Engine, ring: KeyRing, catalog: Catalog, directory: Path, *, log_origin: str, connector: Connector | None
) -> DemoAgreements:
    """Apply (as registry-admin) and approve (as approver-li) every agreement file in ``directory`` not yet stored.

    With ``connector`` approval measures each version's risk on the registry; an agreement above the catalog's
    threshold stays a draft and is reported (the demo never accepts a risk on anyone's behalf).
    """
    result = DemoAgreements()
    log = SqlDisclosureLog(engine, signer=LogSigner(load_or_create_signing_key(ring)), origin=log_origin)
    meter = None if connector is None else risk_meter(connector, ring, lambda: dt.datetime.now(dt.UTC).date())
    try:
        registry = AgreementRegistry(AgreementStore(engine), catalog)
        lifecycle = AgreementLifecycle(registry, log, ring, risk=meter)
        for path in sorted(directory.glob("*.yaml")):
            try:
                applied = lifecycle.apply(path.read_text(encoding="utf-8"), author=DEMO_ADMIN, source=str(path))
                if applied.version.state == DRAFT:
                    approved = lifecycle.approve(
                        applied.version.agreement_id, applied.version.version, approver=DEMO_APPROVER
                    )
                    result.approved.append(f"{approved.agreement_id} v{approved.version}")
            except GatewayError as exc:
                result.problems.append(f"{path.name}: {exc.detail}")
    finally:
        log.close()
    return result
