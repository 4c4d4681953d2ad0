"""Controls around a release that need the gateway's state: quotas and volume alerts (``quotas``), privacy budgets
(``budget``), the free-text redaction setup (``redaction``) and dual-controlled re-identification
(``reidentify``)."""

from __future__ import annotations

from gateway.controls.budget import PrivacyBudget
from gateway.controls.quotas import apply_quotas, watch_volume
from gateway.controls.redaction import RedactionService
from gateway.controls.reidentify import ReidentificationStore

__all__ = ["PrivacyBudget", "RedactionService", "ReidentificationStore", "apply_quotas", "watch_volume"]
