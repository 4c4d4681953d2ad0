"""Bodies of dual control (routes: ``routes/actions.py``; the rule: ``policies/dual_control.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import StrictStr, WithJsonSchema

from gateway.web.models.base import ClosedResponse, Omitted, RequestBody, ResponseBody
from gateway.web.models.lifecycle import AgreementVersion

__all__ = [
    "MODELS",
    "ActionRequest",
    "PendingActionBody",
    "PendingActionConfirmed",
    "PendingActionList",
    "PendingActionRequested",
]

_ACTIONS = ["agreement.revoke", "agreement.resume", "keys.rotate_master"]


class ActionRequest(RequestBody):
    action: Annotated[StrictStr, WithJsonSchema({"enum": _ACTIONS})]
    agreement_id: Annotated[StrictStr | None, WithJsonSchema({"type": "string", "maxLength": 64})] = None
    reason: Annotated[StrictStr | None, WithJsonSchema({"type": "string", "maxLength": 500})] = None


class PendingActionBody(ClosedResponse):
    """An action under dual control: requested by one principal, run only once a second, distinct one confirmed it"""

    id: str
    action: Literal["agreement.revoke", "agreement.resume", "keys.rotate_master"]
    agreement_id: str | None
    reason: str | None
    requested_by: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    state: Literal["pending", "confirmed", "executed", "expired"]
    confirmed_by: str | None
    confirmed_at: dt.datetime | None
    executed_at: dt.datetime | None
    confirm_roles: list[str]
    agreement: AgreementVersion | Omitted = None  # the version the confirmed action changed


class PendingActionRequested(PendingActionBody):
    """A request recorded, pending a second person's confirmation"""

    next: str


class PendingActionConfirmed(PendingActionBody):
    """A confirmed action: executed, or (a master-key rotation) waiting for the operator to run it"""

    next: str | Omitted = None


class PendingActionList(ResponseBody):
    """Actions under dual control, newest first"""

    actions: list[PendingActionBody]


MODELS = (ActionRequest, PendingActionBody, PendingActionRequested, PendingActionConfirmed, PendingActionList)
