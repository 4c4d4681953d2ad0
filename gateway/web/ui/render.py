"""Server-side rendering with Jinja2: templates ship in the package, autoescaping is on, undefined names fail loudly."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.web.authz import allowed
from gateway.web.ui.access import Viewer
from gateway.web.ui.context import base_path, ui
from gateway.web.ui.csrf import CSRF_FIELD
from gateway.web.ui.present import FILTERS

__all__ = ["render"]


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.web.ui", "templates"),
        autoescape=True,
        # A misspelt name in a template is a bug to see in tests, not an empty cell a compliance officer misreads.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    active: str = "",
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "base": base_path(request),
        "viewer": viewer,
        "csrf_field": CSRF_FIELD,
        "csrf_token": viewer.csrf_token if viewer is not None else None,
        "active": active,
        # what the viewer may see, from the one authorization table the API uses too (gateway/web/authz.py)
        "can": (lambda action: allowed(viewer.principal, action)) if viewer is not None else (lambda action: False),
        "generated_at": ui(request).now().replace(microsecond=0),
        "today": ui(request).now().date(),
        "timedelta": dt.timedelta,
    }
    values.update(context or {})
    body = _environment().get_template(template).render(values)
    return HTMLResponse(body, status_code=status, headers=dict(headers or {}))
