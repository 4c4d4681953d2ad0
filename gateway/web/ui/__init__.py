"""Compliance dashboard: server-rendered pages at ``/ui/`` for compliance officers and administrators."""

from __future__ import annotations

from gateway.web.ui.app import create_ui_app
from gateway.web.ui.integrity import record_verification

__all__ = ["create_ui_app", "record_verification"]
