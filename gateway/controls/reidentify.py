"""Re-identification under dual control: turning tokens released under an agreement back into the ids they stand for.

Only where the agreement says so (``reidentification: {allowed: true, fields: [...]}``), only for the party, and only
after TWO distinct approvers (neither of them the requester) approved the request. The answer is itself a disclosure
(operation ``reidentify``, subject-indexed) and can be fetched once.

Reversal keeps no table of (token, id) pairs that could be stolen: it recomputes tokens over the registry's values.
The field's column is streamed from the registry (under the agreement's row scope, the only rows whose tokens were
ever released) through the tokenizer, under every stored version of the key (a rotation changes tokens, and a party
may hold tokens from before it), and matched against the requested tokens; only matches are kept, in memory, for
the one request. If the keys were destroyed (the agreement was revoked or expired), nothing can be reversed by
anyone: :class:`keys.KeyDestroyedError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.connectors import Connector
from gateway.db import utcnow
from gateway.db.tables import MAX_REASON, LogEntryRow, ReidentificationApprovalRow, ReidentificationRow
from gateway.keysource import agreement_owner, domain_owner
from keys import KeyDestroyedError, KeyNotFoundError, KeyRing
from policies import Agreement, ReleasePlan, Tokenize
from transforms import HmacSha256, TokenizeOp

__all__ = [
    "APPROVALS_NEEDED",
    "MAX_REASON",
    "MAX_TOKENS",
    "ReidentificationApprovalRow",
    "ReidentificationRequest",
    "ReidentificationRow",
    "ReidentificationStore",
    "Reversal",
    "new_request",
    "parse_tokens",
    "reverse_tokens",
    "tokens_digest",
]

APPROVALS_NEEDED = 2
MAX_TOKENS = 1000
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,43}$")
PENDING, APPROVED, COMPLETED = "pending", "approved", "completed"


_requests = ReidentificationRow.__table__  # type: ignore[attr-defined]
_approvals = ReidentificationApprovalRow.__table__  # type: ignore[attr-defined]


def tokens_digest(tokens: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(tokens)).encode("ascii")).hexdigest()


def parse_tokens(value: object) -> list[str]:
    """The requested tokens, checked for shape (never echoed back in errors), duplicates removed."""
    if not isinstance(value, list) or not value:
        raise ValueError("tokens must be a non-empty list of tokens")
    if len(value) > MAX_TOKENS:
        raise ValueError(f"at most {MAX_TOKENS} tokens per request")
    for item in value:
        if not isinstance(item, str) or not _TOKEN.match(item):
            raise ValueError("every token is 16-43 characters of letters, digits, '_' or '-', as released")
    return list(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class ReidentificationRequest:
    id: str
    agreement_id: str
    agreement_version: int
    field: str
    tokens: tuple[str, ...]
    token_count: int
    tokens_sha256: str
    reason: str
    requester: str
    created_at: dt.datetime
    state: str
    approvers: tuple[str, ...]
    disclosure_id: str | None

    def __repr__(self) -> str:
        return f"ReidentificationRequest({self.id!r}, {self.agreement_id!r}, {self.state}, tokens={self.token_count})"

    def describe(self) -> dict[str, Any]:
        """What the requester and approvers see (not the tokens: the requester has them, approvers need not)."""
        created = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=dt.UTC)
        return {
            "id": self.id,
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "field": self.field,
            "tokens": self.token_count,
            "reason": self.reason,
            "requester": self.requester,
            "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "state": self.state,
            "approvals": list(self.approvers),
            "approvals_needed": APPROVALS_NEEDED,
            "disclosure_id": self.disclosure_id,
        }


class ReidentificationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return "ReidentificationStore(<gateway database>)"

    def create(self, request: ReidentificationRequest) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.insert(_requests).values(
                    id=request.id,
                    agreement_id=request.agreement_id,
                    agreement_version=request.agreement_version,
                    field=request.field,
                    tokens=json.dumps(list(request.tokens)),
                    token_count=request.token_count,
                    tokens_sha256=request.tokens_sha256,
                    reason=request.reason,
                    requester=request.requester,
                    created_at=request.created_at,
                    state=PENDING,
                )
            )

    def delete(self, request_id: str) -> None:
        """Undo a create whose log entry failed."""
        with self._engine.begin() as conn:
            conn.execute(sa.delete(_approvals).where(_approvals.c.request_id == request_id))
            conn.execute(sa.delete(_requests).where(_requests.c.id == request_id))

    def get(self, request_id: str) -> ReidentificationRequest | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_requests).where(_requests.c.id == request_id)).first()
            if row is None:
                return None
            approvers = conn.execute(
                sa.select(_approvals.c.approver)
                .where(_approvals.c.request_id == request_id)
                .order_by(_approvals.c.approved_at, _approvals.c.approver)
            ).scalars()
            return self._request(row._mapping, tuple(str(a) for a in approvers))

    def find(self, *, state: str | None = None, limit: int = 200) -> list[ReidentificationRequest]:
        query = sa.select(_requests.c.id).order_by(_requests.c.created_at.desc()).limit(limit)
        if state is not None:
            query = query.where(_requests.c.state == state)
        with self._engine.connect() as conn:
            ids = [str(i) for i in conn.execute(query).scalars()]
        return [r for i in ids if (r := self.get(i)) is not None]

    @staticmethod
    def _request(m: Any, approvers: tuple[str, ...]) -> ReidentificationRequest:
        return ReidentificationRequest(
            id=m["id"],
            agreement_id=m["agreement_id"],
            agreement_version=int(m["agreement_version"]),
            field=m["field"],
            tokens=tuple(json.loads(m["tokens"])),
            token_count=int(m["token_count"]),
            tokens_sha256=m["tokens_sha256"],
            reason=m["reason"],
            requester=m["requester"],
            created_at=m["created_at"],
            state=m["state"],
            approvers=approvers,
            disclosure_id=m["disclosure_id"],
        )

    def add_approval(self, request_id: str, approver: str, at: dt.datetime) -> int | None:
        """Record an approval; return the number of approvals, or None if ``approver`` had already approved.

        Reaching :data:`APPROVALS_NEEDED` moves the request to ``approved`` in the same transaction.
        """
        try:
            with self._engine.begin() as conn:
                # Lock the request (PostgreSQL row lock / SQLite write lock) so two approvals count to 2 exactly once.
                updated = conn.execute(
                    sa.update(_requests)
                    .where(_requests.c.id == request_id, _requests.c.state == PENDING)
                    .values(state=_requests.c.state)
                ).rowcount
                if updated != 1:
                    return 0
                conn.execute(sa.insert(_approvals).values(request_id=request_id, approver=approver, approved_at=at))
                count = int(
                    conn.execute(
                        sa.select(sa.func.count()).select_from(_approvals).where(_approvals.c.request_id == request_id)
                    ).scalar_one()
                )
                if count >= APPROVALS_NEEDED:
                    conn.execute(
                        sa.update(_requests).where(_requests.c.id == request_id).values(state=APPROVED, approved_at=at)
                    )
                return count
        except IntegrityError:
            return None

    def remove_approval(self, request_id: str, approver: str) -> None:
        """Undo an approval whose log entry failed."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.delete(_approvals).where(_approvals.c.request_id == request_id, _approvals.c.approver == approver)
            )
            conn.execute(
                sa.update(_requests)
                .where(_requests.c.id == request_id, _requests.c.state == APPROVED)
                .values(state=PENDING, approved_at=None)
            )

    def logged_approvers(self, request_id: str) -> set[str]:
        """Who the signed log records as having approved ``request_id``. The approval rows and the request's state
        are editable by anyone with database access; the answer is given only on these."""
        entries = LogEntryRow.__table__  # type: ignore[attr-defined]
        needle = f'%"request_id":"{request_id}"%'  # canonical JSON; ids are letters and digits (checked on load)
        with self._engine.connect() as conn:
            bodies = conn.execute(
                sa.select(entries.c.body).where(
                    entries.c.kind == "reidentification.approved", entries.c.body.like(needle)
                )
            ).scalars()
            found: set[str] = set()
            for body in bodies:
                try:
                    entry = json.loads(body)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("request_id") == request_id:
                    approver = entry.get("approver")
                    if isinstance(approver, str):
                        found.add(approver)
        return found

    def claim(self, request_id: str) -> bool:
        """Move an approved request to ``completed`` (one fetch only); False if someone else fetched it first."""
        with self._engine.begin() as conn:
            return (
                conn.execute(
                    sa.update(_requests)
                    .where(_requests.c.id == request_id, _requests.c.state == APPROVED)
                    .values(state=COMPLETED, completed_at=utcnow())
                ).rowcount
                == 1
            )

    def unclaim(self, request_id: str) -> None:
        """The answer could not be produced or logged: the request may be fetched again."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(_requests)
                .where(_requests.c.id == request_id, _requests.c.state == COMPLETED)
                .values(state=APPROVED, completed_at=None)
            )

    def complete(self, request_id: str, disclosure_id: str) -> None:
        """Record the disclosure and clear the tokens (no longer needed; the log holds their count and digest)."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(_requests)
                .where(_requests.c.id == request_id)
                .values(disclosure_id=disclosure_id, tokens="[]")
            )


@dataclass(frozen=True, slots=True)
class Reversal:
    found: dict[str, Any]  # token -> id, only for the tokens asked about
    not_found: list[str]
    subjects: list[Any]  # subject keys of the matched records (for the subject index)
    key_versions: int

    def __repr__(self) -> str:
        return f"Reversal(found={len(self.found)}, not_found={len(self.not_found)})"


def _token_functions(agreement: Agreement, field: str, ring: KeyRing) -> list[Callable[[Any], Any]]:
    rule = agreement.released().get(field)
    if not isinstance(rule, Tokenize):
        raise ValueError(f"{field!r} is not released as a token by agreement {agreement.id!r}")
    owner = domain_owner(rule.domain) if rule.domain else agreement_owner(agreement.id)
    try:
        ring.current(owner, create=False)  # KeyDestroyedError after shredding: the check that matters
    except KeyNotFoundError:
        return []  # no token was ever made under this agreement
    column = agreement.dataset.columns[field]
    functions = []
    for version in reversed(ring.versions(owner)):
        mac = HmacSha256(ring.derive(owner, "tokenize", version=version).reveal())
        functions.append(TokenizeOp(mac, length=rule.length, fmt=column.format).fn)
    if not functions:  # destroyed between the two reads
        raise KeyDestroyedError(f"the keys of {owner!r} were destroyed (crypto-shredded); nothing can use them")
    return functions


def reverse_tokens(
    agreement: Agreement,
    field: str,
    tokens: list[str],
    *,
    ring: KeyRing,
    connector: Connector,
    today: dt.date,
    batch_rows: int = 2000,
) -> Reversal:
    """Find the values of ``field`` whose tokens (under any key version) are among ``tokens``."""
    functions = _token_functions(agreement, field, ring)
    dataset = agreement.dataset
    projection = (dataset.subject_key,) if field == dataset.subject_key else (dataset.subject_key, field)
    plan = ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=projection,
        outputs=(),
        filters=agreement.row_scope,
        limit=None,
        format="ndjson",
        reference_date=today,
    )
    index = projection.index(field)
    wanted = set(tokens)
    found: dict[str, Any] = {}
    subjects: list[Any] = []
    if functions:
        batches: Iterator[list[tuple[Any, ...]]] = connector.stream(plan, batch_rows=batch_rows)
        try:
            for batch in batches:
                for row in batch:
                    value = row[index]
                    for fn in functions:
                        token = fn(value)
                        if token in wanted and token not in found:
                            found[token] = value
                            subjects.append(row[0])
                if len(found) == len(wanted):
                    break  # every token found: stop reading the registry
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
    return Reversal(
        found={t: found[t] for t in tokens if t in found},
        not_found=[t for t in tokens if t not in found],
        subjects=subjects,
        key_versions=len(functions),
    )


def new_request(
    request_id: str, agreement: Agreement, field: str, tokens: list[str], reason: str, requester: str, now: dt.datetime
) -> ReidentificationRequest:
    return ReidentificationRequest(
        id=request_id,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        field=field,
        tokens=tuple(tokens),
        token_count=len(tokens),
        tokens_sha256=tokens_digest(tokens),
        reason=reason,
        requester=requester,
        created_at=now,
        state=PENDING,
        approvers=(),
        disclosure_id=None,
    )
