"""The composed services one gateway process runs with (built from settings, or by tests from fakes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.audit.log import DisclosureLog
from gateway.audit.signer import LogSigner
from gateway.audit.witnessing import WitnessCollector
from gateway.auth import Principal
from gateway.connectors import Connector
from gateway.controls.budget import PrivacyBudget
from gateway.controls.redaction import RedactionService
from gateway.throttle import AuthThrottle
from keys import KeyRing
from policies import Agreement, Catalog

__all__ = ["Authenticator", "Services"]


class Authenticator(Protocol):
    def authenticate(self, api_key: str) -> Principal | None: ...

    def cached(self, api_key: str) -> Principal | None:
        """A recent successful authentication of ``api_key`` without I/O (callable on the event loop), or None."""
        ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Services:
    catalog: Catalog
    agreements: Mapping[str, Agreement]
    authenticator: Authenticator
    log: DisclosureLog
    connector: Connector
    keyring: KeyRing
    clock: Callable[[], dt.datetime] = field(default=_now)
    max_body_bytes: int = 64 * 1024
    max_rows_per_request: int = 10_000_000
    batch_rows: int = 2000
    on_close: list[Callable[[], None]] = field(default_factory=list)
    #: epsilon budgets of differentially private agreements; None refuses such agreements (fail closed)
    budget: PrivacyBudget | None = None
    #: free-text redaction and egress scan setup (registry name dictionary cache, optional NER model)
    redaction: RedactionService = field(default_factory=RedactionService)
    #: the gateway database holding the log's tables, quotas, agreements and the dashboard's state; None only for a
    #: process whose log is an in-memory fake (tests): quotas, compliance queries and the dashboard then refuse
    database: Engine | None = None
    #: the key that signs the log's checkpoints (its public half is served at /v1/log/public-key); None: unsigned
    signer: LogSigner | None = None
    #: the agreement lifecycle (drafts, approvals, states), built once per process; None: agreements from files only
    lifecycle: AgreementLifecycle | None = None
    #: failed API-key checks per client address and key id, for the API and the dashboard sign-in (this process)
    auth_throttle: AuthThrottle = field(default_factory=AuthThrottle)
    #: collects witness cosignatures of the log's checkpoints (gateway/audit/witnessing.py); None: no witnesses
    witnessing: WitnessCollector | None = None

    def today(self) -> dt.date:
        return self.clock().astimezone(dt.UTC).date()

    def close(self) -> None:
        for fn in self.on_close:
            fn()
        self.connector.close()
