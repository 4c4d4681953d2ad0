"""Compliance dashboard: server-rendered pages at ``/ui/`` for compliance officers and administrators."""

from __future__ import annotations

from .app import create_ui_app
from .integrity import record_verification

__all__ = ["create_ui_app", "record_verification"]
