"""The entry page's view of the signed log entries: what they say, and where the ``disclosures`` row disagrees.

The page's other panels read the ``disclosures`` table (a projection anyone with database access can edit); this
one reads the entries of the receipt the page has just verified, so what it shows is what the gateway signed. A row
that disagrees (an edited recipient, row count, status...) is flagged on the page, column by column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.projection import row_differences
from gateway.web.ui.integrity import ReceiptCheck

__all__ = ["SignedView", "signed_view"]


@dataclass(frozen=True)
class SignedView:
    #: the verified started / finished entries (parsed), None when not verified or not written
    started: dict[str, Any] | None
    finished: dict[str, Any] | None
    #: (column, the table says, the signed entry says)
    differences: list[tuple[str, object, object]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.started is not None

    @property
    def agrees(self) -> bool:
        return self.verified and not self.differences


def _verified_entries(check: ReceiptCheck) -> dict[str, dict[str, Any]]:
    """The receipt's entries that the check verified (named in ``verified_entries``), by type."""
    found: dict[str, dict[str, Any]] = {}
    if check.receipt is None:
        return found
    for item in check.receipt.get("entries", []):
        try:
            entry = json.loads(item["entry"])
        except (KeyError, TypeError, ValueError):
            continue
        if not isinstance(entry, dict):
            continue
        if f"{entry.get('type')} (log index {entry.get('index')})" in check.verified_entries:
            found[str(entry.get("type"))] = entry
    return found


def signed_view(check: ReceiptCheck, row: Any) -> SignedView:
    """What the verified entries of ``row``'s disclosure say, and the columns of ``row`` that differ."""
    entries = _verified_entries(check)
    started, finished = entries.get("disclosure.started"), entries.get("disclosure.finished")
    if started is None:
        return SignedView(None, None)
    return SignedView(started, finished, row_differences(dict(row._mapping), started, finished))
