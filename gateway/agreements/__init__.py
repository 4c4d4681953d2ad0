"""Agreements in force: the versioned store in the gateway database and the lifecycle (draft, approval by a named
approver, suspension, expiry, key shredding at the end) that changes it, each change an entry in the log."""

from __future__ import annotations

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.agreements.store import AgreementRegistry, AgreementStore

__all__ = ["AgreementLifecycle", "AgreementRegistry", "AgreementStore"]
