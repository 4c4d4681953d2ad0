"""ASGI entry point for process managers: ``uvicorn --factory gateway.web.asgi:create`` with DXG_CONFIG=<gateway.yaml>.

Each worker process builds its own services from the same configuration; all state that must be shared (the log,
keys, principals) lives in the gateway database, so any number of workers or instances can serve side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from gateway.applog import configure_logging
from gateway.errors import ConfigError
from gateway.settings import load_settings
from gateway.web import serving
from gateway.web.app import create_app
from gateway.web.limits import ServingLimits
from gateway.wiring import build_services

__all__ = ["create"]


def create() -> Starlette:
    config = os.environ.get("DXG_CONFIG")
    if not config:
        raise ConfigError("DXG_CONFIG is not set: point it at the deployment's gateway.yaml")
    settings = load_settings(Path(config))
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    serving.configure(settings)  # the protocol's header timeout and body backstop in this worker
    return create_app(build_services(settings), ServingLimits.of(settings))
